"""Activation memory of a training forward, counted from what autograd saves for backward.

`saved_bytes_per_clip` runs the forward at batch 1 and at batch 2 under
`torch.autograd.graph.saved_tensors_hooks` and sums the bytes of every distinct storage packed
for backward, leaving out the parameters' own storages (weights are memory either way). The
difference between the two batches is the per-clip activation cost: what is saved once per step
whatever the batch (under autocast, the low-precision copies of frozen weights) cancels out.
This is the number a frozen backbone is meant to shrink: a frozen linear layer needs its input
only for its weight gradient, so it should not save it.
"""
from __future__ import annotations

import contextlib
from typing import Callable

import torch
import torch.nn as nn


def saved_bytes(model: nn.Module, clips: torch.Tensor,
                forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
                amp_dtype: torch.dtype | None = None) -> int:
    """Bytes of the distinct non-parameter storages autograd saves in one forward of `clips`."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen.setdefault(storage.data_ptr(), storage.nbytes())
        return t

    amp = (contextlib.nullcontext() if amp_dtype is None
           else torch.autocast(clips.device.type, dtype=amp_dtype))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), amp:
        out = (forward or model)(clips)
    del out  # the graph (and what it saved) goes with it
    return sum(seen.values())


def saved_bytes_per_clip(model: nn.Module, clip_shape: tuple[int, int, int, int],
                         device: torch.device, *,
                         forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
                         amp_dtype: torch.dtype | None = None) -> int:
    """Saved-for-backward bytes of one more clip of `clip_shape` (C, T, H, W) in train mode."""
    model.train()
    gen = torch.Generator().manual_seed(0)
    one, two = (saved_bytes(model, torch.randn(b, *clip_shape, generator=gen).to(device),
                            forward, amp_dtype) for b in (1, 2))
    return two - one
