"""Annotation readers for SSv2, HMDB51, Kinetics and list files, and the train / eval datasets.

Readers return `(records, class_names)` with class indices that match the official ones
(REFERENCE §6). A malformed annotation raises `ConfigError` with one line naming the file, the
line (or JSON entry) and the problem.

Datasets keep only paths and labels; each item opens its video inside `__getitem__` (so nothing
native crosses a DataLoader fork) and decodes it once.

* `TrainClipDataset` item: `(clip float (C, T, H, W), label, index)`, `index` being the video
  actually used. A video that fails to decode is recorded in the manifest and another one is drawn
  at random, at most `cfg.max_retries` times; then a RuntimeError says so (never an endless loop).
* `EvalVideoDataset` item: `(views float (V, C, T, H, W), label, index, ok)` with
  `V = views_temporal * views_spatial`, temporal-major (view `t*S + s`). The union of all temporal
  views' frames is decoded and prepared once. A failed video gives `ok=False` and zeros, is
  recorded in the manifest, and is never replaced by another video.

Both datasets, and `check_videos`, also record a manifest *warning* for a video that decodes but
looks wrong (`probe_warnings`: one frame only, extension vs container, truncated, no read
permission for its owner); such a video is used and scored as usual. Each process probes a
video once (a stat and the container header, no decoding).
"""
from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from videopeft.config import DataConfig
from videopeft.constants import LAYOUTS
from videopeft.errors import ConfigError, DecodeError
from videopeft.data.decoders import Video, open_video, probe_warnings
from videopeft.data.manifest import Manifest
from videopeft.data.sampling import sample_dense, sample_segments
from videopeft.data.transforms import EvalTransform, build_eval_transform, build_train_transform

__all__ = ["VideoRecord", "read_annotations", "TrainClipDataset", "EvalVideoDataset",
           "eval_collate", "build_dataset", "clip_indices", "check_videos", "CheckResult",
           "VIDEO_EXTENSIONS"]

_log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".webm", ".mp4", ".avi", ".mkv", ".mov", ".m4v")
_SSV2_FILES = {"train": "something-something-v2-train.json",
               "val": "something-something-v2-validation.json"}
_SSV2_LABELS = "something-something-v2-labels.json"
_KINETICS_FILES = {"train": "train.csv", "val": "validate.csv"}
_KINETICS_FIELDS = ("label", "youtube_id", "time_start", "time_end")
_HMDB_CODES = {"train": 1, "val": 2}


@dataclass(frozen=True)
class VideoRecord:
    """One video of an annotation: its file and its 0-based class index."""

    path: str
    label: int


# ----------------------------------------------------------------------------- readers


def _check_split(split: str) -> None:
    if split not in ("train", "val"):
        raise ConfigError(f"split: expected 'train' or 'val', got {split!r}")


def _existing_file(path: Path) -> Path:
    if not path.is_file():
        raise ConfigError(f"{path}: annotation file not found")
    return path


def _load_json(path: Path) -> object:
    """Parse a JSON file; syntax errors name the file and line."""
    try:
        return json.loads(_existing_file(path).read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}:{err.lineno}: invalid JSON: {err.msg}") from None


def _ssv2_class_map(path: Path) -> dict[str, int]:
    """something-something-v2-labels.json: template without brackets -> class index string."""
    labels = _load_json(path)
    if not isinstance(labels, dict):
        raise ConfigError(f"{path}: expected a mapping of template -> class index")
    out: dict[str, int] = {}
    for template, index in labels.items():
        if not (isinstance(index, str) and index.isdigit()):
            raise ConfigError(f"{path}: template {template!r}: expected a class index string, "
                              f"got {index!r}")
        out[template] = int(index)
    if sorted(out.values()) != list(range(len(out))):
        raise ConfigError(f"{path}: class indices must be 0..{len(out) - 1}, each used once")
    return out


def _read_ssv2(root: Path, annotation: Path, split: str) -> tuple[list[VideoRecord], list[str]]:
    folder = annotation.parent if annotation.is_file() else annotation
    split_file = annotation if annotation.is_file() else folder / _SSV2_FILES[split]
    class_map = _ssv2_class_map(folder / _SSV2_LABELS)
    entries = _load_json(split_file)
    if not isinstance(entries, list):
        raise ConfigError(f"{split_file}: expected a JSON list of videos")
    records = []
    for i, entry in enumerate(entries):
        where = f"{split_file}: entry {i}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected an object, got {type(entry).__name__}")
        for key in ("id", "template"):
            if key not in entry:
                raise ConfigError(f"{where}: missing field {key!r}")
        template = str(entry["template"]).replace("[", "").replace("]", "")
        if template not in class_map:
            raise ConfigError(f"{where}: template {template!r} not in {_SSV2_LABELS}")
        records.append(VideoRecord(str(root / f"{entry['id']}.webm"), class_map[template]))
    names = sorted(class_map, key=class_map.get)
    return records, names


def _read_hmdb51(root: Path, annotation: Path, split: str,
                 hmdb_split: int) -> tuple[list[VideoRecord], list[str]]:
    if hmdb_split not in (1, 2, 3):
        raise ConfigError(f"hmdb_split: expected 1, 2 or 3, got {hmdb_split!r}")
    folder = annotation.parent if annotation.is_file() else annotation
    suffix = f"_test_split{hmdb_split}.txt"
    files = sorted(folder.glob(f"*{suffix}"))
    if not files:
        raise ConfigError(f"{folder}: no '*{suffix}' split files")
    classes = [f.name[:-len(suffix)] for f in files]  # sorted names = mmaction2's class index
    want, records = _HMDB_CODES[split], []
    for label, (name, path) in enumerate(zip(classes, files)):
        for lineno, line in enumerate(path.read_text().splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise ConfigError(f"{path}:{lineno}: expected '<clip>.avi <split code>', "
                                  f"got {line.strip()!r}")
            clip, code = parts
            if code not in ("0", "1", "2"):
                raise ConfigError(f"{path}:{lineno}: unknown split code {code!r} "
                                  f"(expected 0, 1 or 2)")
            if int(code) == want:
                records.append(VideoRecord(str(root / name / clip), label))
    return records, classes


def _kinetics_label(raw: str) -> str:
    """mmaction2's class name: quotes removed, spaces to underscores."""
    return raw.replace('"', "").replace(" ", "_")


def _read_kinetics_csv(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row of a Kinetics CSV, header checked."""
    rows = []
    with _existing_file(path).open(newline="") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        if tuple(header[:4]) != _KINETICS_FIELDS:
            raise ConfigError(f"{path}:1: expected header starting "
                              f"'{','.join(_KINETICS_FIELDS)}', got {','.join(header)!r}")
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise ConfigError(f"{path}:{reader.line_num}: expected {len(header)} fields, "
                                  f"got {len(row)}")
            values = dict(zip(header, row))
            for key in ("time_start", "time_end"):
                if not values[key].strip().isdigit():
                    raise ConfigError(f"{path}:{reader.line_num}: {key}: expected an integer, "
                                      f"got {values[key]!r}")
            rows.append((reader.line_num, values))
    return rows


def _read_kinetics(root: Path, annotation: Path,
                   split: str) -> tuple[list[VideoRecord], list[str]]:
    folder = annotation.parent if annotation.is_file() else annotation
    split_file = annotation if annotation.is_file() else folder / _KINETICS_FILES[split]
    train_file = folder / _KINETICS_FILES["train"]
    train_rows = _read_kinetics_csv(train_file)
    classes = sorted({_kinetics_label(row["label"]) for _, row in train_rows})
    index = {name: i for i, name in enumerate(classes)}
    rows = train_rows if split_file == train_file else _read_kinetics_csv(split_file)
    records = []
    for lineno, row in rows:
        label = _kinetics_label(row["label"])
        if label not in index:
            raise ConfigError(f"{split_file}:{lineno}: label {label!r} not in the class map "
                              f"(the labels of {train_file.name})")
        name = f"{row['youtube_id']}_{int(row['time_start']):06d}_{int(row['time_end']):06d}.mp4"
        records.append(VideoRecord(str(root / label / name), index[label]))
    return records, classes


def _read_list(root: Path, annotation: Path, split: str) -> tuple[list[VideoRecord], list[str]]:
    if annotation.is_file():
        path = annotation
    else:
        candidates = [annotation / f"{split}.txt", annotation / f"{split}.csv"]
        path = next((c for c in candidates if c.is_file()), candidates[0])
    classes_file = path.parent / "classes.txt"
    classes = ([ln.strip() for ln in classes_file.read_text().splitlines() if ln.strip()]
               if classes_file.is_file() else [])
    records = []
    for lineno, line in enumerate(_existing_file(path).read_text().splitlines(), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not parts[0]:
            raise ConfigError(f"{path}:{lineno}: expected '<path> <label>', got {line!r}")
        name, raw = parts
        if not raw.isdigit():
            raise ConfigError(f"{path}:{lineno}: label: expected a non-negative integer, "
                              f"got {raw!r}")
        label = int(raw)
        if classes and label >= len(classes):
            raise ConfigError(f"{path}:{lineno}: label {label} not in the class map "
                              f"({classes_file.name} has {len(classes)} classes)")
        video = Path(name)
        records.append(VideoRecord(str(video if video.is_absolute() else root / video), label))
    if not classes:
        classes = [str(i) for i in range(max((r.label for r in records), default=-1) + 1)]
    return records, classes


def read_annotations(layout: str, root: str | os.PathLike, annotation: str | os.PathLike,
                     split: str, hmdb_split: int = 1) -> tuple[list[VideoRecord], list[str]]:
    """Videos and class names of one split ("train" | "val") of a dataset on disk.

    `annotation` is the annotation file or the folder holding the layout's files; empty means
    `root`. Layout file names: ssv2 `something-something-v2-{train,validation,labels}.json`;
    hmdb51 `<class>_test_split{1,2,3}.txt` (code 1 train, 2 test); kinetics
    `train.csv`/`validate.csv`; list `train.txt`/`val.txt` (or .csv) with optional `classes.txt`.
    """
    if layout not in LAYOUTS:
        raise ConfigError(f"layout: expected one of {list(LAYOUTS)}, got {layout!r}")
    _check_split(split)
    root_path = Path(root)
    ann = Path(annotation) if str(annotation) else root_path
    if layout == "ssv2":
        return _read_ssv2(root_path, ann, split)
    if layout == "hmdb51":
        return _read_hmdb51(root_path, ann, split, hmdb_split)
    if layout == "kinetics":
        return _read_kinetics(root_path, ann, split)
    return _read_list(root_path, ann, split)


# ----------------------------------------------------------------------------- datasets


def clip_indices(cfg: DataConfig, num_frames: int, *, train: bool, view: int = 0,
                 num_views: int = 1, generator: torch.Generator | None = None) -> list[int]:
    """Frame indices of one clip by the config's sampling scheme (segment or dense)."""
    if cfg.sampling == "segment":
        return sample_segments(num_frames, cfg.num_frames, train=train, generator=generator,
                               view=view, num_views=num_views)
    return sample_dense(num_frames, cfg.num_frames, cfg.stride, train=train, generator=generator,
                        view=view, num_views=num_views, short_video=cfg.short_video)


def _note_warnings(manifest: Manifest, split: str, video: Video) -> list[str]:
    """Probe a video that decoded; record and log what is suspicious about it (if anything)."""
    problems = probe_warnings(video)
    if problems:
        problem = "; ".join(problems)
        manifest.warn(split, video.path, video.backend, problem)
        _log.warning("%s: %s decoded, but %s", split, video.path, problem)
    return problems


class TrainClipDataset(Dataset):
    """Random augmented clips; undecodable videos are recorded and replaced by random others."""

    def __init__(self, records: Sequence[VideoRecord], cfg: DataConfig,
                 manifest: Manifest | None = None, *, split: str = "train",
                 transform=None) -> None:
        if not records:
            raise ValueError(f"{split}: no videos to train on")
        self.records, self.cfg, self.split = list(records), cfg, split
        self.manifest = manifest if manifest is not None else Manifest()
        self.transform = transform or build_train_transform(cfg)
        self._bad: set[int] = set()  # per process: videos already known to fail
        self._probed: set[int] = set()  # per process: videos already checked for warnings
        self._cache: dict[int, torch.Tensor] = {}  # per process: decoded videos (data.cache_mb)
        self._cache_bytes = 0

    def __len__(self) -> int:
        return len(self.records)

    def load(self, index: int) -> torch.Tensor:
        """Decode one random clip of video `index` and augment it (DecodeError if unreadable)."""
        cached = self._cache.get(index)
        if cached is not None:
            return self.transform(cached[clip_indices(self.cfg, len(cached), train=True)])
        with open_video(self.records[index].path, self.cfg.backend) as video:
            if self.cfg.cache_mb > 0:  # decode every frame once; later clips are cut from memory
                cached = video.get(range(video.num_frames))
                frames = cached[clip_indices(self.cfg, len(cached), train=True)]
            else:
                frames = video.get(clip_indices(self.cfg, video.num_frames, train=True))
            if index not in self._probed:
                self._probed.add(index)
                _note_warnings(self.manifest, self.split, video)
        if cached is not None and self._cache_bytes + cached.nbytes <= self.cfg.cache_mb * 2**20:
            self._cache[index] = cached  # full: later videos are decoded each time, as without
            self._cache_bytes += cached.nbytes
        return self.transform(frames)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        last_error: DecodeError | None = None
        for _ in range(self.cfg.max_retries + 1):
            if index not in self._bad:
                try:
                    return self.load(index), self.records[index].label, index
                except DecodeError as err:
                    last_error = err
                    self._bad.add(index)
                    self.manifest.add(self.split, err.path, err.backends, err.detail)
                    _log.warning("%s: skipped, drawing another video: %s", self.split, err)
            index = int(torch.randint(len(self.records), (1,)))
        raise RuntimeError(f"{self.split}: {self.cfg.max_retries + 1} videos in a row could not be "
                           f"decoded (data.max_retries={self.cfg.max_retries}); last: {last_error}")


class EvalVideoDataset(Dataset):
    """All T x S views of each video from one decode; a failed video is ok=False, never swapped."""

    def __init__(self, records: Sequence[VideoRecord], cfg: DataConfig, views_temporal: int = 1,
                 views_spatial: int = 1, short_side: int = 0, manifest: Manifest | None = None,
                 *, split: str = "val", transform: EvalTransform | None = None) -> None:
        if views_temporal < 1:
            raise ValueError(f"views_temporal must be >= 1, got {views_temporal}")
        self.records, self.cfg, self.split = list(records), cfg, split
        self.views_temporal, self.views_spatial = views_temporal, views_spatial
        self.manifest = manifest if manifest is not None else Manifest()
        self.transform = transform or build_eval_transform(cfg, views_spatial, short_side)
        self._probed: set[int] = set()  # per process: videos already checked for warnings

    def __len__(self) -> int:
        return len(self.records)

    @property
    def num_views(self) -> int:
        return self.views_temporal * self.views_spatial

    def view_indices(self, num_frames: int) -> list[list[int]]:
        """Frame indices of each temporal view of a video with `num_frames` frames."""
        return [clip_indices(self.cfg, num_frames, train=False, view=v,
                             num_views=self.views_temporal) for v in range(self.views_temporal)]

    def load(self, index: int) -> torch.Tensor:
        """All views of video `index` as (V, C, T, H, W) (DecodeError if unreadable)."""
        with open_video(self.records[index].path, self.cfg.backend) as video:
            views = self.view_indices(video.num_frames)
            union = sorted(set().union(*views))
            frames = video.get(union)
            if index not in self._probed:
                self._probed.add(index)
                _note_warnings(self.manifest, self.split, video)
        clip = self.transform.prepare(frames)  # (C, U, H', W'), resized and normalised once
        row = {frame: i for i, frame in enumerate(union)}
        return self.transform.views(clip, [[row[f] for f in view] for view in views])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int, bool]:
        label = self.records[index].label
        try:
            return self.load(index), label, index, True
        except DecodeError as err:
            self.manifest.add(self.split, err.path, err.backends, err.detail)
            _log.warning("%s: counted as failed (not replaced): %s", self.split, err)
            size = self.cfg.img_size
            empty = torch.zeros(self.num_views, 3, self.cfg.num_frames, size, size)
            return empty, label, index, False


def eval_collate(batch: list[tuple[torch.Tensor, int, int, bool]]
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack eval items: views (B, V, C, T, H, W), labels, indices, ok (bool; False = failed).

    Failed videos keep their zero views so batch shapes stay fixed (and DDP ranks in step); the
    engine must drop them with `ok` before scoring and count them as failed.
    """
    views, labels, indices, ok = zip(*batch)
    return (torch.stack(views), torch.tensor(labels), torch.tensor(indices),
            torch.tensor(ok, dtype=torch.bool))


def build_dataset(cfg: DataConfig, split: str, train: bool, manifest: Manifest,
                  views_temporal: int = 1, views_spatial: int = 1,
                  short_side: int = 0) -> tuple[Dataset, list[str]]:
    """The dataset of one split: train clips (train=True) or multi-view eval videos."""
    records, classes = read_annotations(cfg.layout, cfg.root, cfg.annotation, split,
                                        cfg.hmdb_split)
    if not records:
        raise ConfigError(f"data.annotation: split {split!r} of {cfg.layout} at "
                          f"{cfg.annotation or cfg.root} has no videos")
    if train:
        return TrainClipDataset(records, cfg, manifest, split=split), classes
    return EvalVideoDataset(records, cfg, views_temporal, views_spatial, short_side, manifest,
                            split=split), classes


# ----------------------------------------------------------------------------- checking


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
    if name.startswith("something-something-v2"):
        return "ssv2"
    if "_test_split" in name:
        return "hmdb51"
    if name.endswith(".csv"):
        with target.open() as handle:
            if handle.readline().startswith(",".join(_KINETICS_FIELDS)):
                return "kinetics"
    return "list"


def _check_jobs(target: Path, layout: str, root: str,
                hmdb_split: int) -> list[tuple[str, VideoRecord]]:
    """(split, record) for every video named by an annotation file or folder."""
    if target.is_dir() and not layout:
        files = sorted(p for p in target.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)
        return [("files", VideoRecord(str(p), -1)) for p in files]
    layout = layout or _infer_layout(target)
    root = root or str(target.parent if target.is_file() else target)
    if target.is_file() and layout == "hmdb51":
        hmdb_split = int(target.stem[-1])
    if target.is_file() and layout in ("ssv2", "kinetics", "list"):
        split = "train" if "train" in target.name else "val"
        return [(split, r) for r in read_annotations(layout, root, target, split, hmdb_split)[0]]
    return [(split, r) for split in ("train", "val")
            for r in read_annotations(layout, root, target, split, hmdb_split)[0]]


def probe_video(path: str, backend: str = "auto", full: bool = False) -> str:
    """Open a video and decode its first, middle and last frame (all if `full`); returns the
    backend that read it, or raises DecodeError."""
    return _probe(path, backend, full)[0]


def _probe(path: str, backend: str, full: bool) -> tuple[str, list[str]]:
    """`probe_video`, plus the video's `probe_warnings`."""
    with open_video(path, backend) as video:
        n = video.num_frames
        video.get(range(n) if full else sorted({0, n // 2, n - 1}))
        return video.backend, probe_warnings(video)


def check_videos(target: str | os.PathLike, *, layout: str = "", root: str = "",
                 backend: str = "auto", hmdb_split: int = 1, full: bool = False,
                 manifest_path: str | os.PathLike = "manifest.json",
                 progress: bool = True) -> CheckResult:
    """Probe every video of an annotation (or every video file under a folder); write the manifest.

    With a folder and no `layout`, every file with a video extension is probed (split "files");
    otherwise the annotation is read (layout guessed from its name when empty) and both splits'
    videos are probed (a split file alone: its own split).
    """
    jobs = _check_jobs(Path(target), layout, root, hmdb_split)
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
