"""LoRA: merge/unmerge, the layer maths, and parity with HF peft's LoRA on the same weights."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from videopeft import peft
from videopeft.peft import LoRALinear

TARGETS = ["attn.qkv", "mlp.fc1", "mlp.fc2"]


def _randomise_lora(model: nn.Module, seed: int = 0) -> None:
    """Non-zero up weights, so the update actually changes the output."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_up.weight.copy_(0.1 * torch.randn(m.lora_up.weight.shape, generator=gen))


def test_lora_linear_adds_the_scaled_low_rank_update():
    base = nn.Linear(3, 2)
    layer = LoRALinear(base, rank=1, alpha=4.0)
    with torch.no_grad():  # hand-set weights: the update is 4 * [[1], [2]] @ [[1, 0, -1]]
        layer.lora_down.weight.copy_(torch.tensor([[1.0, 0.0, -1.0]]))
        layer.lora_up.weight.copy_(torch.tensor([[1.0], [2.0]]))
    x = torch.tensor([[2.0, 5.0, 1.0]])
    torch.testing.assert_close(layer(x), base(x) + torch.tensor([[4.0, 8.0]]))
    torch.testing.assert_close(layer.delta_weight(), torch.tensor([[4.0, 0.0, -4.0], [8.0, 0.0, -8.0]]))
    assert layer.weight is base.weight and layer.bias is base.bias


def test_merged_and_unmerged_give_the_same_logits_and_unmerge_restores(tiny_vit, clip):
    peft.apply(tiny_vit, {"name": "lora", "rank": 4, "targets": TARGETS + ["attn.proj"]})
    _randomise_lora(tiny_vit)
    weights = {n: p.detach().clone() for n, p in tiny_vit.named_parameters()}
    unmerged = tiny_vit(clip)
    assert peft.merge_lora(tiny_vit) == 8
    assert not torch.equal(tiny_vit.blocks[0].attn.qkv.weight, weights["blocks.0.attn.qkv.weight"])
    torch.testing.assert_close(tiny_vit(clip), unmerged, atol=1e-5, rtol=0)
    assert peft.merge_lora(tiny_vit) == 8  # idempotent: merging twice changes nothing more
    torch.testing.assert_close(tiny_vit(clip), unmerged, atol=1e-5, rtol=0)
    assert peft.unmerge_lora(tiny_vit) == 8
    for name, p in tiny_vit.named_parameters():
        torch.testing.assert_close(p, weights[name], atol=1e-6, rtol=0)
    torch.testing.assert_close(tiny_vit(clip), unmerged, atol=1e-5, rtol=0)  # as merged


def test_merge_refuses_a_non_finite_update(tiny_vit):
    peft.apply(tiny_vit, {"name": "lora"})
    with torch.no_grad():
        tiny_vit.blocks[0].attn.qkv.lora_up.weight.fill_(float("inf"))
    with pytest.raises(ValueError, match="non-finite"):
        tiny_vit.blocks[0].attn.qkv.merge()
    assert not tiny_vit.blocks[0].attn.qkv.merged


def test_dropout_acts_on_the_lora_input_only():
    torch.manual_seed(0)
    base = nn.Linear(16, 8)
    layer = LoRALinear(base, rank=4, alpha=8.0, dropout=0.5)
    with torch.no_grad():
        layer.lora_up.weight.normal_()
    x = torch.randn(32, 16)

    def update(inp: torch.Tensor) -> torch.Tensor:
        return layer.scale * inp @ layer.lora_down.weight.T @ layer.lora_up.weight.T

    layer.train()
    torch.manual_seed(7)
    out = layer(x)
    torch.manual_seed(7)  # the same mask again: the input, scaled by 1/(1-p), with zeros
    dropped = F.dropout(x, 0.5, training=True)
    assert (dropped == 0).any() and (dropped != 0).any()
    torch.testing.assert_close(out, base(x) + update(dropped))  # base path sees the whole x
    assert not torch.allclose(layer(x), layer(x))  # a fresh mask per call
    layer.eval()
    torch.testing.assert_close(layer(x), base(x) + update(x))
    torch.testing.assert_close(layer(x), layer(x), atol=0, rtol=0)


def test_dropout_from_the_config_makes_train_mode_stochastic_and_eval_exact(tiny_vit, clip):
    tiny_vit.train()
    torch.testing.assert_close(tiny_vit(clip), tiny_vit(clip), atol=0, rtol=0)  # no other noise
    peft.apply(tiny_vit, {"name": "lora", "dropout": 0.5, "targets": TARGETS})
    _randomise_lora(tiny_vit)
    assert not torch.allclose(tiny_vit(clip), tiny_vit(clip))
    tiny_vit.eval()
    torch.testing.assert_close(tiny_vit(clip), tiny_vit(clip), atol=0, rtol=0)


def test_same_logits_as_hf_peft_lora_with_the_same_weights(tiny_vit, clip):
    hf_peft = pytest.importorskip("peft")
    plain = copy.deepcopy(tiny_vit)
    base_logits = plain(clip)
    peft.apply(tiny_vit, {"name": "lora", "rank": 4, "alpha": 8.0, "targets": TARGETS})
    _randomise_lora(tiny_vit)
    hf = hf_peft.get_peft_model(plain, hf_peft.LoraConfig(
        r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["qkv", "fc1", "fc2"]))
    ours = {n: m for n, m in tiny_vit.named_modules() if isinstance(m, LoRALinear)}
    theirs = {n.removeprefix("base_model.model."): m for n, m in hf.named_modules()
              if hasattr(m, "lora_A") and "default" in getattr(m, "lora_A", {})}
    assert sorted(ours) == sorted(theirs) and len(ours) == 6
    with torch.no_grad():
        for name, layer in ours.items():
            theirs[name].lora_A["default"].weight.copy_(layer.lora_down.weight)
            theirs[name].lora_B["default"].weight.copy_(layer.lora_up.weight)
    hf.eval()
    expected = hf(clip)
    assert not torch.allclose(expected, base_logits, atol=1e-3)  # the updates matter
    torch.testing.assert_close(tiny_vit(clip), expected, atol=1e-5, rtol=0)
