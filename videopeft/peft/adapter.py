"""Houlsby et al. (2019) bottleneck adapters: sequential, after the attention and the MLP sublayers.

Each sublayer output h (before its residual add) becomes h + up(act(down(h))), so the adapter sits
*inside* the sublayer, in series with it; compare AdaptMLP, whose branch runs in parallel with the
MLP. The up projection and both biases start at zero (AdaptFormer's 'lora' init, used here
instead of Houlsby's near-zero normal init) so a fresh adapter is an exact identity.

Placement in the pre-norm block (layer scale and DropPath stay outside the adapter):
    h = attn(norm1 x);  h = h + adapter_attn(h);  x = x + DropPath(ls1 h)
    h = mlp(norm2 x);   h = h + adapter_mlp(h);   x = x + DropPath(ls2 h)
Keys: `blocks.i.adapter_attn.{down_proj,up_proj}.{weight,bias}` and the same for `adapter_mlp`.
"""
from __future__ import annotations

import torch

from videopeft.models.vit import Block, VideoViT

from .adaptmlp import AdaptMLP
from .base import AdoptedBlock, resolve_layers
from .config import AdapterConfig

__all__ = ["AdapterConfig", "AdapterBlock", "apply_adapter"]


class AdapterBlock(AdoptedBlock):
    """A Block (same submodules and keys) with a sequential adapter after each sublayer."""

    def __init__(self, block: Block, adapter_attn: AdaptMLP, adapter_mlp: AdaptMLP) -> None:
        super().__init__(block)
        self.adapter_attn, self.adapter_mlp = adapter_attn, adapter_mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.attn(self.norm1(x))
        x = x + self.drop_path1(self.ls1(h + self.adapter_attn(h)))
        h = self.mlp(self.norm2(x))
        return x + self.drop_path2(self.ls2(h + self.adapter_mlp(h)))


def apply_adapter(model: VideoViT, cfg: AdapterConfig) -> None:
    """Swap the selected blocks for AdapterBlocks (their two AdaptMLPs declare what trains)."""
    for i in resolve_layers(cfg.layers, len(model.blocks)):
        block = model.blocks[i]
        ref = block.mlp.fc1.weight

        def make() -> AdaptMLP:
            return AdaptMLP(model.embed_dim, cfg.bottleneck, scale=1.0, act=cfg.act,
                            device=ref.device, dtype=ref.dtype)

        model.blocks[i] = AdapterBlock(block, make(), make())
