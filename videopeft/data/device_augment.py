"""Device augmentation (`data.augment: device`): the clip augmentation of the training step run
batched on the GPU, so that DataLoader workers only decode.

The worker half is `TrainTransform.cut` (transforms.py): it draws every random choice exactly as
the worker pipeline does (crop box, flip, RandAugment plan, erasing box; same generators, same
order, so a clip's choices are still a pure function of its seed), cuts the crop out of the
decoded uint8 frames and returns it at its native size with the choices. `collate_train` packs
the crops (their sizes differ) into one flat uint8 buffer and stacks the choices, which stay
numpy arrays on the host: which clips flip, take an op or get erased is decided there, so the
device is never asked for a value (no host synchronisation in the training step).

The device half, `DeviceAugment`, takes that batch on the device and, per clip and the same for
every frame of a clip: resizes the crop to `img_size` (`resize_clip`, the worker's resize),
flips, applies the RandAugment plan (`videopeft.data.randaugment`, timm's ops re-implemented on
tensors), normalises and erases; mixup/cutmix follow in the task's loss as in worker mode.

Worker and device modes draw the same distribution of augmentations: the same ops, parameter
ranges and draws. Two things differ by design, both stated here once: RandAugment runs on the
resized crop instead of on the whole decoded frame (VideoMAE's order), so its image-dependent
ops (autocontrast, equalize, contrast) see the crop's statistics and its relative translations
move the crop; and the erased region's noise is drawn on the device, from the device generator.

Eval in device mode: workers resize and cut the views in uint8; `normalize_clips` runs on the
device.
"""
from __future__ import annotations

import numpy as np
import torch

from videopeft.constants import IMAGENET_MEAN, IMAGENET_STD, RAND_AUGMENT_FILL

from .randaugment import apply_rand_augment
from .transfer import to_device
from .transforms import antialias_for, resize_clip

__all__ = ["DeviceAugment", "normalize_clips", "resolve_augment", "build_device_augment",
           "erase_boxes"]


def resolve_augment(setting: str, device: torch.device) -> str:
    """"worker" or "device" for `data.augment` (`auto` = device on CUDA, worker elsewhere)."""
    if setting == "auto":
        return "device" if device.type == "cuda" else "worker"
    return setting


def normalize_clips(clips: torch.Tensor, mean: tuple[float, ...] = IMAGENET_MEAN,
                    std: tuple[float, ...] = IMAGENET_STD) -> torch.Tensor:
    """Pixels 0..255 (uint8 or float) in (..., C, T, H, W) -> float32 (x/255 - mean)/std, the
    pipeline's one normalisation (`to_normalized_clip`'s arithmetic, batched)."""
    shape = (-1, 1, 1, 1)
    scale = torch.tensor([1.0 / (255.0 * s) for s in std], device=clips.device).view(shape)
    shift = torch.tensor([m / s for m, s in zip(mean, std)], device=clips.device).view(shape)
    return clips.to(torch.float32).mul_(scale).sub_(shift)


class DeviceAugment:
    """The device half of training augmentation: crops and drawn choices -> float clips
    (B, C, T, img_size, img_size), normalised. Built once per run from the DataConfig."""

    def __init__(self, img_size: int, *, crop: str = "random_resized",
                 antialias: bool | str = "auto", rand_augment: bool = False,
                 mean: tuple[float, ...] = IMAGENET_MEAN,
                 std: tuple[float, ...] = IMAGENET_STD) -> None:
        self.img_size, self.rand_augment = img_size, rand_augment
        self.antialias = antialias_for(antialias, crop)
        self.mean, self.std = tuple(mean), tuple(std)

    def resize(self, crops: list[torch.Tensor]) -> torch.Tensor:
        """uint8 crops (T, h, w, C) of any sizes -> pixel values (B, T, C, S, S) as float32,
        rounded to integers as the worker's uint8 resize rounds."""
        size = (self.img_size, self.img_size)
        out = [resize_clip(c.permute(0, 3, 1, 2).float(), size, antialias=self.antialias)
               for c in crops]
        return torch.stack(out).round_().clamp_(0, 255)

    def __call__(self, crops: list[torch.Tensor], choices: dict[str, np.ndarray]
                 ) -> torch.Tensor:
        """`crops`: uint8 (T, h, w, C) on the device; `choices` (numpy, as collated): "flip"
        (B,) bool, "rand_augment" (B, layers, 3), "erase" (B, 4)."""
        device = crops[0].device
        x = self.resize(crops)  # (B, T, C, S, S)
        flip = choices["flip"]
        if flip.any():
            mask = to_device(torch.from_numpy(flip), device).view(-1, 1, 1, 1, 1)
            x = torch.where(mask, x.flip(-1), x)
        plans = choices["rand_augment"]
        if self.rand_augment and plans.shape[1]:
            x = apply_rand_augment(x, plans, fill=RAND_AUGMENT_FILL)
        clips = normalize_clips(x.transpose(1, 2), self.mean, self.std)  # (B, C, T, S, S)
        return erase_boxes(clips, choices["erase"])


def erase_boxes(clips: torch.Tensor, boxes: np.ndarray) -> torch.Tensor:
    """Fill each clip's box (top, left, height, width on the host; height 0 = none), on every
    channel and frame, with standard normal noise (timm's "pixel" mode, on normalised values)."""
    chosen = np.flatnonzero(boxes[:, 2] > 0) if len(boxes) else np.zeros(0, np.int64)
    if not len(chosen):
        return clips
    device = clips.device
    rows = torch.arange(clips.shape[-2], device=device).view(1, -1, 1)
    cols = torch.arange(clips.shape[-1], device=device).view(1, 1, -1)
    top, left, h, w = to_device(torch.from_numpy(boxes[chosen]), device).unbind(1)
    inside = ((rows >= top.view(-1, 1, 1)) & (rows < (top + h).view(-1, 1, 1))
              & (cols >= left.view(-1, 1, 1)) & (cols < (left + w).view(-1, 1, 1)))
    index = to_device(torch.from_numpy(chosen), device)
    sub = clips.index_select(0, index)
    sub = torch.where(inside[:, None, None], torch.randn_like(sub), sub)
    return clips.index_copy_(0, index, sub)


def build_device_augment(cfg) -> DeviceAugment:
    """The device half for a DataConfig (its size, crop's antialias, RandAugment, mean/std)."""
    return DeviceAugment(cfg.img_size, crop=cfg.crop, antialias=cfg.antialias,
                         rand_augment=bool(cfg.rand_augment), mean=cfg.mean, std=cfg.std)
