"""The named VideoMAE variants as plain kwargs (timm's names), kept free of torch so the config
loader can check `model.name` before anything heavy is imported.

Encoder sizes from MCG-NJU/VideoMAE:modeling_finetune.py (vit_*_patch16_224); decoder sizes from
its pre-training scripts (`--decoder_depth` 4 for S/B, 12 for L/H) and modeling_pretrain.py.
"""
from __future__ import annotations

from typing import Any

__all__ = ["MODEL_ARCHS", "DECODER_ARCHS"]

MODEL_ARCHS: dict[str, dict[str, Any]] = {
    "videomae_tiny": dict(embed_dim=48, depth=2, num_heads=3),  # for tests and the demo
    "videomae_small": dict(embed_dim=384, depth=12, num_heads=6),
    "videomae_base": dict(embed_dim=768, depth=12, num_heads=12),
    "videomae_large": dict(embed_dim=1024, depth=24, num_heads=16),
    "videomae_huge": dict(embed_dim=1280, depth=32, num_heads=16),
}

# the masked-autoencoder decoder that pre-trains each encoder
DECODER_ARCHS: dict[str, dict[str, int]] = {
    "videomae_tiny": dict(decoder_dim=32, decoder_depth=1, decoder_heads=2),
    "videomae_small": dict(decoder_dim=192, decoder_depth=4, decoder_heads=3),
    "videomae_base": dict(decoder_dim=384, decoder_depth=4, decoder_heads=6),
    "videomae_large": dict(decoder_dim=512, decoder_depth=12, decoder_heads=8),
    "videomae_huge": dict(decoder_dim=640, decoder_depth=12, decoder_heads=8),
}
