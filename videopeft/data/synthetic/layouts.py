"""Where each synthetic video goes in a dataset layout, and the annotation files that name it.

    layout    videos under root = OUT/videos         annotation files under OUT/annotations
    ssv2      <id>.webm (VP9)                        something-something-v2-{train,validation}.json,
                                                     something-something-v2-labels.json
    hmdb51    <class>/<name>.avi (MPEG-4 Part 2)     <class>_test_split{1,2,3}.txt
    kinetics  <class>/<youtube_id>_<start:06d>_<end:06d>.mp4 (H.264)
                                                     train.csv, validate.csv
    list      <name>.mp4 (H.264)                     train.txt, val.txt ("<path> <label>"),
                                                     classes.txt

The file names, and how a reader turns class names and annotation fields into paths, come from
`videopeft.data.annotations`, so what is written here is what the readers look for.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from videopeft.constants import SPLITS
from videopeft.data.annotations import (HMDB_SPLIT_CODES, HMDB_SPLITS, KINETICS_FIELDS,
                                        KINETICS_SPLIT_FILES, LIST_CLASSES_FILE,
                                        LIST_SPLIT_FILES, SSV2_LABELS_FILE, SSV2_SPLIT_FILES,
                                        hmdb_split_suffix, kinetics_video_name, ssv2_class_name,
                                        ssv2_video_name)
from videopeft.data.synthetic.specs import MotionClass, benchmark_classes
from videopeft.io import atomic_write_text

__all__ = ["LAYOUT_CONTAINERS", "LayoutItem", "class_names", "ordered_classes", "new_item",
           "video_stem", "write_annotations"]

# the container of each layout's videos (ssv2 and kinetics: the extension their readers expect)
LAYOUT_CONTAINERS = {"ssv2": "webm", "hmdb51": "avi", "kinetics": "mp4", "list": "mp4"}
_THINGS = ("a box", "a ball", "a cup", "a book", "a pen", "a phone", "a bottle", "a spoon",
           "a toy car", "a remote")
_YOUTUBE_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                  "0123456789-_"))


@dataclass
class LayoutItem:
    """One annotation line to write: path relative to root, class, split, layout-specific fields."""

    rel: str
    label: int
    split: str
    fields: dict = field(default_factory=dict)


def class_names(layout: str, classes: list[MotionClass]) -> list[str]:
    """Class names in class-index order, as each layout's reader will report them."""
    if layout == "ssv2":
        return [ssv2_class_name(c.template) for c in classes]
    return [c.name for c in classes]


def ordered_classes(layout: str, num_classes: int, benchmark: str) -> list[MotionClass]:
    """The benchmark's first num_classes classes; for hmdb51/kinetics, whose readers index classes
    by sorted name, the names get a c00_ prefix so sorted order is class order."""
    chosen = list(benchmark_classes(benchmark)[:num_classes])
    if layout in ("hmdb51", "kinetics"):
        chosen = [MotionClass(c.template, f"c{i:02d}_{c.name}", c.motion)
                  for i, c in enumerate(chosen)]
    return chosen


def new_item(layout: str, classes: list[MotionClass], label: int, split: str, stem: str,
             rng: np.random.Generator) -> LayoutItem:
    """Where a video goes in the layout, and the annotation fields that name it."""
    if layout == "ssv2":
        return LayoutItem(ssv2_video_name(stem), label, split, {"id": stem})
    if layout == "kinetics":
        start = int(rng.integers(0, 300))
        name = kinetics_video_name(stem, start, start + 10)
        return LayoutItem(f"{classes[label].name}/{name}", label, split,
                          {"youtube_id": stem, "time_start": start, "time_end": start + 10})
    ext = LAYOUT_CONTAINERS[layout]
    folder = f"{classes[label].name}/" if layout == "hmdb51" else ""
    return LayoutItem(f"{folder}{stem}.{ext}", label, split)


def video_stem(layout: str, index: int, rng: np.random.Generator) -> str:
    """The name of good video `index` in the layout: an SSv2 id, a YouTube id, or v00012."""
    if layout == "ssv2":
        return str(100000 + index)
    if layout == "kinetics":
        return "".join(rng.choice(_YOUTUBE_ALPHABET, 11))
    return f"v{index:05d}"


def _write_ssv2(ann: Path, classes: list[MotionClass], items: list[LayoutItem],
                rng: np.random.Generator) -> None:
    labels = {name: str(i) for i, name in enumerate(class_names("ssv2", classes))}
    atomic_write_text(ann / SSV2_LABELS_FILE, json.dumps(labels, indent=1))
    for split, file_name in SSV2_SPLIT_FILES.items():
        entries = []
        for item in (i for i in items if i.split == split):
            thing = _THINGS[rng.integers(len(_THINGS))]
            template = classes[item.label].template
            entries.append({"id": item.fields["id"],
                            "label": template.replace("[something]", thing),
                            "template": template,
                            "placeholders": [thing] if "[something]" in template else []})
        atomic_write_text(ann / file_name, json.dumps(entries, indent=1))


def _write_hmdb51(ann: Path, classes: list[MotionClass], items: list[LayoutItem],
                  rng: np.random.Generator) -> None:
    """Split 1 follows the items' splits; splits 2 and 3 reshuffle the good videos (some unused)."""
    for k in HMDB_SPLITS:
        for label, cls in enumerate(classes):
            lines = []
            for item in (i for i in items if i.label == label):
                clip = item.rel.rsplit("/", 1)[-1]
                code = HMDB_SPLIT_CODES[item.split]
                if k > 1 and not clip.startswith("zoo_"):
                    code = int(rng.choice([0, 1, 1, 2]))
                lines.append(f"{clip} {code} ")  # the official files end lines with a space
            atomic_write_text(ann / f"{cls.name}{hmdb_split_suffix(k)}", "\n".join(lines) + "\n")


def _write_kinetics(ann: Path, classes: list[MotionClass], items: list[LayoutItem],
                    rng: np.random.Generator) -> None:
    for split, file_name in KINETICS_SPLIT_FILES.items():
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow([*KINETICS_FIELDS, "split", "is_cc"])
        for item in (i for i in items if i.split == split):
            f = item.fields  # labels are written with spaces, as in the official CSVs
            writer.writerow([classes[item.label].name.replace("_", " "), f["youtube_id"],
                             f["time_start"], f["time_end"], Path(file_name).stem, 0])
        atomic_write_text(ann / file_name, text.getvalue())


def _write_list(ann: Path, classes: list[MotionClass], items: list[LayoutItem],
                rng: np.random.Generator) -> None:
    atomic_write_text(ann / LIST_CLASSES_FILE, "".join(c.name + "\n" for c in classes))
    for split in SPLITS:
        lines = [f"{i.rel} {i.label}\n" for i in items if i.split == split]
        atomic_write_text(ann / LIST_SPLIT_FILES[split][0], "".join(lines))


_ANNOTATION_WRITERS: dict[str, Callable[..., None]] = {
    "ssv2": _write_ssv2, "hmdb51": _write_hmdb51, "kinetics": _write_kinetics,
    "list": _write_list}


def write_annotations(layout: str, ann: Path, classes: list[MotionClass],
                      items: list[LayoutItem], rng: np.random.Generator) -> None:
    """Write the layout's annotation files for `items` into the folder `ann`."""
    _ANNOTATION_WRITERS[layout](ann, classes, items, rng)
