"""Moving a batch of device-mode crops from the DataLoader workers to the device without
making anyone wait: the crops of a batch (their sizes differ) are packed into one flat uint8
buffer, in shared memory inside a worker, so the loader pins one tensor and the device gets one
copy; the shapes stay on the host, so the views are cut there (`unpack_crops`). `to_device`
copies a small host tensor through pinned memory: a CUDA copy from pageable memory would wait
for the device's queue.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = ["pack_crops", "unpack_crops", "to_device"]


def pack_crops(crops: list[torch.Tensor]) -> dict[str, Any]:
    """Crops of different sizes as one flat uint8 buffer ("frames", in shared memory inside a
    DataLoader worker: each crop is copied once, straight out of its decoded frames) and their
    shapes ("shapes", numpy (N, 4)): one tensor to pin and one copy to the device per batch."""
    shapes = np.array([c.shape for c in crops], dtype=np.int64).reshape(-1, 4)
    flat = torch.empty(int(shapes.prod(1).sum()), dtype=torch.uint8)
    if torch.utils.data.get_worker_info() is not None:
        flat.share_memory_()
    offset = 0
    for crop in crops:
        flat[offset:offset + crop.numel()].view(crop.shape).copy_(crop)
        offset += crop.numel()
    return {"frames": flat, "shapes": shapes}


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on `device` without waiting for the device: CUDA copies from pageable
    memory synchronise the stream, so it goes through (cached) pinned memory, unless pinned
    already (a loader's batch)."""
    if device.type != "cuda":
        return t.to(device)
    return (t if t.is_pinned() else t.pin_memory()).to(device, non_blocking=True)


def unpack_crops(batch: dict[str, Any], device: torch.device) -> list[torch.Tensor]:
    """The crops of a collated device-mode batch (`pack_crops`) on `device`: one
    non-blocking copy of the packed buffer, then views of it (the shapes are on the host)."""
    flat = to_device(batch["frames"], device)
    crops, offset = [], 0
    for shape in batch["shapes"].tolist():
        n = math.prod(shape)
        crops.append(flat[offset:offset + n].view(shape))
        offset += n
    return crops
