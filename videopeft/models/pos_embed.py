"""Position embeddings for (T, H, W) token grids: VideoMAE's fixed sinusoid table and 3-D resampling.

Policy (why this file exists, see VideoMAE#58): a model built for another frame count or resolution
than its checkpoint either *regenerates* the sinusoid table for the new grid (what VideoMAE does: the
table is a function of the flattened token index only) or *resamples* a table in 3-D, time and space
separately, so that "frame t" keeps the embedding it had at the checkpoint's grid. Learned tables are
always resampled. Resampling to the same grid returns the input unchanged.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange

Grid = tuple[int, int, int]  # (T', H', W') token grid, time-major

__all__ = ["Grid", "sinusoid_table", "resample_pos_embed_3d", "table_for_grid"]


def sinusoid_table(num_positions: int, dim: int) -> torch.Tensor:
    """VideoMAE's fixed table (1, N, D): angle p / 10000^(2*floor(j/2)/D), sin on even j, cos on odd.

    Built in float64 and cast to float32, like the reference, so tables match bit for bit.
    """
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]
    j = torch.arange(dim, dtype=torch.float64)[None, :]
    angle = pos / torch.pow(10000.0, 2 * torch.div(j, 2, rounding_mode="floor") / dim)
    table = torch.where(j.long() % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.float().unsqueeze(0)


def resample_pos_embed_3d(table: torch.Tensor, src: Grid, dst: Grid,
                          num_prefix_tokens: int = 0) -> torch.Tensor:
    """Resample a (1, P + T*H*W, D) table from grid `src` to `dst`: time linearly, space bicubically.

    Prefix tokens (a cls token) are kept as they are. Interpolation runs in float32 and the result
    is cast back. Returns `table` itself when the grids are equal.
    """
    if tuple(src) == tuple(dst):
        return table
    n_src = src[0] * src[1] * src[2]
    if table.shape[1] != num_prefix_tokens + n_src:
        raise ValueError(f"position table has {table.shape[1]} rows, expected "
                         f"{num_prefix_tokens} + {n_src} for grid {tuple(src)}")
    prefix, grid = table[:, :num_prefix_tokens], table[:, num_prefix_tokens:]
    dtype = grid.dtype
    t, h, w = src
    x = rearrange(grid.float(), "1 (t h w) d -> t d h w", t=t, h=h, w=w)
    if (h, w) != tuple(dst[1:]):
        x = F.interpolate(x, size=dst[1:], mode="bicubic", align_corners=False)
    if t != dst[0]:
        x = rearrange(x, "t d h w -> (h w) d t")
        x = F.interpolate(x, size=dst[0], mode="linear", align_corners=False)
        x = rearrange(x, "(h w) d t -> t d h w", h=dst[1], w=dst[2])
    x = rearrange(x, "t d h w -> 1 (t h w) d").to(dtype)
    return torch.cat([prefix, x], dim=1)


def table_for_grid(dim: int, grid: Grid, source_grid: Grid | None = None) -> torch.Tensor:
    """The sinusoid table for `grid`: regenerated (source_grid None) or resampled from `source_grid`."""
    if source_grid is None or tuple(source_grid) == tuple(grid):
        return sinusoid_table(math.prod(grid), dim)
    return resample_pos_embed_3d(sinusoid_table(math.prod(source_grid), dim), source_grid, grid)
