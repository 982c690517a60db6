"""Properties every PEFT method must have, driven by one table of method configs (like HF peft's
TEST_CASES), plus the config parsing and the report."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from videopeft import peft
from videopeft.config import ConfigError, load_config
from videopeft.engine.optim import param_groups
from videopeft.peft.adaptmlp import AdaptMLPBlock
from videopeft.peft.base import mark_trainable

# (test id, method mapping). Ids are the method name plus what differs from its defaults.
METHOD_CASES = [
    ("adaptmlp", {"name": "adaptmlp", "bottleneck": 8}),
    ("adaptmlp-sequential-ln-in-learnable", {"name": "adaptmlp", "bottleneck": 8, "mode": "sequential",
                                             "layernorm": "in", "scale": "learnable"}),
    ("adaptmlp-ln-out-dropout-layer1", {"name": "adaptmlp", "bottleneck": 4, "layernorm": "out",
                                        "dropout": 0.1, "layers": [1]}),
    ("vpt-deep", {"name": "vpt", "num_prompts": 3}),
    ("vpt-shallow", {"name": "vpt", "num_prompts": 3, "deep": False}),
    ("vpt-deep-add-inter", {"name": "vpt", "num_prompts": 2, "location": "add", "share": "inter"}),
    ("vpt-deep-dropout", {"name": "vpt", "num_prompts": 2, "dropout": 0.1}),
    ("prefix-reparam", {"name": "prefix", "num_prefix": 4, "reparam_hidden": 16}),
    ("prefix-direct", {"name": "prefix", "num_prefix": 4, "reparam": False}),
    ("adapter", {"name": "adapter", "bottleneck": 8}),
    ("lora-qkv", {"name": "lora", "rank": 4}),
    ("lora-all", {"name": "lora", "rank": 2, "alpha": 4.0, "dropout": 0.1,
                  "targets": ["attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"]}),
    ("bitfit", {"name": "bitfit"}),
    ("partial", {"name": "partial", "k": 1}),
    ("linear", {"name": "linear"}),
    ("linear-head-bn", {"name": "linear", "head_bn": True}),
    ("full", {"name": "full"}),
    ("adaptmlp-head-frozen", {"name": "adaptmlp", "bottleneck": 4, "train_head": False,
                              "train_fc_norm": False}),
]
CASES = [pytest.param(m, id=i) for i, m in METHOD_CASES]

# Methods whose fresh modules are exact no-ops (zero-initialised update paths, or nothing added).
IDENTITY = [pytest.param(m, id=i) for i, m in METHOD_CASES
            if m["name"] in ("adaptmlp", "lora", "adapter", "bitfit", "partial", "linear", "full")
            and not m.get("head_bn")]


def _trainable(model: torch.nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def _nudge(model: torch.nn.Module) -> None:
    """Move every trainable tensor off its (often zero) init so every gradient path is live."""
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn(p.shape, generator=gen))


@pytest.mark.parametrize("method", IDENTITY)
def test_fresh_method_leaves_logits_unchanged(tiny_vit, clip, method):
    before = tiny_vit(clip)
    peft.apply(tiny_vit, method)
    torch.testing.assert_close(tiny_vit(clip), before, atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", CASES)
def test_exactly_the_reported_parameters_require_grad(tiny_vit, method):
    report = peft.apply(tiny_vit, method)
    assert _trainable(tiny_vit) == set(report.trainable)
    assert len(report.trainable) == len(set(report.trainable))
    assert report.num_trainable == sum(p.numel() for p in tiny_vit.parameters() if p.requires_grad)
    assert report.num_total == sum(p.numel() for p in tiny_vit.parameters())


@pytest.mark.parametrize("method", CASES)
def test_gradients_reach_exactly_the_trainable_parameters(tiny_vit, clip, method):
    peft.apply(tiny_vit, method)
    _nudge(tiny_vit)
    tiny_vit(clip).square().sum().backward()
    for name, p in tiny_vit.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name


@pytest.mark.parametrize("method", CASES)
def test_one_step_updates_only_the_reported_parameters(tiny_vit, clip, method):
    report = peft.apply(tiny_vit, method)
    _nudge(tiny_vit)
    before = {n: p.detach().clone() for n, p in tiny_vit.named_parameters()}
    opt = torch.optim.SGD([p for p in tiny_vit.parameters() if p.requires_grad], lr=1.0)
    tiny_vit(clip).square().sum().backward()
    opt.step()
    changed = {n for n, p in tiny_vit.named_parameters() if not torch.equal(p, before[n])}
    assert changed == set(report.trainable)


@pytest.mark.parametrize("method", CASES)
def test_optimizer_groups_hold_only_trainable_tensors(tiny_vit, method):
    report = peft.apply(tiny_vit, method)
    groups = param_groups(tiny_vit, weight_decay=0.05, layer_decay=0.75)  # the engine's own
    opt = torch.optim.AdamW([{k: v for k, v in g.items() if k != "names"} for g in groups])
    held = {id(p) for g in opt.param_groups for p in g["params"]}
    named = dict(tiny_vit.named_parameters())
    assert held == {id(named[n]) for n in report.trainable}
    assert sorted(n for g in groups for n in g["names"]) == sorted(report.trainable)


@pytest.mark.parametrize("method", CASES)
def test_config_round_trips_through_its_dict(method):
    cfg = peft.method_config(method)
    assert peft.method_config(cfg.to_dict()) == cfg
    assert cfg.to_dict()["name"] == method["name"]


def test_head_and_fc_norm_train_unless_the_config_says_otherwise(tiny_vit):
    report = peft.apply(tiny_vit, {"name": "adaptmlp", "bottleneck": 4})
    assert report.group("head").params == ("head.weight", "head.bias")
    assert report.group("fc_norm").params == ("fc_norm.weight", "fc_norm.bias")


def test_bitfit_trains_every_bias_and_nothing_else(tiny_vit):
    report = peft.apply(tiny_vit, {"name": "bitfit", "train_head": False, "train_fc_norm": False})
    names = set(report.trainable)
    assert {"blocks.0.attn.q_bias", "blocks.0.attn.v_bias", "blocks.1.norm1.bias",
            "blocks.1.mlp.fc2.bias", "patch_embed.proj.bias", "fc_norm.bias", "head.bias"} <= names
    assert all(n.endswith(("bias", "q_bias", "v_bias")) for n in names)


def test_partial_trains_the_last_k_blocks(tiny_vit):
    report = peft.apply(tiny_vit, {"name": "partial", "k": 1})
    assert {n.split(".")[1] for n in report.group("last_blocks").params} == {"1"}


def test_layer_selection_swaps_only_the_chosen_blocks(tiny_vit):
    peft.apply(tiny_vit, {"name": "adaptmlp", "bottleneck": 4, "layers": "-1:"})
    assert [isinstance(b, AdaptMLPBlock) for b in tiny_vit.blocks] == [False, True]


def test_layer_index_out_of_range_is_refused(tiny_vit):
    with pytest.raises(ConfigError, match=r"^method\.layers: expected block indices in \[-2, 2\)"):
        peft.apply(tiny_vit, {"name": "adaptmlp", "layers": [5]})


def test_base_keys_are_unchanged_so_backbone_weights_load_after_apply(tiny_vit):
    base = {k: v.clone() for k, v in tiny_vit.state_dict().items()}
    peft.apply(tiny_vit, {"name": "lora", "targets": ["attn.qkv", "mlp.fc1"]})
    missing, unexpected = tiny_vit.load_state_dict(base, strict=False)
    assert unexpected == [] and all("lora_" in k for k in missing)


def test_a_model_takes_one_method(tiny_vit):
    peft.apply(tiny_vit, {"name": "linear"})
    with pytest.raises(ValueError, match="already applied"):
        peft.apply(tiny_vit, {"name": "lora"})


# method -> the module class it adds, which declares that method's trainable tensors
ADDED_MODULE = {"adaptmlp": "AdaptMLP", "adapter": "AdaptMLP", "vpt": "VisualPrompts",
                "prefix": "PrefixEncoder", "lora": "LoRALinear"}


@pytest.mark.parametrize("method", [c for c in CASES if c.values[0]["name"] in ADDED_MODULE])
def test_the_method_group_is_what_its_added_modules_declare(tiny_vit, method):
    report = peft.apply(tiny_vit, method)
    declared = peft.get_adapter_params(tiny_vit)
    kinds = {type(m).__name__ for m in tiny_vit.modules() if isinstance(m, peft.AdapterModule)}
    assert kinds == {ADDED_MODULE[method["name"]]}
    assert report.group(method["name"]).params == tuple(declared)


def test_lora_trains_only_the_low_rank_factors_of_each_wrapped_layer(tiny_vit):
    report = peft.apply(tiny_vit, {"name": "lora", "targets": ["attn.qkv", "mlp.fc1"]})
    wrapped = [n for n, m in tiny_vit.named_modules() if isinstance(m, peft.LoRALinear)]
    assert wrapped == ["blocks.0.attn.qkv", "blocks.0.mlp.fc1", "blocks.1.attn.qkv", "blocks.1.mlp.fc1"]
    assert report.group("lora").params == tuple(f"{n}.lora_{f}.weight" for n in wrapped
                                                for f in ("down", "up"))
    assert not tiny_vit.blocks[0].attn.qkv.weight.requires_grad


class _HalfTrained(nn.Module):
    """An adapter module with one trainable and one frozen tensor."""

    def __init__(self, declared: list[str]) -> None:
        super().__init__()
        self.delta = nn.Linear(4, 4)
        self.table = nn.Parameter(torch.zeros(3))
        self.declared = declared

    def adapter_params(self) -> list[str]:
        return self.declared


def test_mark_trainable_finds_any_adapter_module_by_walking_the_model(tiny_vit):
    tiny_vit.blocks[1].extra = _HalfTrained(["delta.weight", "delta.bias"])
    report = mark_trainable(tiny_vit, peft.method_config({"name": "linear"}))
    assert report.group("linear").params == ("blocks.1.extra.delta.weight", "blocks.1.extra.delta.bias")
    assert not tiny_vit.blocks[1].extra.table.requires_grad
    assert [g.name for g in report.groups] == ["linear", "head", "fc_norm"]


def test_a_module_that_declares_a_parameter_it_lacks_is_a_bug_reported_by_name(tiny_vit):
    tiny_vit.blocks[0].extra = _HalfTrained(["delta.weight", "deltaa.bias"])
    with pytest.raises(RuntimeError, match=r"_HalfTrained 'blocks\.0\.extra' declares .*'deltaa\.bias'"):
        peft.get_adapter_params(tiny_vit)


def test_report_prints_a_table_with_every_group(tiny_vit):
    text = str(peft.apply(tiny_vit, {"name": "adaptmlp", "bottleneck": 4}))
    assert "method: adaptmlp" in text
    for word in ("adaptmlp", "head", "fc_norm", "trainable", "total"):
        assert word in text


@pytest.mark.parametrize("method, message", [
    ({"name": "lora", "rank": 0}, "method.rank: expected a positive int, got 0"),
    ({"name": "lora", "rank": "eight"}, "method.rank: expected int, got 'eight'"),
    ({"name": "lora", "rnak": 4}, "method.rnak: expected a key of method 'lora'"),
    ({"name": "adaptmlp", "scale": "big"}, "method.scale: expected a float or 'learnable', got 'big'"),
    ({"name": "adaptmlp", "mode": "serial"}, "method.mode: expected one of ['parallel', 'sequential']"),
    ({"name": "vpt", "dropout": 1.5}, "method.dropout: expected a float in [0, 1), got 1.5"),
    ({"name": "vpt", "deep": False, "layers": [0]}, "method.layers: expected null for shallow VPT"),
    ({"name": "vpt", "deep": "yes"}, "method.deep: expected true or false, got 'yes'"),
    ({"name": "partial", "k": 0}, "method.k: expected a positive int, got 0"),
    ({"name": "lorra"}, "method.name: expected one of ['adaptmlp', "),
    ({"name": "linear", "head_bn": 1}, "method.head_bn: expected true or false, got 1"),
])
def test_bad_method_configs_name_the_key(method, message):
    with pytest.raises(ConfigError) as err:
        peft.method_config(method)
    assert str(err.value).startswith(message)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        peft.method_config({"name": "adaptmlp", "bottleneck": 0, "mode": "serial"})
    lines = str(err.value).splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["method.bottleneck", "method.mode"]


def test_run_config_validates_the_method_section():
    with pytest.raises(ConfigError, match="method.rank: expected a positive int, got 0"):
        load_config(None, {"method": {"name": "lora", "rank": 0}}, check_paths=False)
    cfg = load_config(None, ["method.name=lora", "method.targets=mlp.fc1"], check_paths=False)
    assert peft.method_config(cfg.method).targets == ("mlp.fc1",)


def test_lora_target_that_matches_nothing_lists_candidates(tiny_vit):
    with pytest.raises(ConfigError, match=r"method\.targets: .*'attn\.qkvv'.*candidates: attn\.qkv"):
        peft.apply(tiny_vit, {"name": "lora", "targets": ["attn.qkvv"]})
