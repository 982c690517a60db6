"""Clip transforms: uint8 frames `(T, H, W, C)` in, normalised float clips `(C, T, H, W)` out.

Training augmentation is *clip-consistent*: every random choice (crop box, flip, RandAugment ops
and magnitudes, erased region) is drawn once per clip and applied to every frame, so augmentation
never invents motion. Order (as VideoMAE): RandAugment on the decoded frames, random resized (or
multi-scale) crop to `img_size`, horizontal flip, normalisation (once), random erasing.

Evaluation resizes the short side to `short_side`, normalises once, then cuts 1 centre crop or 3
crops along the long side at offsets `int(i*(long - size)/2)`, i = 0, 1, 2 -> `(S, C, T, H, W)`.

Resizing and cropping run on whole clips with `torch.nn.functional.interpolate` (frames batched),
on uint8 in channels-last layout (PyTorch's fast path; the crop is converted to float only after
it is resized); only RandAugment goes through PIL, frame by frame. Every resize is `resize_clip`:
bilinear, half-pixel centres, antialiased or not by `data.antialias`. Its default "auto" resizes as
the official pipeline does at that step (`antialias_for`): GroupMultiScaleCrop resizes with PIL's
bilinear filter, which widens its support when shrinking (antialias on;
MCG-NJU/VideoMAE:transforms.py); VideoMAE's random-resized crop uses `F.interpolate` without
antialias (video_transforms.py `random_resized_crop`) and its test resize OpenCV's INTER_LINEAR
(functional.py `resize_clip`), which does not antialias either.

Train crops (`data.crop`): `random_resized` is torchvision's rule (VideoMAE's
video_transforms.py `_get_param_spatial_crop`: area in `data.scale`, aspect 3/4..4/3, 10 tries,
then the centre); `multi_scale` is TSN's GroupMultiScaleCrop as MCG-NJU/VideoMAE:transforms.py
has it (`multi_scale_crop_box`).

Randomness comes from torch's global generator (crop, flip; or an explicit `generator`), and from
python's `random` and numpy's global generator (timm's RandAugment and RandomErasing). DataLoader
seeds all three differently in each worker.

Device augmentation (`data.augment: device`, `videopeft.data.device_augment`): `TrainTransform.cut`
draws the very same random choices as `__call__`, from the same generators in the same order, but
applies only the crop: it returns the uint8 crop at its native size and the drawn parameters,
and the device does the rest. `EvalTransform(normalize=False)` returns uint8 views likewise.
"""
from __future__ import annotations

import math
import random
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from videopeft.config import DataConfig
from videopeft.constants import (ANTIALIAS_CHOICES, CROPS, ERASE_AREA, ERASE_MIN_ASPECT,
                                 IMAGENET_MEAN, IMAGENET_STD, MULTI_SCALE_MAX_DISTORT,
                                 MULTI_SCALES, SPATIAL_VIEWS)
from videopeft.data.randaugment import ClipRandAugment, RandAugmentPlanner

__all__ = [ "TrainTransform", "EvalTransform", "build_train_transform",
           "build_eval_transform", "random_resized_crop_box", "multi_scale_crop_box",
           "multi_scale_offsets", "resize_clip", "antialias_for", "resize_short_side",
           "to_normalized_clip", "spatial_crop_offsets", "erase_box", "decode_short_side",
           "CROPS"]

Box = tuple[int, int, int, int]  # top, left, height, width
_RATIO = (3.0 / 4.0, 4.0 / 3.0)
# the resize steps of the official pipelines that antialias (PIL bilinear); see antialias_for
_PIL_RESIZED = ("multi_scale",)


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator, dtype=torch.float64))


def _randint(high: int, generator: torch.Generator | None) -> int:
    """An integer in [0, high] (inclusive)."""
    return int(torch.randint(high + 1, (1,), generator=generator))


def random_resized_crop_box(height: int, width: int, scale: tuple[float, float],
                            ratio: tuple[float, float] = _RATIO,
                            generator: torch.Generator | None = None) -> Box:
    """A crop box of random area fraction in `scale` and aspect in `ratio` (torchvision's rule)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * _uniform(scale[0], scale[1], generator)
        aspect = math.exp(_uniform(log_ratio[0], log_ratio[1], generator))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return _randint(height - h, generator), _randint(width - w, generator), h, w
    in_ratio = width / height  # fallback: the largest centre crop within the ratio range
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def multi_scale_offsets(height: int, width: int, crop_h: int, crop_w: int
                        ) -> list[tuple[int, int]]:
    """The 13 (top, left) corners GroupMultiScaleCrop picks from (`fill_fix_offset` with
    more_fix_crop): a 5 x 5 grid of steps `(side - crop) // 4`, taking the 4 corners, the centre,
    the 4 edge midpoints and the 4 quarter points; repeats are kept, as the reference's list."""
    h_step, w_step = (height - crop_h) // 4, (width - crop_w) // 4
    grid = ((0, 0), (0, 4), (4, 0), (4, 4), (2, 2),  # corners (as (row, column) steps), centre
            (2, 0), (2, 4), (4, 2), (0, 2),  # centre left / right, lower / upper centre
            (1, 1), (1, 3), (3, 1), (3, 3))  # the quarter points
    return [(i * h_step, j * w_step) for i, j in grid]


def multi_scale_crop_box(height: int, width: int, size: int | tuple[int, int],
                         scales: tuple[float, ...] = MULTI_SCALES,
                         max_distort: int = MULTI_SCALE_MAX_DISTORT,
                         generator: torch.Generator | None = None) -> Box:
    """GroupMultiScaleCrop's box (MCG-NJU/VideoMAE:transforms.py): sides `int(short * s)` for s in
    `scales`, a side within 2 px of the output `size` snapped to it, height and width scales at
    most `max_distort` steps apart (one pair drawn uniformly), then one of the 13 fixed corners of
    `multi_scale_offsets` drawn uniformly."""
    out_h, out_w = (size, size) if isinstance(size, int) else size
    sides = [int(min(height, width) * s) for s in scales]
    crop_hs = [out_h if abs(x - out_h) < 3 else x for x in sides]
    crop_ws = [out_w if abs(x - out_w) < 3 else x for x in sides]
    pairs = [(h, w) for i, h in enumerate(crop_hs) for j, w in enumerate(crop_ws)
             if abs(i - j) <= max_distort]
    h, w = pairs[_randint(len(pairs) - 1, generator)]
    offsets = multi_scale_offsets(height, width, h, w)
    top, left = offsets[_randint(len(offsets) - 1, generator)]
    return top, left, h, w


def antialias_for(setting: bool | str, step: str) -> bool:
    """Whether the resize of `step` ("random_resized", "multi_scale" or "eval") antialiases:
    `setting` True / False, or "auto" = as the official pipeline (only PIL's multi-scale resize)."""
    if setting not in ANTIALIAS_CHOICES:
        raise ValueError(f"antialias must be one of {list(ANTIALIAS_CHOICES)}, got {setting!r}")
    return step in _PIL_RESIZED if setting == "auto" else bool(setting)


def resize_clip(clip: torch.Tensor, size: tuple[int, int], *, antialias: bool) -> torch.Tensor:
    """Bilinear resize (half-pixel centres) of frames (N, C, H, W) to `size` = (height, width):
    the one resize of the pipeline, worker or device side. uint8 in channels-last layout (a
    permuted (N, H, W, C) tensor) takes PyTorch's fast uint8 path, about 10x faster than float."""
    if tuple(clip.shape[-2:]) == tuple(size):
        return clip
    return F.interpolate(clip, size=size, mode="bilinear", align_corners=False,
                         antialias=antialias)


def resize_short_side(clip: torch.Tensor, size: int, *, antialias: bool = False) -> torch.Tensor:
    """Resize (T, C, H, W) so the shorter side is `size`, aspect kept (VideoMAE's rounding)."""
    h, w = clip.shape[-2:]
    if h <= w:
        return resize_clip(clip, (size, int(size * w / h)), antialias=antialias)
    return resize_clip(clip, (int(size * h / w), size), antialias=antialias)


def to_normalized_clip(frames: torch.Tensor, mean: tuple[float, ...],
                       std: tuple[float, ...]) -> torch.Tensor:
    """uint8 (T, C, H, W) -> contiguous float (C, T, H, W), (x/255 - mean)/std: the one
    normalisation of the pipeline, as one multiply-add."""
    clip = rearrange(frames, "t c h w -> c t h w").to(torch.float32,
                                                       memory_format=torch.contiguous_format)
    scale = torch.tensor([1.0 / (255.0 * s) for s in std]).view(-1, 1, 1, 1)
    shift = torch.tensor([m / s for m, s in zip(mean, std)]).view(-1, 1, 1, 1)
    return clip.mul_(scale).sub_(shift)


def spatial_crop_offsets(height: int, width: int, size: int, views: int) -> list[tuple[int, int]]:
    """(top, left) of the eval crops: centre for 1 view; 3 along the long side for 3 views."""
    if views not in SPATIAL_VIEWS:
        raise ValueError(f"views_spatial must be 1 or 3, got {views}")
    if min(height, width) < size:
        raise ValueError(f"frames of {height}x{width} are smaller than the {size}px crop")
    if views == 1:
        return [((height - size) // 2, (width - size) // 2)]
    if height > width:
        return [(int(i * (height - size) / 2), (width - size) // 2) for i in range(3)]
    return [((height - size) // 2, int(i * (width - size) / 2)) for i in range(3)]


def _check_frames(frames: torch.Tensor) -> None:
    if frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got {frames.dtype} "
                         f"{tuple(frames.shape)}")


class TrainTransform:
    """Clip-consistent train augmentation: uint8 (T, H, W, C) -> float (C, T, img, img)."""

    def __init__(self, img_size: int, *, scale: tuple[float, float] = (0.08, 1.0),
                 crop: str = "random_resized", antialias: bool | str = "auto",
                 flip: bool = False, rand_augment: str = "", random_erasing: float = 0.0,
                 mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD,
                 generator: torch.Generator | None = None, device_side: bool = False) -> None:
        if crop not in CROPS:
            raise ValueError(f"crop must be one of {list(CROPS)}, got {crop!r}")
        self.antialias = antialias_for(antialias, crop)
        if not 0.0 <= random_erasing <= 1.0:
            raise ValueError(f"random_erasing must be a probability, got {random_erasing}")
        if not 0.0 < scale[0] <= scale[1] <= 1.0:
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got {scale}")
        self.img_size, self.scale, self.crop, self.flip = img_size, tuple(scale), crop, flip
        self.mean, self.std, self.generator = tuple(mean), tuple(std), generator
        self.random_erasing = random_erasing
        self.rand_augment: Callable | None = None  # worker mode: timm's ops through PIL
        self.planner = None  # device mode: draws timm's choices, applied on the device
        self.erase = None
        if device_side:
            if rand_augment:
                self.planner = RandAugmentPlanner(rand_augment, img_size)
            return
        if rand_augment:
            self.rand_augment = ClipRandAugment(rand_augment, img_size)
        if random_erasing > 0:
            from timm.data.random_erasing import RandomErasing

            self.erase = RandomErasing(random_erasing, mode="pixel", max_count=1, device="cpu")

    def _box(self, height: int, width: int) -> Box:
        if self.crop == "multi_scale":
            return multi_scale_crop_box(height, width, self.img_size, generator=self.generator)
        return random_resized_crop_box(height, width, self.scale, generator=self.generator)

    def _flip(self) -> bool:
        return self.flip and float(torch.rand((), generator=self.generator)) < 0.5

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        _check_frames(frames)
        if self.rand_augment is not None:
            frames = self.rand_augment(frames)
        top, left, h, w = self._box(frames.shape[1], frames.shape[2])
        crop = rearrange(frames[:, top:top + h, left:left + w], "t h w c -> t c h w")
        crop = resize_clip(crop, (self.img_size, self.img_size), antialias=self.antialias)
        if self._flip():
            crop = crop.flip(-1)
        clip = to_normalized_clip(crop, self.mean, self.std)
        if self.erase is not None:  # one region for all frames: erase a (C*T, H, W) view
            self.erase(clip.view(-1, self.img_size, self.img_size))
        return clip

    def cut(self, frames: torch.Tensor) -> dict[str, Any]:
        """Device mode's worker half: the crop, a uint8 (T, h, w, C) view at its native size,
        and the choices `__call__` would draw (same generators, same order), as numpy values
        because they stay on the host: "flip" (bool), "rand_augment" (the plan, `randaugment`; no rows
        when off) and "erase" (top, left, height, width at img_size; height 0 = none)."""
        _check_frames(frames)
        plan = self.planner.draw() if self.planner is not None else np.zeros((0, 3), np.float32)
        top, left, h, w = self._box(frames.shape[1], frames.shape[2])
        flip = self._flip()
        box = erase_box(self.random_erasing, self.img_size, self.img_size) \
            if self.random_erasing > 0 else None
        crop = frames[:, top:top + h, left:left + w]  # a view: the collate copies it once
        return {"frames": crop, "flip": np.bool_(flip), "rand_augment": np.asarray(plan),
                "erase": np.array(box or (0, 0, 0, 0), dtype=np.int64)}


class EvalTransform:
    """Short-side resize, one normalisation, then 1 or 3 crops: uint8 (T,H,W,C) -> (S,C,T,H,W).

    `prepare` (resize + normalise) and `views` are separate so a multi-view eval can prepare the
    union of its temporal views' frames once and cut every view from the result.
    """

    def __init__(self, img_size: int, *, views_spatial: int = 1, short_side: int = 0,
                 antialias: bool | str = "auto", mean: tuple[float, ...] = IMAGENET_MEAN,
                 std: tuple[float, ...] = IMAGENET_STD, normalize: bool = True) -> None:
        short_side = short_side or img_size
        if views_spatial not in SPATIAL_VIEWS:
            raise ValueError(f"views_spatial must be 1 or 3, got {views_spatial}")
        if short_side < img_size:
            raise ValueError(f"short_side={short_side} is smaller than the crop "
                             f"img_size={img_size}")
        self.img_size, self.views_spatial, self.short_side = img_size, views_spatial, short_side
        self.antialias = antialias_for(antialias, "eval")
        self.mean, self.std, self.normalize = tuple(mean), tuple(std), normalize

    def prepare(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (T, H, W, C) -> resized, normalised float (C, T, H', W'); with
        `normalize=False` the resized uint8 (C, T, H', W') (the device normalises)."""
        _check_frames(frames)
        clip = resize_short_side(rearrange(frames, "t h w c -> t c h w"), self.short_side,
                                 antialias=self.antialias)
        if not self.normalize:
            return rearrange(clip, "t c h w -> c t h w")
        return to_normalized_clip(clip, self.mean, self.std)

    def views(self, clip: torch.Tensor, frame_rows: list[list[int]]) -> torch.Tensor:
        """Cut every (temporal view, spatial crop) of a prepared clip (C, T', H', W'):
        `frame_rows[v]` are view v's frame positions in T' -> (V*S, C, T, img, img), view-major.
        Frames are gathered once per temporal view, crops copied straight into the output."""
        size = self.img_size
        offsets = spatial_crop_offsets(clip.shape[-2], clip.shape[-1], size, self.views_spatial)
        out = clip.new_empty(len(frame_rows) * len(offsets), clip.shape[0], len(frame_rows[0]),
                             size, size)
        k = 0
        for rows in frame_rows:
            frames = clip[:, rows]
            for top, left in offsets:
                out[k].copy_(frames[..., top:top + size, left:left + size])
                k += 1
        return out

    def crop(self, clip: torch.Tensor) -> torch.Tensor:
        """(C, T, H', W') -> (S, C, T, img, img)."""
        return self.views(clip, [list(range(clip.shape[1]))])

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        return self.crop(self.prepare(frames))


def erase_box(probability: float, height: int, width: int
              ) -> tuple[int, int, int, int] | None:
    """The region random erasing blanks, or None: timm's RandomErasing rule with VideoMAE's
    settings (count 1; timm/data/random_erasing.py `_erase`), drawn from python's `random` exactly
    as timm draws it: apply with `probability`; then up to 10 tries of an area fraction in
    `ERASE_AREA` and a log-uniform aspect ratio, kept when the box fits strictly inside."""
    if random.random() > probability:
        return None
    area = height * width
    log_ratio = (math.log(ERASE_MIN_ASPECT), math.log(1 / ERASE_MIN_ASPECT))
    for _ in range(10):
        target = random.uniform(*ERASE_AREA) * area
        aspect = math.exp(random.uniform(*log_ratio))
        h = int(round(math.sqrt(target * aspect)))
        w = int(round(math.sqrt(target / aspect)))
        if w < width and h < height:
            return random.randint(0, height - h), random.randint(0, width - w), h, w
    return None


def decode_short_side(cfg: DataConfig, *, train: bool, eval_short_side: int = 0) -> int:
    """The short side (px) to decode videos at, 0 = full size (`data.decode_short_side`).

    A set value holds for training; evaluation never decodes smaller than its resize target.
    Auto (0) keeps every pixel some crop could use: training, the side of the smallest crop
    scaled to `img_size` (random-resized: `img_size / sqrt(scale[0])`, 792 px for VideoMAE's
    (0.08, 1); multi-scale: `img_size / 0.66`, 340 px); evaluation, twice the eval short side.
    So the official 240p / 320p datasets decode at full size, exactly as the official
    pipelines, and only larger videos (720p camera footage, say) are decoded smaller.
    """
    target = eval_short_side or cfg.img_size
    if cfg.decode_short_side:
        return cfg.decode_short_side if train else max(cfg.decode_short_side, target)
    if not train:
        return 2 * target
    smallest = min(MULTI_SCALES) if cfg.crop == "multi_scale" else math.sqrt(cfg.scale[0])
    return math.ceil(cfg.img_size / smallest)


def build_train_transform(cfg: DataConfig, *, generator: torch.Generator | None = None,
                          device_side: bool = False) -> TrainTransform:
    """The train augmentation a DataConfig asks for (its crop, antialias, flip, RandAugment,
    erasing); `device_side`: the worker half of device augmentation (`TrainTransform.cut`)."""
    return TrainTransform(cfg.img_size, scale=cfg.scale, crop=cfg.crop, antialias=cfg.antialias,
                          flip=cfg.flip, rand_augment=cfg.rand_augment,
                          random_erasing=cfg.random_erasing, mean=cfg.mean, std=cfg.std,
                          generator=generator, device_side=device_side)


def build_eval_transform(cfg: DataConfig, views_spatial: int = 1,
                         short_side: int = 0, *, normalize: bool = True) -> EvalTransform:
    """Eval resize + crops for a DataConfig; short_side 0 means cfg.img_size."""
    return EvalTransform(cfg.img_size, views_spatial=views_spatial, short_side=short_side,
                         antialias=cfg.antialias, mean=cfg.mean, std=cfg.std,
                         normalize=normalize)
