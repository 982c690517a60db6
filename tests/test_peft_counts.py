"""Trainable-parameter counts on VideoMAE ViT-B (D=768, L=12, SSv2's 174 classes). AdaptMLP r=64,
with the layer shapes of ShoufaChen/AdaptFormer:models/adapter.py, adds 12 x (768*64+64 + 64*768+768)
= 12 x 99,136 = 1,189,632 (the AdaptFormer paper's 1.19M) and trains 1,324,974 with fc_norm and head."""
from __future__ import annotations

import copy

import pytest
import torch

import videopeft
from videopeft import peft

D, L, HEAD, FC_NORM = 768, 12, 768 * 174 + 174, 2 * 768


@pytest.fixture(scope="module")
def vit_b_meta() -> videopeft.VideoViT:
    """ViT-B built once, without its (slow, irrelevant here) weight init, and moved to the meta
    device: shapes only, so every copy is free."""
    with pytest.MonkeyPatch.context() as patch:
        for cls in (torch.nn.Linear, torch.nn.Conv3d):
            patch.setattr(cls, "reset_parameters", lambda self: None)
        patch.setattr(videopeft.VideoViT, "_init_weights", lambda self, scale: None)
        return videopeft.create_model("videomae_base", num_classes=174).to("meta")


@pytest.fixture
def vit_b(vit_b_meta) -> videopeft.VideoViT:
    return copy.deepcopy(vit_b_meta)


def test_backbone_has_the_reference_size(vit_b):
    assert sum(p.numel() for p in vit_b.parameters()) == 86_361_006  # 86.23M + fc_norm + head


def test_adaptmlp_r64_adds_1_189_632_parameters(vit_b):
    report = peft.apply(vit_b, {"name": "adaptmlp", "bottleneck": 64})
    assert report.group("adaptmlp").count == 1_189_632 == L * (D * 64 + 64 + 64 * D + D)
    assert report.num_trainable == 1_324_974
    assert report.num_total == 86_361_006 + 1_189_632


@pytest.mark.parametrize("p", [1, 5, 50])
def test_vpt_deep_adds_l_p_d_parameters(vit_b, p):
    report = peft.apply(vit_b, {"name": "vpt", "num_prompts": p})
    assert report.group("vpt").count == 12 * p * 768
    assert report.num_trainable == 12 * p * 768 + HEAD + FC_NORM


def test_vpt_shallow_and_shared_add_p_d_parameters(vit_b):
    assert peft.apply(vit_b, {"name": "vpt", "num_prompts": 10, "deep": False}).group("vpt").count \
        == 10 * D


def test_lora_rank8_on_qkv(vit_b):
    report = peft.apply(vit_b, {"name": "lora", "rank": 8})
    assert report.group("lora").count == L * (8 * D + 3 * D * 8)


def test_linear_probe_trains_head_and_fc_norm(vit_b):
    assert peft.apply(vit_b, {"name": "linear"}).num_trainable == HEAD + FC_NORM


def test_houlsby_adapter_has_two_bottlenecks_per_block(vit_b):
    report = peft.apply(vit_b, {"name": "adapter", "bottleneck": 64})
    assert report.group("adapter").count == 2 * 1_189_632
