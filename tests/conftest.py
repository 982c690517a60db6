"""Shared fixtures: a tiny VideoViT and a matching clip, small enough for CPU in milliseconds."""
from __future__ import annotations

import pytest
import torch

import videopeft

TINY = dict(num_classes=5, num_frames=4, img_size=32)


@pytest.fixture
def tiny_vit() -> videopeft.VideoViT:
    """videomae_tiny: 2 blocks, dim 48, 3 heads, 32 px, 4 frames, 5 classes, eval mode, seeded."""
    torch.manual_seed(0)
    model = videopeft.create_model("videomae_tiny", **TINY)
    with torch.no_grad():  # VideoMAE's 0.001 head scale makes logits ~0: use a visible head
        model.head.weight.normal_(0, 0.5)
    return model.eval()


@pytest.fixture
def clip() -> torch.Tensor:
    """A batch of 2 clips (B, C, T, H, W) matching tiny_vit."""
    return torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))
