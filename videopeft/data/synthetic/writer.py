"""`write_synthetic`: render a benchmark, encode it, and lay it out as a dataset on disk.

    OUT/videos/...         the videos, in the layout's folders and containers (`layouts`)
    OUT/annotations/...    the layout's annotation files, as its reader expects them
    OUT/bad_zoo.json       with bad_zoo=True: the bad files and what each must give (`badzoo`)
    OUT/synthetic.json     what was written (`SyntheticDataset`), written last
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from videopeft.data.synthetic.badzoo import write_zoo
from videopeft.data.synthetic.encode import write_video
from videopeft.data.synthetic.layouts import (LAYOUT_CONTAINERS, class_names, new_item,
                                              ordered_classes, video_stem, write_annotations)
from videopeft.data.synthetic.draw import render
from videopeft.data.synthetic.specs import sample_specs
from videopeft.errors import ConfigError, one_line
from videopeft.io import atomic_write_text

__all__ = ["SyntheticVideo", "SyntheticDataset", "write_synthetic"]

_log = logging.getLogger(__name__)

_SPLIT_PATTERN = "tvttvttvtt"  # rank within a class -> train/val: 30 % val, the 2nd video val


@dataclass
class SyntheticVideo:
    """One written video: where, which class, which split."""

    path: str
    label: int
    split: str  # train | val


@dataclass
class SyntheticDataset:
    """What `write_synthetic` wrote; `root`/`annotation` go straight into DataConfig."""

    layout: str
    root: str
    annotation: str
    class_names: list[str]
    videos: list[SyntheticVideo]
    zoo: list[dict] = field(default_factory=list)  # see badzoo.write_zoo; expect: fail | warn


def _make_folders(*folders: Path) -> None:
    """Create the output folders; a path that cannot be one is a user error, in one line."""
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"cannot create the output folder: {one_line(err)}",
                              where=str(folder)) from None


def write_synthetic(out: str | os.PathLike, layout: str, *, videos: int = 200, seed: int = 0,
                    num_classes: int = 10, size: int = 48, frames_range: tuple[int, int] = (8, 40),
                    bad_zoo: bool = False, progress: bool = True,
                    benchmark: str = "motion") -> SyntheticDataset:
    """Render and encode a benchmark ("motion" or "stripes") in `layout` under `out`; returns what
    was written. Bad arguments raise `ConfigError` before anything is written.

    Video i has class i % num_classes; within a class every 3rd of 10 videos (the 2nd first) goes
    to val, the rest to train, so both splits hold every class once videos >= 2 * num_classes.
    """
    if layout not in LAYOUT_CONTAINERS:
        raise ConfigError(f"layout must be one of {list(LAYOUT_CONTAINERS)}, got {layout!r}")
    classes = ordered_classes(layout, num_classes, benchmark)
    specs = sample_specs(videos, num_classes, seed=seed, size=size, frames_range=frames_range,
                         benchmark=benchmark)
    out = Path(out)
    root, ann = out / "videos", out / "annotations"
    _make_folders(root, ann)
    rng = np.random.default_rng(seed + 1)
    items, written = [], []
    for i, spec in enumerate(tqdm(specs, desc=f"writing {layout}", unit="video",
                                  disable=not progress)):
        rank = (i // num_classes) % len(_SPLIT_PATTERN)
        split = "val" if _SPLIT_PATTERN[rank] == "v" else "train"
        item = new_item(layout, classes, spec.label, split, video_stem(layout, i, rng), rng)
        (root / item.rel).parent.mkdir(parents=True, exist_ok=True)
        write_video(root / item.rel, render(spec), spec.fps, LAYOUT_CONTAINERS[layout])
        items.append(item)
        written.append(SyntheticVideo(str(root / item.rel), spec.label, split))
    zoo: list[dict] = []
    if bad_zoo:
        zoo_items, zoo = write_zoo(layout, root, classes, seed)
        items += zoo_items
        atomic_write_text(out / "bad_zoo.json", json.dumps(zoo, indent=1))
    write_annotations(layout, ann, classes, items, rng)
    info = SyntheticDataset(layout, str(root), str(ann), class_names(layout, classes), written,
                            zoo)
    atomic_write_text(out / "synthetic.json", json.dumps(asdict(info), indent=1))
    _log.info("wrote %d %s videos to %s", len(written), layout, root)
    return info
