"""The train and eval datasets: annotation records in, decoded and transformed clips out.

Datasets keep only paths and labels (`VideoRecord`s from `videopeft.data.annotations`); each item
opens its video inside `__getitem__` (so nothing native crosses a DataLoader fork) and decodes it
once.

* `TrainClipDataset` item: `(clip float (C, T, H, W), label, index)`, `index` being the video
  actually used. A video that fails to decode is recorded in the manifest and another one is drawn
  at random, at most `cfg.max_retries` times; then a RuntimeError says so (never an endless loop).
  With `data.num_sample: k` one decode gives k independently augmented clips: the item holds
  (k, C, T, H, W) and `collate_train` makes a batch of B*k clips, labels repeated (VideoMAE's
  repeated augmentation). In device mode (`data.augment: device`) the item holds what
  `TrainTransform.cut` returns instead of a clip: uint8 crops and the drawn choices, which
  `videopeft.data.device_augment.DeviceAugment` applies on the device.
* `EvalVideoDataset` item: `(views float (V, C, T, H, W), label, index, ok)` with
  `V = views_temporal * views_spatial`, temporal-major (view `t*S + s`). The union of all temporal
  views' frames is decoded and prepared once. A failed video gives `ok=False` and zeros, is
  recorded in the manifest, and is never replaced by another video. In device mode the views are
  uint8 and the device normalises them (`device_augment.normalize_clips`).

Both count each successful decode by backend in the manifest (run.json reports the counts), and
record a manifest *warning* for a video that decodes but looks wrong
(`probe_warnings`: one frame only, extension vs container, truncated, no read permission for its
owner); such a video is used and scored as usual. Each process probes a video once (a stat and
the container header, no decoding).
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from videopeft.config import DataConfig
from videopeft.data.annotations import VideoRecord
from videopeft.data.decoders import DecodeOptions, Video, open_video, probe_warnings
from videopeft.data.manifest import Manifest
from videopeft.data.preflight import read_split
from videopeft.data.sampling import sample_dense, sample_segments
from videopeft.data.transfer import pack_crops
from videopeft.data.transforms import (build_eval_transform, build_train_transform,
                                       decode_short_side)
from videopeft.errors import DecodeError

__all__ = ["TrainClipDataset", "EvalVideoDataset", "eval_collate", "collate_train",
           "build_dataset", "clip_indices"]

_log = logging.getLogger(__name__)


def clip_indices(cfg: DataConfig, num_frames: int, *, train: bool, view: int = 0,
                 num_views: int = 1, generator: torch.Generator | None = None) -> list[int]:
    """Frame indices of one clip by the config's sampling scheme (segment or dense)."""
    if cfg.sampling == "segment":
        return sample_segments(num_frames, cfg.num_frames, train=train, generator=generator,
                               view=view, num_views=num_views)
    return sample_dense(num_frames, cfg.num_frames, cfg.stride, train=train, generator=generator,
                        view=view, num_views=num_views, short_video=cfg.short_video,
                        train_rule=cfg.dense_train)


def _note_warnings(manifest: Manifest, split: str, video: Video) -> None:
    """Probe a video that decoded; record and log what is suspicious about it (if anything)."""
    problems = probe_warnings(video)
    if problems:
        problem = "; ".join(problems)
        manifest.warn(split, video.path, video.backend, problem)
        _log.warning("%s: %s decoded, but %s", split, video.path, problem)


class TrainClipDataset(Dataset):
    """Random augmented clips; undecodable videos are recorded and replaced by random others."""

    def __init__(self, records: Sequence[VideoRecord], cfg: DataConfig,
                 manifest: Manifest | None = None, *, split: str = "train",
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if not records:
            raise ValueError(f"{split}: no videos to train on")
        self.records, self.cfg, self.split = list(records), cfg, split
        self.manifest = manifest if manifest is not None else Manifest()
        self.device_side = cfg.augment == "device"
        self.transform = transform or build_train_transform(cfg, device_side=self.device_side)
        self.decode = DecodeOptions(decode_short_side(cfg, train=True), cfg.decode_threads)
        self._bad: set[int] = set()  # per process: videos already known to fail
        self._probed: set[int] = set()  # per process: videos already checked for warnings
        self._cache: dict[int, torch.Tensor] = {}  # per process: decoded videos (data.cache_mb)
        self._cache_bytes = 0

    def __len__(self) -> int:
        return len(self.records)

    def load(self, index: int) -> Any:
        """Decode one random clip of video `index` and augment it (DecodeError if unreadable):
        a clip, `num_sample` clips stacked, or device mode's cut (see the module docstring)."""
        return self._augment(self._frames(index))

    def _augment(self, frames: torch.Tensor) -> Any:
        """`num_sample` independent augmentations of one decoded clip."""
        k = self.cfg.num_sample
        if self.device_side:
            cuts = [self.transform.cut(frames) for _ in range(k)]
            return {"frames": [c["frames"] for c in cuts],
                    **{key: np.stack([c[key] for c in cuts]) for key in cuts[0]
                       if key != "frames"}}
        if k == 1:
            return self.transform(frames)
        return torch.stack([self.transform(frames) for _ in range(k)])

    def _frames(self, index: int) -> torch.Tensor:
        """The frames of one random clip of video `index`, uint8 (T, H, W, C)."""
        cached = self._cache.get(index)
        if cached is not None:
            return cached[clip_indices(self.cfg, len(cached), train=True)]
        with open_video(self.records[index].path, self.cfg.backend, self.decode) as video:
            if self.cfg.cache_mb > 0:  # decode every frame once; later clips are cut from memory
                cached = video.get(range(video.num_frames))
                frames = cached[clip_indices(self.cfg, len(cached), train=True)]
            else:
                frames = video.get(clip_indices(self.cfg, video.num_frames, train=True))
            self.manifest.count_decode(self.split, video.backend)
            if index not in self._probed:
                self._probed.add(index)
                _note_warnings(self.manifest, self.split, video)
        if cached is not None and self._cache_bytes + cached.nbytes <= self.cfg.cache_mb * 2**20:
            self._cache[index] = cached  # full: later videos are decoded each time, as without
            self._cache_bytes += cached.nbytes
        return frames

    def __getitem__(self, index: int) -> tuple[Any, int, int]:
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
                 *, split: str = "val") -> None:
        if views_temporal < 1:
            raise ValueError(f"views_temporal must be >= 1, got {views_temporal}")
        self.records, self.cfg, self.split = list(records), cfg, split
        self.views_temporal, self.views_spatial = views_temporal, views_spatial
        self.manifest = manifest if manifest is not None else Manifest()
        self.device_side = cfg.augment == "device"
        self.transform = build_eval_transform(cfg, views_spatial, short_side,
                                              normalize=not self.device_side)
        self.decode = DecodeOptions(decode_short_side(cfg, train=False,
                                                      eval_short_side=short_side),
                                    cfg.decode_threads)
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
        with open_video(self.records[index].path, self.cfg.backend, self.decode) as video:
            views = self.view_indices(video.num_frames)
            union = sorted(set().union(*views))
            frames = video.get(union)
            self.manifest.count_decode(self.split, video.backend)
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
            empty = torch.zeros(self.num_views, 3, self.cfg.num_frames, size, size,
                                dtype=torch.uint8 if self.device_side else torch.float32)
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


def collate_train(batch: list[tuple[Any, int, int]]) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """Stack train items into (clips, labels, indices) with one row per clip: `num_sample`
    clips of a video are consecutive and share its label and index. Device-mode items give a
    dict: the crops packed (`pack_crops`: their sizes differ), the drawn choices stacked."""
    samples, labels, indices = zip(*batch)
    first = samples[0]
    if isinstance(first, dict):
        k = len(first["frames"])
        clips: Any = {**pack_crops([f for s in samples for f in s["frames"]]),
                      **{key: np.concatenate([s[key] for s in samples]) for key in first
                         if key != "frames"}}
    elif first.dim() == 5:  # (k, C, T, H, W) per video
        k = first.shape[0]
        clips = default_collate(samples).flatten(0, 1)  # in shared memory: a view, no copy
    else:
        k, clips = 1, default_collate(samples)
    repeat = lambda values: torch.tensor(values).repeat_interleave(k)  # noqa: E731
    return clips, repeat(labels), repeat(indices)


def build_dataset(cfg: DataConfig, split: str, train: bool, manifest: Manifest,
                  views_temporal: int = 1, views_spatial: int = 1,
                  short_side: int = 0) -> tuple[Dataset, list[str]]:
    """The dataset of one split: train clips (train=True) or multi-view eval videos. The split is
    read by `preflight.read_split`: a training split leaves out missing files by default."""
    found = read_split(cfg, split, train=train)  # data.on_missing applies (preflight.py)
    records, classes = found.records, found.classes
    if train:
        return TrainClipDataset(records, cfg, manifest, split=split), classes
    return EvalVideoDataset(records, cfg, views_temporal, views_spatial, short_side, manifest,
                            split=split), classes
