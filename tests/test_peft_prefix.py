"""Prefix tuning: the prefixes reach attention as extra keys/values, fold keeps the logits."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from videopeft import peft

PREFIX = {"name": "prefix", "num_prefix": 4, "reparam_hidden": 16}


def test_prefix_keys_and_values_join_the_attention(tiny_vit, clip):
    peft.apply(tiny_vit, {**PREFIX, "reparam": False})
    attn = tiny_vit.blocks[0].attn
    x = tiny_vit.blocks[0].norm1(tiny_vit.embed(clip)[0])
    q, k, v = attn.project_qkv(x)
    pk, pv = (t.view(1, 4, attn.num_heads, -1).transpose(1, 2) for t in tiny_vit.prefix.kv[0])
    k = torch.cat([pk.expand(2, -1, -1, -1), k], 2)
    v = torch.cat([pv.expand(2, -1, -1, -1), v], 2)
    weights = F.softmax(q @ k.transpose(-2, -1) * attn.scale, dim=-1)
    expected = attn.proj((weights @ v).transpose(1, 2).flatten(2))
    torch.testing.assert_close(attn(x), expected, atol=1e-6, rtol=0)


def test_even_a_zero_prefix_is_not_an_identity(tiny_vit, clip):
    """Documented limit: extra keys take softmax mass, so no finite prefix is a no-op."""
    before = tiny_vit(clip)
    peft.apply(tiny_vit, {**PREFIX, "reparam": False})
    with torch.no_grad():
        tiny_vit.prefix.kv.zero_()
    assert not torch.allclose(tiny_vit(clip), before, atol=1e-4)


def test_fold_keeps_the_logits_and_records_a_direct_prefix(tiny_vit, clip):
    peft.apply(tiny_vit, PREFIX)
    with torch.no_grad():
        tiny_vit.prefix.embedding.normal_()
    before = tiny_vit(clip)
    report = peft.fold_prefix(tiny_vit)
    torch.testing.assert_close(tiny_vit(clip), before, atol=1e-5, rtol=0)
    assert report.group("prefix").params == ("prefix.kv",)
    assert tiny_vit.peft_config.reparam is False
    assert {n for n, p in tiny_vit.named_parameters() if p.requires_grad} == set(report.trainable)
    assert tuple(tiny_vit.prefix.kv.shape) == (2, 2, 4, 48)


def test_prefix_on_some_layers_only(tiny_vit):
    peft.apply(tiny_vit, {**PREFIX, "layers": [1]})
    assert tiny_vit.blocks[0].attn.kv_prefix is None
    assert tiny_vit.blocks[1].attn.kv_prefix is not None


def test_fold_needs_a_prefix_model(tiny_vit):
    peft.apply(tiny_vit, {"name": "linear"})
    with pytest.raises(ValueError, match="fold_prefix needs a model with method 'prefix'"):
        peft.fold_prefix(tiny_vit)


def test_flops_can_be_counted_under_no_grad(tiny_vit, clip):
    peft.apply(tiny_vit, {**PREFIX, "reparam": False})
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        tiny_vit(clip)
    assert counter.get_total_flops() > 0
