"""FLOP counting: the measured count equals the analytical ViT figure whatever the attention kernel,
PEFT modules add their own products, and training FLOPs follow the trainable set."""
from __future__ import annotations

import pytest
import torch

import videopeft
from videopeft import peft
from videopeft.models.flops import (explicit_attention, forward_flops, training_flops,
                                    vit_forward_flops)

# 4 frames x 32 px, patch 8: N = 2 * 4 * 4 = 32 tokens, D = 48, H = 192, 2 blocks, 5 classes
T, S, P = 4, 32, 8
CLIP = (3, T, S, S)
N, D, H, DEPTH, CLASSES = 32, 48, 192, 2, 5


def _tiny(method: dict | None = None, fused: bool = True) -> videopeft.VideoViT:
    torch.manual_seed(0)
    model = videopeft.create_model("videomae_tiny", num_classes=CLASSES, num_frames=T,
                                   img_size=S, patch_size=P)
    if method:
        peft.apply(model, method)
    model.set_fused_attn(fused)
    return model


def _macs(tokens: int = N) -> dict[str, int]:
    """The tiny model's multiply-adds by part: embedding, one block's linears and attention, head."""
    return {"embed": N * D * 3 * 2 * P * P, "linear": 4 * tokens * D * D + 2 * tokens * D * H,
            "attention": 2 * tokens * tokens * D, "head": D * CLASSES}


def test_vit_b_16x224_forward_is_the_analytical_360_gflops_whatever_the_attention_path():
    with torch.device("meta"):  # no weights needed to count
        model = videopeft.create_model("videomae_base", num_classes=400, num_frames=16,
                                       img_size=224)
    n, d = 1568, 768
    formula = 2 * (12 * (12 * n * d * d + 2 * n * n * d) + n * d * 3 * 2 * 16 * 16 + d * 400)
    counts = set()
    for fused in (True, False):
        model.set_fused_attn(fused)
        counts.add(forward_flops(model, (3, 16, 224, 224)))
    assert counts == {vit_forward_flops(model, 16, 224)} == {formula}
    assert abs(formula / 360.6e9 - 1) < 0.01


@pytest.mark.parametrize("fused", [True, False])
def test_tiny_count_is_the_formula_on_meta_and_on_the_cpu(fused):
    model = _tiny(fused=fused)
    m = _macs()
    expected = 2 * (m["embed"] + DEPTH * (m["linear"] + m["attention"]) + m["head"])

    def needs_values(model, x):  # .item() cannot run on meta: counted on the CPU instead
        assert x.abs().sum().item() == 0
        return model(x)

    assert vit_forward_flops(model, T, S) == expected
    assert forward_flops(model, CLIP) == expected
    # on the CPU, where torch's fused kernel alone would be counted as 0 FLOPs
    assert forward_flops(model, CLIP, forward=needs_values) == expected
    assert all(b.attn.fused_attn is fused for b in model.blocks)  # switches restored


def test_explicit_attention_switches_every_fused_attention_off_and_back():
    model = _tiny(fused=True)
    with explicit_attention(model):
        assert not any(b.attn.fused_attn for b in model.blocks)
    assert all(b.attn.fused_attn for b in model.blocks)


@pytest.mark.parametrize("method, extra_macs_per_block", [
    ({"name": "adaptmlp", "bottleneck": 16}, 2 * N * D * 16),    # down N.D.r + up N.r.D
    ({"name": "lora", "rank": 4}, N * D * 4 + N * 4 * 3 * D),      # on qkv: down + up to 3D
])
def test_a_peft_method_adds_exactly_its_own_products(method, extra_macs_per_block):
    plain = forward_flops(_tiny(), CLIP)
    assert forward_flops(_tiny(method), CLIP) - plain == 2 * DEPTH * extra_macs_per_block


def test_deep_vpt_counts_its_prompt_tokens_in_every_block():
    prompts = 3
    m, mp = _macs(), _macs(N + prompts)
    expected = 2 * (m["embed"] + DEPTH * (mp["linear"] + mp["attention"]) + m["head"])
    assert forward_flops(_tiny({"name": "vpt", "num_prompts": prompts}), CLIP) == expected


def test_full_fine_tuning_trains_at_3x_forward_less_the_embedding_input_gradient():
    model = _tiny({"name": "full"})
    forward = forward_flops(model, CLIP)
    assert training_flops(model, CLIP) == 3 * forward - 2 * _macs()["embed"]
    assert all(p.grad is None for p in model.parameters())  # the model's gradients untouched


def test_a_linear_probe_adds_only_the_head_gradients_and_a_frozen_model_none():
    model = _tiny({"name": "linear"})  # head + fc_norm: head weight and input gradients
    forward = forward_flops(model, CLIP)
    assert training_flops(model, CLIP) == forward + 2 * 2 * _macs()["head"]
    model.requires_grad_(False)
    assert training_flops(model, CLIP) == forward


def test_adaptmlp_frozen_backbone_pays_input_gradients_but_no_frozen_weight_gradients():
    r = 16
    model = _tiny({"name": "adaptmlp", "bottleneck": r})
    m, adapter = _macs(), 2 * N * D * r
    # block 0 reads a stream that needs no gradient: down weight grad, up weight + input grads;
    # blocks >= 1: frozen linears input grads (1x), attention products 2x, adapter 2x;
    # head weight + input grads; the embedding nothing
    backward = (adapter * 3 // 2 + (DEPTH - 1) * (m["linear"] + 2 * m["attention"] + 2 * adapter)
                + 2 * m["head"])
    assert training_flops(model, CLIP) == forward_flops(model, CLIP) + 2 * backward


def test_training_flops_scale_with_the_batch():
    model = _tiny({"name": "adaptmlp"})
    assert training_flops(model, CLIP, batch=3) == 3 * training_flops(model, CLIP)
