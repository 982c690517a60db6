"""Adapter files: only trained tensors, exact round trip onto a fresh backbone, refusals that name
what is wrong, and resume safety (the backbone stays frozen after loading)."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import videopeft
from videopeft import peft
from videopeft.peft import AdapterError

from conftest import TINY

ROUND_TRIP = [
    pytest.param({"name": "adaptmlp", "bottleneck": 8, "scale": "learnable", "layernorm": "in"},
                 id="adaptmlp"),
    pytest.param({"name": "vpt", "num_prompts": 3}, id="vpt-deep"),
    pytest.param({"name": "vpt", "num_prompts": 2, "deep": False}, id="vpt-shallow"),
    pytest.param({"name": "prefix", "num_prefix": 4, "reparam_hidden": 16}, id="prefix"),
    pytest.param({"name": "adapter", "bottleneck": 4}, id="adapter"),
    pytest.param({"name": "lora", "rank": 4, "targets": ["attn.qkv", "mlp.fc2"]}, id="lora"),
    pytest.param({"name": "bitfit"}, id="bitfit"),
    pytest.param({"name": "partial", "k": 1}, id="partial"),
    pytest.param({"name": "linear", "head_bn": True}, id="linear-head-bn"),
    pytest.param({"name": "full"}, id="full"),
]


def fresh_backbone(seed: int = 0) -> videopeft.VideoViT:
    """The same backbone weights as the tiny_vit fixture for seed 0."""
    torch.manual_seed(seed)
    model = videopeft.create_model("videomae_tiny", **TINY)
    with torch.no_grad():
        model.head.weight.normal_(0, 0.5)
    return model.eval()


def _train_a_little(model: torch.nn.Module, clip: torch.Tensor) -> None:
    """Two SGD steps in train mode (moves the adapter and any BN statistics off their init)."""
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    for _ in range(2):
        opt.zero_grad()
        model(clip).square().mean().backward()
        opt.step()
    model.eval()


@pytest.mark.parametrize("method", ROUND_TRIP)
def test_save_then_load_into_a_fresh_backbone_reproduces_the_logits(tiny_vit, clip, tmp_path, method):
    report = peft.apply(tiny_vit, method)
    _train_a_little(tiny_vit, clip)
    expected = tiny_vit(clip)
    path = peft.save_adapter(tiny_vit, tmp_path / "adapter.safetensors", extra={"classes": list("abcde")})
    stats = [f"head.bn.{b}" for b in ("running_mean", "running_var", "num_batches_tracked")]
    assert set(load_file(path)) == set(report.trainable) | (set(stats) if method.get("head_bn") else set())

    model = fresh_backbone()
    meta = peft.load_adapter(model, path)
    assert torch.equal(model(clip), expected)
    assert meta["method"] == peft.method_config(method).to_dict()
    assert {n for n, p in model.named_parameters() if p.requires_grad} == set(report.trainable)


def test_metadata_records_method_backbone_and_extra(tiny_vit, tmp_path):
    peft.apply(tiny_vit, {"name": "adaptmlp", "bottleneck": 8})
    extra = {"classes": ["push", "pull"], "sampling": {"mode": "segment", "num_frames": 4}}
    path = peft.save_adapter(tiny_vit, tmp_path / "a.safetensors", extra=extra)
    meta = peft.read_adapter_metadata(path)
    assert meta["method"]["name"] == "adaptmlp" and meta["method"]["bottleneck"] == 8
    assert meta["classes"] == ["push", "pull"] and meta["sampling"] == extra["sampling"]
    assert meta["backbone_name"] == "videomae_tiny" and meta["num_frames"] == 4
    assert meta["backbone_arch"]["embed_dim"] == 48
    assert meta["backbone_fingerprint"] == peft.backbone_fingerprint(tiny_vit)
    assert len(meta["backbone_fingerprint"]) == 16


def test_fingerprint_covers_frozen_weights_only(tiny_vit):
    peft.apply(tiny_vit, {"name": "adaptmlp", "bottleneck": 8})
    before = peft.backbone_fingerprint(tiny_vit)
    with torch.no_grad():
        tiny_vit.blocks[0].adaptmlp.up_proj.weight.add_(1.0)  # trained: not in the hash
        tiny_vit.head.weight.add_(1.0)
    assert peft.backbone_fingerprint(tiny_vit) == before
    with torch.no_grad():
        tiny_vit.blocks[0].mlp.fc1.weight[0, 0] += 1e-3  # frozen: in the hash
    assert peft.backbone_fingerprint(tiny_vit) != before


def test_loading_onto_a_different_backbone_is_refused_naming_both_fingerprints(tiny_vit, tmp_path):
    peft.apply(tiny_vit, {"name": "adaptmlp", "bottleneck": 8})
    path = peft.save_adapter(tiny_vit, tmp_path / "a.safetensors")
    other = fresh_backbone(seed=1)
    with pytest.raises(AdapterError) as err:
        peft.load_adapter(other, path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    assert peft.read_adapter_metadata(path)["backbone_fingerprint"] in message
    assert peft.backbone_fingerprint(other) in message


def test_a_wrong_shape_is_refused_naming_the_key(tiny_vit, tmp_path):
    peft.apply(tiny_vit, {"name": "adaptmlp", "bottleneck": 8})
    path = peft.save_adapter(tiny_vit, tmp_path / "a.safetensors")
    tensors = load_file(path)
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    tensors["blocks.1.adaptmlp.up_proj.bias"] = torch.zeros(7)
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(AdapterError, match=r"blocks\.1\.adaptmlp\.up_proj\.bias: shape \(7,\) in the "
                                           r"file, \(48,\) in the model"):
        peft.load_adapter(fresh_backbone(), path)


def test_a_different_class_count_is_refused_at_the_head(tiny_vit, tmp_path):
    peft.apply(tiny_vit, {"name": "linear"})
    path = peft.save_adapter(tiny_vit, tmp_path / "a.safetensors")
    model = videopeft.create_model("videomae_tiny", **{**TINY, "num_classes": 7})
    same_backbone = {k: v for k, v in fresh_backbone().state_dict().items() if "head" not in k}
    model.load_state_dict(same_backbone, strict=False)
    with pytest.raises(AdapterError, match=r"head\.weight: shape \(5, 48\) in the file, \(7, 48\)"):
        peft.load_adapter(model, path)


def test_resume_keeps_the_backbone_frozen(tiny_vit, clip, tmp_path):
    report = peft.apply(tiny_vit, {"name": "vpt", "num_prompts": 2})
    path = peft.save_adapter(tiny_vit, tmp_path / "a.safetensors")
    resumed = fresh_backbone()
    assert all(p.requires_grad for p in resumed.parameters())  # a fresh model trains everything
    peft.load_adapter(resumed, path)
    assert {n for n, p in resumed.named_parameters() if p.requires_grad} == set(report.trainable)
    frozen = {n: p.clone() for n, p in resumed.named_parameters() if not p.requires_grad}
    opt = torch.optim.SGD([p for p in resumed.parameters() if p.requires_grad], lr=1.0)
    resumed(clip).sum().backward()
    opt.step()
    assert all(torch.equal(p, frozen[n]) for n, p in resumed.named_parameters() if n in frozen)


def test_loading_into_a_model_with_the_same_method_refreezes_it(tiny_vit, clip, tmp_path):
    peft.apply(tiny_vit, {"name": "lora"})
    path = peft.save_adapter(tiny_vit, tmp_path / "a.safetensors")
    model = fresh_backbone()
    report = peft.apply(model, {"name": "lora"})
    model.requires_grad_(True)  # e.g. a resume path that unfroze everything
    peft.load_adapter(model, path)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == set(report.trainable)


def test_loading_into_a_model_with_another_method_is_refused(tiny_vit, tmp_path):
    peft.apply(tiny_vit, {"name": "lora"})
    path = peft.save_adapter(tiny_vit, tmp_path / "a.safetensors")
    model = fresh_backbone()
    peft.apply(model, {"name": "lora", "rank": 2})
    with pytest.raises(AdapterError, match="load it into a fresh model"):
        peft.load_adapter(model, path)


def test_a_merged_lora_model_is_not_saved(tiny_vit, tmp_path):
    peft.apply(tiny_vit, {"name": "lora"})
    peft.merge_lora(tiny_vit)
    with pytest.raises(AdapterError, match="unmerge_lora"):
        peft.save_adapter(tiny_vit, tmp_path / "a.safetensors")


def test_a_folded_prefix_loads_as_a_direct_prefix(tiny_vit, clip, tmp_path):
    peft.apply(tiny_vit, {"name": "prefix", "num_prefix": 4, "reparam_hidden": 16})
    peft.fold_prefix(tiny_vit)
    path = peft.save_adapter(tiny_vit, tmp_path / "a.safetensors")
    model = fresh_backbone()
    peft.load_adapter(model, path)
    assert model.peft_config.reparam is False
    assert torch.equal(model(clip), tiny_vit(clip))


@pytest.mark.parametrize("name", ["adapter.pt", "adapter", "adapter.safetensor"])
def test_paths_must_end_in_safetensors(tiny_vit, tmp_path, name):
    peft.apply(tiny_vit, {"name": "linear"})
    with pytest.raises(AdapterError, match="adapter files end in .safetensors"):
        peft.save_adapter(tiny_vit, tmp_path / name)


def test_saving_needs_an_applied_method_and_json_extra(tiny_vit, tmp_path):
    with pytest.raises(AdapterError, match="no PEFT method applied"):
        peft.save_adapter(tiny_vit, tmp_path / "a.safetensors")
    peft.apply(tiny_vit, {"name": "linear"})
    with pytest.raises(AdapterError, match="written by save_adapter itself"):
        peft.save_adapter(tiny_vit, tmp_path / "a.safetensors", extra={"method": "x"})
    with pytest.raises(AdapterError, match="not JSON-serialisable"):
        peft.save_adapter(tiny_vit, tmp_path / "a.safetensors", extra={"classes": {1, 2}})


def test_a_file_that_is_not_an_adapter_is_refused(tmp_path):
    path = tmp_path / "weights.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={"format": json.dumps("pt")})
    with pytest.raises(AdapterError, match="not a videopeft adapter file"):
        peft.read_adapter_metadata(path)
