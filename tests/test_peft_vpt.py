"""VPT: prompt counts, prompts kept out of pooling, the variants, and the precomputed-kv mode."""
from __future__ import annotations

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from videopeft import peft
from videopeft.models.vit import Block
from videopeft.peft.vpt import PromptKV, prompt_init_bound

P = 3


def _count_tokens_into_pooling(model, clip) -> int:
    seen = []
    handle = model.norm.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[1]))
    model(clip)
    handle.remove()
    return seen[0]


def _manual_forward(model, clip, prompts: torch.Tensor, *, deep: bool) -> torch.Tensor:
    """The VPT forward written out: prompts before the patch tokens, dropped again, then mean pool."""
    x, _ = model.embed(clip)
    b = x.shape[0]
    for i, blk in enumerate(model.blocks):
        if deep or i == 0:
            x = torch.cat([prompts[i if deep else 0].expand(b, -1, -1), x], 1)
        x = Block.forward(blk, x)  # the plain block maths, without the wrapper's insert/drop
        if deep or i == len(model.blocks) - 1:
            x = x[:, P:]
    return model.head(model.fc_norm(x.mean(1)))


@pytest.mark.parametrize("deep", [True, False], ids=["deep", "shallow"])
def test_prompts_never_reach_the_pooling(tiny_vit, clip, deep):
    n = tiny_vit.num_tokens(4, 32)
    peft.apply(tiny_vit, {"name": "vpt", "num_prompts": P, "deep": deep})
    assert _count_tokens_into_pooling(tiny_vit, clip) == n
    expected = _manual_forward(tiny_vit, clip, tiny_vit.vpt.prompts, deep=deep)
    torch.testing.assert_close(tiny_vit(clip), expected, atol=1e-6, rtol=0)


def test_deep_prompts_change_the_logits_but_not_the_token_count(tiny_vit, clip):
    before = tiny_vit(clip)
    peft.apply(tiny_vit, {"name": "vpt", "num_prompts": P})
    with torch.no_grad():
        tiny_vit.vpt.prompts.normal_()
    assert not torch.allclose(tiny_vit(clip), before, atol=1e-4)
    assert _count_tokens_into_pooling(tiny_vit, clip) == tiny_vit.num_tokens(4, 32)


def test_deep_adds_l_p_d_parameters(tiny_vit):
    depth, dim = len(tiny_vit.blocks), tiny_vit.embed_dim
    report = peft.apply(tiny_vit, {"name": "vpt", "num_prompts": P})
    assert report.group("vpt").count == depth * P * dim
    assert report.group("vpt").params == ("vpt.prompts",)


@pytest.mark.parametrize("method, sets", [({"deep": False}, 1), ({"share": "inter"}, 1),
                                          ({"layers": [1]}, 1), ({}, 2)])
def test_prompt_sets_follow_depth_sharing_and_layers(tiny_vit, method, sets):
    peft.apply(tiny_vit, {"name": "vpt", "num_prompts": P, **method})
    assert tuple(tiny_vit.vpt.prompts.shape) == (sets, P, tiny_vit.embed_dim)


def test_add_location_keeps_the_sequence_length_and_tiles_the_prompts(tiny_vit, clip):
    peft.apply(tiny_vit, {"name": "vpt", "num_prompts": 3, "location": "add", "deep": False})
    shapes = []
    tiny_vit.blocks[0].register_forward_hook(lambda m, a, out: shapes.append((a[0].shape, out.shape)))
    x, _ = tiny_vit.embed(clip)
    out0 = tiny_vit.blocks[0](x)
    prompts = tiny_vit.vpt.prompts[0]
    tiled = torch.stack([prompts[n % 3] for n in range(x.shape[1])])
    expected = Block.forward(tiny_vit.blocks[0], x + tiled)
    torch.testing.assert_close(out0, expected)
    assert shapes[0][0] == shapes[0][1] == x.shape


def test_init_rule_uses_the_tubelet_fan_in(tiny_vit):
    peft.apply(tiny_vit, {"name": "vpt", "num_prompts": 50})
    v = math.sqrt(6 / (3 * 2 * 16 * 16 + 48))
    assert prompt_init_bound(tiny_vit) == pytest.approx(v)
    assert tiny_vit.vpt.prompts.abs().max() <= v
    assert tiny_vit.vpt.prompts.abs().max() > 0.9 * v  # uniform over the whole range


def test_prompt_dropout_acts_in_train_mode_only(tiny_vit, clip):
    peft.apply(tiny_vit, {"name": "vpt", "num_prompts": P, "dropout": 0.5})
    torch.testing.assert_close(tiny_vit(clip), tiny_vit(clip))  # eval: deterministic
    tiny_vit.train()
    torch.manual_seed(0)
    a = tiny_vit(clip)
    torch.manual_seed(1)
    assert not torch.allclose(a, tiny_vit(clip))


def _flops(model, clip) -> int:
    with FlopCounterMode(display=False) as counter:
        model(clip)
    return counter.get_total_flops()


@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "manual"])
def test_precomputed_prompt_kv_gives_the_same_logits_with_fewer_flops(tiny_vit, clip, fused):
    tiny_vit.set_fused_attn(fused)
    peft.apply(tiny_vit, {"name": "vpt", "num_prompts": 8})
    with torch.no_grad():
        tiny_vit.vpt.prompts.normal_()  # prompts that matter
        plain, plain_flops = tiny_vit(clip), _flops(tiny_vit, clip)
        handle = peft.precompute_prompt_kv(tiny_vit)
        cached, cached_flops = tiny_vit(clip), _flops(tiny_vit, clip)
    torch.testing.assert_close(cached, plain, atol=1e-5, rtol=0)
    assert cached_flops < plain_flops
    assert all(isinstance(b.attn.kv_prefix, PromptKV) for b in tiny_vit.blocks)
    handle.disable()
    assert all(b.attn.kv_prefix is None for b in tiny_vit.blocks)
    torch.testing.assert_close(tiny_vit(clip), plain, atol=0, rtol=0)


def test_precomputed_mode_refuses_to_train(tiny_vit, clip):
    peft.apply(tiny_vit, {"name": "vpt", "num_prompts": P, "dropout": 0.1})
    handle = peft.precompute_prompt_kv(tiny_vit)
    tiny_vit.train()
    with pytest.raises(RuntimeError, match="eval mode"):
        tiny_vit(clip)
    handle.disable()
    tiny_vit(clip).sum().backward()
    assert tiny_vit.vpt.prompts.grad is not None


def test_enable_recomputes_after_the_prompts_change(tiny_vit, clip):
    peft.apply(tiny_vit, {"name": "vpt", "num_prompts": P})
    handle = peft.precompute_prompt_kv(tiny_vit)
    handle.disable()
    with torch.no_grad():
        tiny_vit.vpt.prompts.normal_()
    plain = tiny_vit(clip)
    handle.enable()
    torch.testing.assert_close(tiny_vit(clip), plain, atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", [{"deep": False}, {"location": "add"}], ids=["shallow", "add"])
def test_precompute_needs_deep_prepended_prompts(tiny_vit, method):
    peft.apply(tiny_vit, {"name": "vpt", "num_prompts": P, **method})
    with pytest.raises(ValueError, match="deep VPT with location 'prepend'"):
        peft.precompute_prompt_kv(tiny_vit)
