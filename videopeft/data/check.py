"""`check_videos`: probe every video of an annotation (or under a folder) before a run.

Each video is opened and its first, middle and last frame decoded (every frame with `full`); one
no backend can decode is a manifest failure, one that decodes but looks wrong (`probe_warnings`:
one frame only, extension vs container, truncated, no read permission for its owner) a manifest
warning. The manifest is the run manifest's format (`videopeft.data.manifest`).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from videopeft._lazy import lazy_module
from videopeft.constants import SPLITS
from videopeft.data.annotations import (HMDB_SPLIT_MARK, KINETICS_FIELDS, SSV2_PREFIX,
                                        VIDEO_EXTENSIONS, VideoRecord, folder_summary,
                                        guess_layout, read_annotations)
from videopeft.data.manifest import Manifest
from videopeft.errors import ConfigError, DecodeError

__all__ = ["check_videos", "check_jobs", "CheckResult"]

decoders = lazy_module("videopeft.data.decoders")  # torch: only when a video is probed
_HMDB_SPLIT_NUMBER = re.compile(rf"{HMDB_SPLIT_MARK}(\d+)$")


@dataclass
class CheckResult:
    """What `check_videos` found: counts, the manifest it wrote, backends that read the rest.

    `failed` counts videos no backend could decode; `warned` those that decoded with a warning
    (they are among the readable ones, `checked - failed`).
    """

    checked: int
    failed: int
    manifest_path: Path
    backends: dict[str, int] = field(default_factory=dict)
    warned: int = 0


def _infer_layout(target: Path) -> str:
    """Guess an annotation's layout from its file name (and a CSV's header)."""
    name = target.name
    if name.startswith(SSV2_PREFIX):
        return "ssv2"
    if HMDB_SPLIT_MARK in name:
        return "hmdb51"
    if name.endswith(".csv"):
        with target.open() as handle:
            if handle.readline().startswith(",".join(KINETICS_FIELDS)):
                return "kinetics"
    return "list"


def _hmdb_split_of(target: Path) -> int:
    """The official split number in an HMDB51 split file's name (`<class>_test_split2.txt`)."""
    found = _HMDB_SPLIT_NUMBER.search(target.stem)
    if found is None:
        raise ConfigError(f"expected an HMDB51 split file named '<class>{HMDB_SPLIT_MARK}N.txt'",
                          where=str(target))
    return int(found.group(1))


def check_jobs(target: str | os.PathLike, layout: str = "", root: str = "",
               hmdb_split: int = 1) -> list[tuple[str, VideoRecord]]:
    """(split, record) for every video named by an annotation file or folder, or found under a
    folder without `layout`. Torch-free: a command line lists the jobs (and stops on a missing
    target or an empty list) before the decoders load."""
    target = Path(target)
    jobs = _list_jobs(target, layout, root, hmdb_split)
    if not jobs and target.is_dir() and not layout:
        guess = guess_layout(target)
        hint = (f"; it holds {guess} annotation files: pass --layout {guess} --root VIDEOS"
                if guess else f"; the folder {folder_summary(target)}")
        raise ConfigError(f"no video files found (extensions {', '.join(VIDEO_EXTENSIONS)})"
                          f"{hint}", where=str(target))
    if not jobs:
        raise ConfigError("the annotation lists no videos", where=str(target))
    return jobs


def _list_jobs(target: Path, layout: str, root: str,
               hmdb_split: int) -> list[tuple[str, VideoRecord]]:
    if not target.exists():
        raise ConfigError("no such annotation file or folder", where=str(target))
    if target.is_dir() and not layout:
        files = sorted(p for p in target.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)
        return [("files", VideoRecord(str(p), -1)) for p in files]
    layout = layout or _infer_layout(target)
    root = root or str(target.parent if target.is_file() else target)
    if target.is_file() and layout == "hmdb51":
        hmdb_split = _hmdb_split_of(target)
    if target.is_file() and layout in ("ssv2", "kinetics", "list"):
        split = "train" if "train" in target.name else "val"
        return [(split, r) for r in read_annotations(layout, root, target, split, hmdb_split)[0]]
    return [(split, r) for split in SPLITS
            for r in read_annotations(layout, root, target, split, hmdb_split)[0]]


def _probe(path: str, backend: str, full: bool) -> tuple[str, list[str]]:
    """Decode a video's first, middle and last frame (all if `full`): the backend that read it
    and its `probe_warnings`, or DecodeError."""
    with decoders.open_video(path, backend) as video:
        n = video.num_frames
        video.get(range(n) if full else sorted({0, n // 2, n - 1}))
        return video.backend, decoders.probe_warnings(video)


def check_videos(target: str | os.PathLike, *, layout: str = "", root: str = "",
                 backend: str = "auto", hmdb_split: int = 1, full: bool = False,
                 manifest_path: str | os.PathLike = "manifest.json",
                 progress: bool = True,
                 jobs: list[tuple[str, VideoRecord]] | None = None) -> CheckResult:
    """Probe every video of an annotation (or every video file under a folder); write the manifest.

    With a folder and no `layout`, every file with a video extension is probed (split "files");
    otherwise the annotation is read (layout guessed from its name when empty) and both splits'
    videos are probed (a split file alone: its own split). `jobs` (from `check_jobs`) skips
    listing them again. ConfigError when there is nothing to check.
    """
    if jobs is None:
        jobs = check_jobs(target, layout, root, hmdb_split)
    manifest = Manifest()
    backends: dict[str, int] = {}
    for split, record in tqdm(jobs, desc="checking videos", unit="video", disable=not progress):
        try:
            used, problems = _probe(record.path, backend, full)
        except DecodeError as err:
            manifest.add(split, err.path, err.backends, err.detail)
            continue
        if problems:
            manifest.warn(split, record.path, used, "; ".join(problems))
        backends[used] = backends.get(used, 0) + 1
    path = manifest.write(manifest_path)
    return CheckResult(len(jobs), len(manifest.entries), path, backends,
                       warned=len(manifest.warning_entries))
