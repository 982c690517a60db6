"""`write_synthetic`: render a benchmark, encode it, and lay it out as a dataset on disk.

    OUT/videos/...         the videos, in the layout's folders and containers (`layouts`)
    OUT/annotations/...    the layout's annotation files, as its reader expects them
    OUT/bad_zoo.json       with bad_zoo=True: the bad files and what each must give (`badzoo`)
    OUT/synthetic.json     what was written (`SyntheticDataset`), written last

With `profile=` the videos take a real dataset's size, rate, length and encoding
(`videopeft.data.synthetic.profiles`); `workers=` renders and encodes several videos at once.
"""
from __future__ import annotations

import json
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from videopeft.data.synthetic.badzoo import write_zoo
from videopeft.data.synthetic.draw import render_frames
from videopeft.data.synthetic.encode import DEFAULT_ENCODINGS, Encoding, write_video
from videopeft.data.synthetic.layouts import (LAYOUT_CONTAINERS, class_names, new_item,
                                              ordered_classes, video_stem, write_annotations)
from videopeft.data.synthetic.profiles import VideoProfile, video_profile
from videopeft.data.synthetic.specs import VideoSpec, sample_specs
from videopeft.errors import ConfigError, one_line
from videopeft.io import atomic_write_text

__all__ = ["SyntheticVideo", "SyntheticDataset", "write_synthetic", "DEFAULT_SIZE",
           "DEFAULT_FRAMES_RANGE"]

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
    profile: str = ""  # the realistic profile the videos follow ("" = none)
    encoding: str = ""  # the video encoder settings, in one line


def _make_folders(*folders: Path) -> None:
    """Create the output folders; a path that cannot be one is a user error, in one line."""
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"cannot create the output folder: {one_line(err)}",
                              where=str(folder)) from None


DEFAULT_SIZE = 48  # px, the tallest frame (without a profile)
DEFAULT_FRAMES_RANGE = (8, 40)


def _profile_specs(profile: VideoProfile, layout: str, size: int | None,
                   frames_range: tuple[int, int] | None, seconds: float | None
                   ) -> tuple[int, tuple[int, int]]:
    """Check a profile's arguments; returns the (size, frames_range) to draw specs with."""
    if layout not in profile.layouts():
        raise ConfigError(f"profile {profile.name} writes {profile.container} files, which the "
                          f"{layout} layout does not read (use {' or '.join(profile.layouts())})")
    if size is not None or frames_range is not None:
        raise ConfigError(f"profile {profile.name} fixes the frame size and length: drop size "
                          f"and frames_range (seconds= shortens the videos)")
    if seconds is not None and not seconds > 0:
        raise ConfigError(f"seconds must be > 0, got {seconds!r}")
    frames = profile.num_frames(seconds)
    return profile.height, (frames, frames)


def _write_one(path: Path, spec: VideoSpec, container: str, encoding: Encoding | None) -> None:
    """Render and encode one video, frame by frame (a pool worker's job)."""
    write_video(path, render_frames(spec), spec.fps, container, encoding)


def _encode_all(jobs: list[tuple], workers: int, progress: bool, desc: str) -> None:
    """Run every `_write_one` job, in `workers` child processes when more than one."""
    bar = tqdm(total=len(jobs), desc=desc, unit="video", disable=not progress)
    if workers == 1 or len(jobs) < 2:
        for job in jobs:
            _write_one(*job)
            bar.update()
    else:  # spawn: nothing native (decoders, OpenMP threads) is inherited from the caller
        with ProcessPoolExecutor(min(workers, len(jobs)),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            for done in [pool.submit(_write_one, *job) for job in jobs]:
                done.result()
                bar.update()
    bar.close()


def write_synthetic(out: str | os.PathLike, layout: str, *, videos: int = 200, seed: int = 0,
                    num_classes: int = 10, size: int | None = None,
                    frames_range: tuple[int, int] | None = None, bad_zoo: bool = False,
                    progress: bool = True, benchmark: str = "motion", profile: str = "",
                    seconds: float | None = None, workers: int = 1) -> SyntheticDataset:
    """Render and encode a benchmark ("motion" or "stripes") in `layout` under `out`; returns what
    was written. Bad arguments raise `ConfigError` before anything is written.

    Video i has class i % num_classes; within a class every 3rd of 10 videos (the 2nd first) goes
    to val, the rest to train, so both splits hold every class once videos >= 2 * num_classes.
    Without a profile, frames are at most `size` px tall (default 48) with a random aspect and
    frame rate, `frames_range` (default (8, 40)) long, encoded fast (`DEFAULT_ENCODINGS`). A
    `profile` ("ssv2-240p", "kinetics-320p") fixes size, rate, length and encoding instead;
    `seconds` shortens (or lengthens) its videos. `workers` > 1 renders and encodes that many
    videos at once in child processes; the files are the same.
    """
    if layout not in LAYOUT_CONTAINERS:
        raise ConfigError(f"layout must be one of {list(LAYOUT_CONTAINERS)}, got {layout!r}")
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers!r}")
    chosen = video_profile(profile) if profile else None
    if chosen is not None:
        size, frames_range = _profile_specs(chosen, layout, size, frames_range, seconds)
    elif seconds is not None:
        raise ConfigError("seconds sets the length of a profile's videos: give a profile too")
    classes = ordered_classes(layout, num_classes, benchmark)
    specs = sample_specs(videos, num_classes, seed=seed,
                         size=DEFAULT_SIZE if size is None else size,
                         frames_range=frames_range or DEFAULT_FRAMES_RANGE, benchmark=benchmark)
    if chosen is not None:
        specs = [replace(s, height=chosen.height, width=chosen.width, fps=chosen.fps)
                 for s in specs]
    encoding = chosen.encoding if chosen is not None else None
    out = Path(out)
    root, ann = out / "videos", out / "annotations"
    _make_folders(root, ann)
    rng = np.random.default_rng(seed + 1)
    items, written, jobs = [], [], []
    for i, spec in enumerate(specs):
        rank = (i // num_classes) % len(_SPLIT_PATTERN)
        split = "val" if _SPLIT_PATTERN[rank] == "v" else "train"
        item = new_item(layout, classes, spec.label, split, video_stem(layout, i, rng), rng)
        (root / item.rel).parent.mkdir(parents=True, exist_ok=True)
        jobs.append((root / item.rel, spec, LAYOUT_CONTAINERS[layout], encoding))
        items.append(item)
        written.append(SyntheticVideo(str(root / item.rel), spec.label, split))
    _encode_all(jobs, workers, progress, f"writing {layout}")
    zoo: list[dict] = []
    if bad_zoo:
        zoo_items, zoo = write_zoo(layout, root, classes, seed)
        items += zoo_items
        atomic_write_text(out / "bad_zoo.json", json.dumps(zoo, indent=1))
    write_annotations(layout, ann, classes, items, rng)
    encoding = encoding or DEFAULT_ENCODINGS[LAYOUT_CONTAINERS[layout]]
    info = SyntheticDataset(layout, str(root), str(ann), class_names(layout, classes), written,
                            zoo, profile, encoding.describe())
    atomic_write_text(out / "synthetic.json", json.dumps(asdict(info), indent=1))
    _log.info("wrote %d %s videos to %s", len(written), layout, root)
    return info
