"""Fit renamed checkpoint weights to one VideoViT: the shapes that depend on the model.

An image patch kernel is inflated over the tubelet; a learned position table is resampled from the
checkpoint's grid to the model's (in 3-D; an image table in space and repeated over time), or
dropped for a model with the fixed sinusoid table; a class token the model lacks and a head of
another class count are dropped. Every change is written into the `ConvertNotes`.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from videopeft.errors import CheckpointError

from .converters import ConvertNotes, StateDict
from .pos_embed import Grid, resample_pos_embed_3d

__all__ = ["inflate_patch_weight", "fit_to_model"]


def inflate_patch_weight(weight: torch.Tensor, tubelet: int) -> torch.Tensor:
    """Image patch kernel (D, C, p, p) -> tubelet kernel (D, C, tubelet, p, p), 'average' inflation.

    The 2-D kernel is repeated over the tubelet's frames and divided by `tubelet`, so a clip of
    identical frames gives exactly the image response. ('central' inflation, the kernel in one frame
    and zeros elsewhere, gives the same on static clips but ignores the other frames; not used.)
    """
    return weight.unsqueeze(2).repeat(1, 1, tubelet, 1, 1) / tubelet


def fit_to_model(sd: StateDict, model: nn.Module, notes: ConvertNotes, source_grid: Grid | None,
                 *, image: bool) -> StateDict:
    """Fit `sd` (VideoViT keys, modified in place and returned) to `model`'s shapes.

    `source_grid` is the grid a learned video table was made for (inferred when None); `image`
    says the checkpoint is an image ViT (a square 2-D table).
    """
    target = model.state_dict()
    patch = sd.get("patch_embed.proj.weight")
    want = target.get("patch_embed.proj.weight")
    if patch is not None and want is not None and patch.ndim == 4 and want.ndim == 5:
        tubelet = want.shape[2]
        sd["patch_embed.proj.weight"] = inflate_patch_weight(patch, tubelet)
        notes.resized["patch_embed.proj.weight"] = (
            f"{tuple(patch.shape)} -> {tuple(sd['patch_embed.proj.weight'].shape)} "
            f"(image kernel inflated over {tubelet} frames, average)")
    if "pos_embed" in sd:
        _fit_pos_embed(sd, model, notes, source_grid, image=image)
    if "cls_token" in sd and model.cls_token is None:
        del sd["cls_token"]
        notes.ignored["cls_token"] = "model has no class token"
    for key in ("head.weight", "head.bias"):
        if key in sd and key not in target:
            del sd[key]
            notes.ignored[key] = "model has no head (num_classes=0)"
        elif key in sd and sd[key].shape != target[key].shape:
            notes.ignored[key] = (f"head of shape {tuple(sd.pop(key).shape)}, model's is "
                                  f"{tuple(target[key].shape)}: new head left fresh")
    return sd


def _fit_pos_embed(sd: StateDict, model: nn.Module, notes: ConvertNotes,
                   source_grid: Grid | None, *, image: bool) -> None:
    """Resample a learned table to the model's grid, or drop it for a sinusoid model."""
    table = sd["pos_embed"]
    if not isinstance(model.pos_embed, nn.Parameter):
        del sd["pos_embed"]
        notes.ignored["pos_embed"] = "model uses the fixed sinusoid table"
        return
    grid: Grid = model.grid
    model_prefix = model.pos_embed.shape[1] - math.prod(grid)
    src_prefix = 1 if "cls_token" in sd else 0
    n = table.shape[1] - src_prefix
    if image:
        side = math.isqrt(n)
        if side * side != n and src_prefix and math.isqrt(n + 1) ** 2 == n + 1:
            src_prefix, n, side = 0, n + 1, math.isqrt(n + 1)  # timm no_embed_class tables
        if side * side != n:
            raise CheckpointError(f"pos_embed: {n} image positions are not a square grid")
        src: Grid = (1, side, side)
    else:
        src = tuple(source_grid) if source_grid else _infer_table_grid(n, grid)
    if math.prod(src) != n:
        raise CheckpointError(f"pos_embed: {n} positions do not make the grid {src}")
    prefix, body = table[:, :src_prefix], table[:, src_prefix:]
    how = []
    if src != grid:
        body = resample_pos_embed_3d(body, src, grid)
        how.append(f"grid {src} -> {grid}" + (" (space resampled, repeated over time)"
                                               if image else " (resampled in 3-D)"))
    if model_prefix > src_prefix:
        prefix = torch.zeros(1, model_prefix, table.shape[2], dtype=table.dtype)
        how.append("zero class-token row added")
    elif model_prefix < src_prefix:
        prefix = prefix[:, :model_prefix]
        how.append("class-token row dropped")
    sd["pos_embed"] = torch.cat([prefix, body], dim=1)
    if how:
        notes.resized["pos_embed"] = (f"{tuple(table.shape)} -> {tuple(sd['pos_embed'].shape)} "
                                      f"({', '.join(how)})")


def _infer_table_grid(n: int, dst: Grid) -> Grid:
    """The grid of an n-row video table with no metadata: same space or same time as the model."""
    t, h, w = dst
    cands = set()
    if n % (h * w) == 0:
        cands.add((n // (h * w), h, w))
    if n % t == 0 and math.isqrt(n // t) ** 2 == n // t:
        cands.add((t, math.isqrt(n // t), math.isqrt(n // t)))
    if len(cands) == 1:
        return cands.pop()
    raise CheckpointError(f"pos_embed: cannot tell the grid of a {n}-row table for a model grid "
                          f"{dst} (candidates {sorted(cands) or 'none'}); pass source_grid=")
