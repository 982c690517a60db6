"""AdaptFormer's AdaptMLP: a bottleneck branch beside (or after) each block's MLP.

Branch (ShoufaChen/AdaptFormer models/adapter.py): [LayerNorm 'in'] -> down_proj -> ReLU ->
dropout -> up_proj -> x scale [-> LayerNorm 'out']. 'lora' init: kaiming_uniform(a=sqrt 5) down
weight, zeros for the up weight and both biases, so the branch outputs exactly 0 at step 0.

Placement (models/vit_video.py Block.forward):
    parallel:   x = x + attn;  h = DropPath(mlp(norm2 x));  x = x + h + s*branch(x)
                (the branch reads the residual stream after attention, not norm2(x), and is not
                subject to DropPath)
    sequential: h = DropPath(mlp(norm2 x));  h = h + s*branch(h);  x = x + h

Defaults are AdaptFormer's video recipe (main_video.py): parallel, no LN, scale 0.1, bottleneck 64,
every block, dropout = the model's `--drop`, whose default is 0.0.
Keys: `blocks.i.adaptmlp.down_proj.{weight,bias}`, `blocks.i.adaptmlp.up_proj.{weight,bias}`, plus
`blocks.i.adaptmlp.adapter_layer_norm_before.{weight,bias}` (layernorm in/out) and
`blocks.i.adaptmlp.scale` (scale "learnable"). Base keys are unchanged.
"""
from __future__ import annotations

import logging
import math

import torch
import torch.nn as nn

from videopeft.models.vit import Block, VideoViT

from .base import AdoptedBlock, resolve_layers
from .config import AdaptMLPConfig

__all__ = ["AdaptMLPConfig", "AdaptMLP", "AdaptMLPBlock", "apply_adaptmlp"]

_log = logging.getLogger(__name__)

_ACTS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU}


class AdaptMLP(nn.Module):
    """Bottleneck branch s * up(dropout(act(down(x)))) with optional LayerNorm; outputs 0 at init.

    Returns the branch only (no residual); the block decides where it is added.
    """

    def __init__(self, dim: int, bottleneck: int, *, scale: float | str = 0.1,
                 layernorm: str = "none", dropout: float = 0.0, act: str = "relu",
                 device: torch.device | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.layernorm = layernorm
        # AdaptFormer builds nn.LayerNorm(d) with PyTorch's default eps (1e-5), not the ViT's 1e-6
        self.adapter_layer_norm_before = (nn.LayerNorm(dim, **factory) if layernorm != "none"
                                          else None)
        self.down_proj = nn.Linear(dim, bottleneck, **factory)
        self.act = _ACTS[act]()
        self.dropout = nn.Dropout(dropout)
        self.up_proj = nn.Linear(bottleneck, dim, **factory)
        if scale == "learnable":
            self.scale: nn.Parameter | float = nn.Parameter(torch.ones(1, **factory))
        else:
            self.scale = float(scale)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """AdaptFormer's 'lora' init: kaiming-uniform down weight, everything else in the branch 0."""
        nn.init.kaiming_uniform_(self.down_proj.weight, a=math.sqrt(5))
        nn.init.zeros_(self.down_proj.bias)
        nn.init.zeros_(self.up_proj.weight)
        nn.init.zeros_(self.up_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layernorm == "in":
            x = self.adapter_layer_norm_before(x)
        out = self.up_proj(self.dropout(self.act(self.down_proj(x)))) * self.scale
        if self.layernorm == "out":
            out = self.adapter_layer_norm_before(out)
        return out

    def adapter_params(self) -> list[str]:
        """All of the branch trains (AdapterModule)."""
        return [n for n, _ in self.named_parameters()]


class AdaptMLPBlock(AdoptedBlock):
    """A Block (same submodules and keys) plus `adaptmlp`, in parallel with or after the MLP."""

    def __init__(self, block: Block, adaptmlp: AdaptMLP, mode: str = "parallel") -> None:
        super().__init__(block)
        self.adaptmlp = adaptmlp
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x))))
        h = self.drop_path2(self.ls2(self.mlp(self.norm2(x))))
        if self.mode == "parallel":
            return x + h + self.adaptmlp(x)  # reads the stream after attention; no DropPath
        return x + h + self.adaptmlp(h)  # sequential: adapter with its own residual on h


def apply_adaptmlp(model: VideoViT, cfg: AdaptMLPConfig) -> None:
    """Swap the selected blocks for AdaptMLPBlocks (their branches declare what trains)."""
    layers = resolve_layers(cfg.layers, len(model.blocks))
    for i in layers:
        block = model.blocks[i]
        ref = block.mlp.fc1.weight
        branch = AdaptMLP(model.embed_dim, cfg.bottleneck, scale=cfg.scale,
                          layernorm=cfg.layernorm, dropout=cfg.dropout,
                          device=ref.device, dtype=ref.dtype)
        model.blocks[i] = AdaptMLPBlock(block, branch, cfg.mode)
    _log.debug("adaptmlp: branches in %d of %d blocks", len(layers), len(model.blocks))
