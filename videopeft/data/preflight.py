"""What a run checks and says about its data before any work: each split's annotation read,
videos it lists that are not on disk, and videos too short for a clip.

`read_split` is the one way a run reads a split: the annotation's records and classes, an error
for a split with no video, and the listed files that are missing, handled by ``data.on_missing``:
``skip`` leaves them out of *training* (instead of drawing another video each time one is met),
``error`` stops before any work. Evaluation keeps every listed video, so a missing one counts in
``num_failed`` and scores stay over the whole list.

`check_data` reads every split a run will read and warns once, on the process that calls it
(the main rank): the missing files (count and the first few), and the share of videos shorter
than a clip's span, whose frames repeat (`short_videos`, from the container headers of at most
`SHORT_SAMPLE` videos). Torch-free until a header is read, so a command line runs `read_split`
before importing torch.
"""
from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass, field

from videopeft._lazy import lazy_module
from videopeft.config import DataConfig
from videopeft.data.annotations import VideoRecord, read_annotations
from videopeft.errors import ConfigError

__all__ = ["SplitData", "read_split", "check_data", "check_num_classes", "clip_span",
           "short_videos", "SHORT_SAMPLE", "SHOWN_MISSING"]

_log = logging.getLogger(__name__)
decoders = lazy_module("videopeft.data.decoders")  # PyAV and torch: only when a header is read

SHORT_SAMPLE = 200  # container headers read to estimate the share of short videos
SHOWN_MISSING = 3  # missing files named in the warning or error


@dataclass
class SplitData:
    """One split as a run reads it: the records it uses, the class names, what was missing."""

    split: str
    records: list[VideoRecord]
    classes: list[str]
    missing: list[VideoRecord] = field(default_factory=list)
    listed: int = 0  # records in the annotation, missing ones included


def _where(data: DataConfig) -> str:
    return str(data.annotation or data.root)


def _missing_text(missing: list[VideoRecord], listed: int) -> str:
    shown = ", ".join(r.path for r in missing[:SHOWN_MISSING])
    more = f", and {len(missing) - SHOWN_MISSING} more" if len(missing) > SHOWN_MISSING else ""
    return f"{len(missing)} of the {listed} videos it lists are not on disk ({shown}{more})"


def read_split(data: DataConfig, split: str, *, train: bool) -> SplitData:
    """The records of `split` (missing files left out of a training split by ``on_missing:
    skip``); ConfigError for a split without videos or, with ``on_missing: error``, missing
    files."""
    records, classes = read_annotations(data.layout, data.root, data.annotation, split,
                                        data.hmdb_split)
    if not records:
        raise ConfigError(f"split {split!r} of {data.layout} at {_where(data)} has no videos",
                          key="data.annotation")
    present = [os.path.isfile(r.path) for r in records]  # one stat per listed video
    missing = [r for r, here in zip(records, present) if not here]
    if missing and data.on_missing == "error":
        raise ConfigError(f"split {split!r} at {_where(data)}: "
                          f"{_missing_text(missing, len(records))}; fix the list or set "
                          f"data.on_missing=skip", key="data.on_missing")
    if len(missing) == len(records):
        raise ConfigError(f"split {split!r} of {data.layout} at {_where(data)}: none of its "
                          f"{len(records)} videos is on disk (first: {records[0].path}); is "
                          f"data.root right? ({data.root or 'empty'})", key="data.root")
    kept = [r for r, here in zip(records, present) if here] if missing and train else records
    return SplitData(split, kept, classes, missing, len(records))


def check_num_classes(num_classes: int, classes: list[str]) -> int:
    """`model.num_classes`, or the dataset's class count when it is 0; ConfigError on a mismatch."""
    n = num_classes or len(classes)
    if classes and n != len(classes):
        raise ConfigError(f"expected {len(classes)} (the dataset's classes), got {num_classes}",
                          key="model.num_classes")
    return n


def clip_span(data: DataConfig) -> int:
    """Frames of video one test clip spans: a video shorter than this repeats frames in it
    (segment sampling: one frame per segment; dense: `num_frames` frames `stride` apart)."""
    if data.sampling == "dense":
        return (data.num_frames - 1) * data.stride + 1
    return data.num_frames


def short_videos(records: list[VideoRecord], data: DataConfig, sample: int = SHORT_SAMPLE
                 ) -> tuple[int, int, bool]:
    """(videos shorter than `clip_span`, videos whose length the header told, whether `records`
    was sampled) over at most `sample` of `records` (a seeded draw), from the container headers:
    no decoding."""
    chosen = records if len(records) <= sample else random.Random(0).sample(records, sample)
    span, short, known = clip_span(data), 0, 0
    for record in chosen:
        header = decoders.read_header(record.path) if os.path.isfile(record.path) else None
        frames = header.expected_frames if header is not None else 0
        if frames > 0:
            known += 1
            short += frames < span
    return short, known, len(chosen) < len(records)


def check_data(data: DataConfig, splits: dict[str, bool], *, num_classes: int = 0,
               survey: bool = True) -> dict[str, SplitData]:
    """Read every split a run reads (`splits`: {split: is it trained on}), stop on what makes
    the run impossible, and warn once about missing files and (with `survey`) short videos."""
    out = {split: read_split(data, split, train=train) for split, train in splits.items()}
    first = next(iter(out.values()))
    check_num_classes(num_classes, first.classes)
    for split, found in out.items():
        if found.missing:
            fate = ("left out of training" if splits[split] else
                    "counted as failed, never replaced")
            _log.warning("%s: %s: %s (data.on_missing: skip; error stops instead)", split,
                         _missing_text(found.missing, found.listed), fate)
        if survey:
            short, known, sampled = short_videos(found.records, data)
            if short:
                share = (f"about {round(100 * short / known)}% of its {len(found.records)} "
                         f"videos ({short} of {known} sampled)" if sampled else
                         f"{short} of the {known} videos whose length is known")
                _log.warning("%s: %s are shorter than a clip's span of %d frames: their frames "
                             "repeat (data.short_video: %s)", split, share, clip_span(data),
                             data.short_video)
    return out
