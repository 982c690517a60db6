"""Hugging Face interop: an exported run loads in transformers / peft with no missing keys and
gives videopeft's logits (fp32, <= 1e-4); a peft LoRA trained on HF VideoMAE loads into videopeft
with the same logits; what cannot be represented is refused in one line.

The comparisons load the written folders through `transformers` / `peft` as a user would (HF's
fc_norm keeps its own eps 1e-5: the test sees that drift, it is not patched away).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import videopeft
from videopeft import peft as vp_peft
from videopeft.engine.export import (ExportError, export_hf, export_peft, hf_logits, import_peft,
                                     model_from_peft)
from videopeft.engine.infer import model_from_adapter
from videopeft.models.checkpoints import save_pretrained

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

CLASSES = ["archery", "bowling", "cycling", "diving", "fencing"]
TINY = dict(num_classes=len(CLASSES), num_frames=4, img_size=32)
ATOL = 1e-4


def clips(seed: int = 7) -> torch.Tensor:
    return torch.randn(3, 3, 4, 32, 32, generator=torch.Generator().manual_seed(seed))


def _randomise(model: torch.nn.Module, names, scale: float = 0.3) -> None:
    """Every named tensor random (norm scales around 1), so a wrong mapping cannot hide."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name in names:
            p = params[name]
            p.copy_(torch.randn_like(p) * scale + (1.0 if name.endswith("norm.weight") else 0.0))


def make_adapter(folder: Path, method: dict, **arch) -> tuple[Path, torch.nn.Module]:
    """A 'trained' adapter file on a saved random backbone, without training: every trainable
    tensor (LoRA up included) and the BN-head statistics set at random. Returns (file, model)."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    backbone = videopeft.create_model("videomae_tiny", **TINY, **arch)
    _randomise(backbone, [n for n, _ in backbone.named_parameters()], scale=0.1)
    weights = save_pretrained(backbone, folder / "backbone.safetensors")
    model = videopeft.create_model("videomae_tiny", **TINY, **arch)
    videopeft.load_pretrained(model, weights)
    report = vp_peft.apply(model, method)
    _randomise(model, report.trainable)
    if hasattr(model.head, "bn"):
        model.head.bn.running_mean.normal_()
        model.head.bn.running_var.uniform_(0.5, 2.0)
    path = vp_peft.save_adapter(model, folder / "adapter.safetensors", extra={
        "class_names": CLASSES, "seed": 0, "model": {"name": "videomae_tiny", "pretrained": str(weights)},
        "sampling": {"num_frames": 4, "img_size": 32}})
    return path, model.eval()


LORA_ALL = {"name": "lora", "rank": 4, "alpha": 6.0, "head_bn": True,
            "targets": ["attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"]}
# the shipped configs' form: updates on the q and v parts of the fused qkv only
LORA_QV = {"name": "lora", "rank": 4, "alpha": 6.0, "head_bn": True,
           "targets": ["attn.q", "attn.v", "mlp.fc2"]}


@pytest.fixture(scope="module")
def lora_adapter(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    """LoRA on every linear, BN head, layer scale: everything export has to fold."""
    return make_adapter(tmp_path_factory.mktemp("lora"), LORA_ALL, init_values=0.1)


# ----------------------------------------------------------------------------- to transformers

@pytest.mark.parametrize("method", [LORA_ALL, LORA_QV, {"name": "bitfit"}, {"name": "full"}],
                         ids=["lora", "lora_qv", "bitfit", "full"])
def test_hf_export_loads_in_transformers_with_the_same_logits(tmp_path, method):
    adapter, model = make_adapter(tmp_path / "run", method, init_values=0.1)
    result = export_hf(tmp_path / "run", tmp_path / "hf")  # a run folder works as the source
    assert result.path == tmp_path / "hf" and result.max_abs_diff <= ATOL

    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["id2label"] == {str(i): c for i, c in enumerate(CLASSES)}
    assert config["label2id"] == {c: i for i, c in enumerate(CLASSES)}
    assert (config["layer_norm_eps"], config["num_frames"], config["image_size"]) == (1e-6, 4, 32)
    hf, info = transformers.VideoMAEForVideoClassification.from_pretrained(
        tmp_path / "hf", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    x = clips()
    with torch.no_grad():
        diff = (hf_logits(hf.eval(), x) - model(x)).abs().max().item()
    assert diff <= ATOL, diff
    assert model(x).abs().max() > 1.0  # logits of a size where a wrong fold would show


@pytest.mark.parametrize("name, reason", [
    ("adaptmlp", "parallel bottleneck MLP"), ("vpt", "prompt tokens"),
    ("prefix", "key/value prefixes"), ("adapter", "bottleneck adapters")])
def test_methods_without_a_plain_form_are_refused_in_one_line(tmp_path, name, reason):
    method = {"name": name, **{"vpt": {"num_prompts": 2}, "prefix": {"num_prefix": 2}}.get(name, {})}
    adapter, _ = make_adapter(tmp_path, method)
    with pytest.raises(ExportError) as err:
        export_hf(adapter, tmp_path / "hf")
    message = str(err.value)
    assert "\n" not in message and f"method {name!r} cannot be exported" in message
    assert reason in message
    assert not (tmp_path / "hf").exists()


def test_the_export_tool_refuses_peft_for_a_method_other_than_lora(tmp_path, capsys):
    from test_tools import error_lines, run_main

    adapter, _ = make_adapter(tmp_path, {"name": "bitfit"})
    assert run_main("export", [str(adapter), "--to", "peft", str(tmp_path / "out")]) == 2
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "method 'bitfit' has no peft LoRA form (use --to hf)" in err[0], err


def test_the_export_tool_writes_and_verifies_a_hf_folder(lora_adapter, tmp_path, capsys):
    from test_tools import run_main

    out = tmp_path / "hf"
    assert run_main("export", [str(lora_adapter[0]), "--to", "hf", str(out)]) == 0
    assert f"exported lora to hf: {out}" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    assert run_main("export", [str(lora_adapter[0]), "--to", "hf", str(out)]) == 2  # not over it


# ----------------------------------------------------------------------------- peft, both ways

def test_peft_export_is_three_loras_sharing_the_down_matrix(lora_adapter, tmp_path):
    adapter, model = lora_adapter
    export_peft(adapter, tmp_path / "peft")
    out = tmp_path / "peft"
    config = json.loads((out / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"]) == (4, 6.0)
    assert sorted(config["modules_to_save"]) == ["classifier", "fc_norm"]
    assert config["base_model_name_or_path"] == str((out / "base").resolve())

    saved = load_file(str(out / "adapter_model.safetensors"))
    att = "base_model.model.videomae.encoder.layer.1.attention.attention."
    qkv = model.blocks[1].attn.qkv
    for i, name in enumerate(("query", "key", "value")):
        assert torch.equal(saved[f"{att}{name}.lora_A.weight"], qkv.lora_down.weight)
        assert torch.equal(saved[f"{att}{name}.lora_B.weight"], qkv.lora_up.weight.chunk(3)[i])

    base = transformers.VideoMAEForVideoClassification.from_pretrained(out / "base")
    loaded = peft.PeftModel.from_pretrained(base, out).eval()
    x = clips()
    with torch.no_grad():
        diff = (hf_logits(loaded, x) - model(x)).abs().max().item()
    assert diff <= ATOL, diff

    back, info = model_from_peft(out)  # and back: identical A's keep the rank at r
    assert (info["rank"], back.peft_config.rank, back.peft_config.alpha) == (4, 4, 6.0)
    with torch.no_grad():
        assert (back(x) - model(x)).abs().max().item() <= ATOL


def test_peft_export_of_a_q_v_lora_is_a_lora_on_query_and_value_with_their_own_factors(tmp_path):
    adapter, model = make_adapter(tmp_path / "run", LORA_QV, init_values=0.1)
    out = tmp_path / "peft"
    assert export_peft(adapter, out).max_abs_diff <= ATOL
    config = json.loads((out / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"]) == (4, 6.0)
    layer = "videomae.encoder.layer.{}.{}"
    assert sorted(config["target_modules"]) == sorted(
        layer.format(i, m) for i in range(2) for m in ("attention.attention.query",
                                                       "attention.attention.value", "output.dense"))

    saved = load_file(str(out / "adapter_model.safetensors"))
    att = "base_model.model.videomae.encoder.layer.1.attention.attention."
    qkv = model.blocks[1].attn.qkv
    for part, name in (("q", "query"), ("v", "value")):
        assert torch.equal(saved[f"{att}{name}.lora_A.weight"], getattr(qkv, f"lora_down_{part}").weight)
        assert torch.equal(saved[f"{att}{name}.lora_B.weight"], getattr(qkv, f"lora_up_{part}").weight)
    assert not any(".key." in k for k in saved)  # the key rows get no update, as in videopeft

    loaded = peft.PeftModel.from_pretrained(
        transformers.VideoMAEForVideoClassification.from_pretrained(out / "base"), out).eval()
    x = clips()
    with torch.no_grad():
        assert (hf_logits(loaded, x) - model(x)).abs().max().item() <= ATOL

    back, info = model_from_peft(out)  # and back: the same per-part LoRA, the same tensors
    cfg = back.peft_config
    assert (cfg.rank, cfg.alpha, cfg.targets) == (4, 6.0, ("attn.q", "attn.v", "mlp.fc2"))
    for part in ("q", "v"):
        for kind in ("down", "up"):
            key = f"lora_{kind}_{part}"
            assert torch.equal(getattr(back.blocks[1].attn.qkv, key).weight,
                               getattr(qkv, key).weight)
    with torch.no_grad():
        assert (back(x) - model(x)).abs().max().item() <= ATOL


def _hf_base(folder: Path) -> Path:
    """A random tiny HF VideoMAE classifier saved with save_pretrained."""
    cfg = transformers.VideoMAEConfig(
        image_size=32, patch_size=16, num_frames=4, hidden_size=48, num_hidden_layers=2,
        num_attention_heads=3, intermediate_size=192, layer_norm_eps=1e-6,
        id2label=dict(enumerate(CLASSES)), label2id={c: i for i, c in enumerate(CLASSES)})
    torch.manual_seed(1)
    hf = transformers.VideoMAEForVideoClassification(cfg)
    _randomise(hf, [n for n, _ in hf.named_parameters()], scale=0.2)
    hf.save_pretrained(folder)
    return folder


def test_a_peft_lora_trained_on_hf_videomae_loads_into_videopeft(tmp_path):
    """query+value LoRAs with their own A matrices (peft's usual setup), one fc1 LoRA of another
    rank and alpha (rank_pattern / alpha_pattern), a trained classifier: exactly videopeft's
    per-part LoRA on attn.q, attn.v (same A's) plus fc1, the fc1 LoRA zero-padded to rank r."""
    base = _hf_base(tmp_path / "base")
    lcfg = peft.LoraConfig(r=3, lora_alpha=5, target_modules=["query", "value", "intermediate.dense"],
                           rank_pattern={"intermediate.dense": 2}, alpha_pattern={"intermediate.dense": 7},
                           modules_to_save=["classifier"])
    model = peft.get_peft_model(transformers.VideoMAEForVideoClassification.from_pretrained(base), lcfg)
    _randomise(model, [n for n, p in model.named_parameters() if p.requires_grad])
    model.save_pretrained(tmp_path / "peft")
    a = dict(model.named_parameters())
    layer0 = "base_model.model.videomae.encoder.layer.0.attention.attention."
    assert not torch.equal(a[layer0 + "query.lora_A.default.weight"],
                           a[layer0 + "value.lora_A.default.weight"])

    ours, info = model_from_peft(tmp_path / "peft", base=base)
    assert info["rank"] == 3 and info["class_names"] == CLASSES
    assert ours.peft_config.targets == ("attn.q", "attn.v", "mlp.fc1")
    qkv = ours.blocks[0].attn.qkv
    assert torch.equal(qkv.lora_down_q.weight, a[layer0 + "query.lora_A.default.weight"])
    assert torch.equal(qkv.lora_down_v.weight, a[layer0 + "value.lora_A.default.weight"])
    fc1 = ours.blocks[0].mlp.fc1
    assert fc1.lora_down.weight.shape == (3, 48) and not fc1.lora_down.weight[2:].any()
    x = clips()
    with torch.no_grad():
        reference = hf_logits(model.eval(), x)
        diff = (ours(x) - reference).abs().max().item()
    assert diff <= ATOL, diff

    # as a videopeft adapter file, used like any trained one
    result = import_peft(tmp_path / "peft", tmp_path / "imported.safetensors", base=base)
    assert result.max_abs_diff <= ATOL
    reloaded, meta = model_from_adapter(tmp_path / "imported.safetensors")
    assert meta["class_names"] == CLASSES and meta["method"]["rank"] == 3
    with torch.no_grad():
        assert (reloaded(x) - reference).abs().max().item() <= ATOL


def test_a_peft_query_value_lora_round_trips_through_a_videopeft_adapter_file(tmp_path):
    """peft -> videopeft adapter file -> peft gives back the very same LoRA tensors."""
    base = _hf_base(tmp_path / "base")
    lcfg = peft.LoraConfig(r=2, lora_alpha=4, target_modules=["query", "value"],
                           modules_to_save=["classifier"])
    model = peft.get_peft_model(transformers.VideoMAEForVideoClassification.from_pretrained(base), lcfg)
    _randomise(model, [n for n, p in model.named_parameters() if p.requires_grad])
    model.save_pretrained(tmp_path / "peft")
    import_peft(tmp_path / "peft", tmp_path / "imported.safetensors", base=base)
    result = export_peft(tmp_path / "imported.safetensors", tmp_path / "again")
    assert result.max_abs_diff <= ATOL

    first = load_file(str(tmp_path / "peft" / "adapter_model.safetensors"))
    again = load_file(str(tmp_path / "again" / "adapter_model.safetensors"))
    lora = sorted(k for k in first if ".lora_" in k)
    assert len(lora) == 2 * 2 * 2 and lora == sorted(k for k in again if ".lora_" in k)
    assert all(torch.equal(first[k], again[k]) for k in lora)
    config = json.loads((tmp_path / "again" / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"]) == (2, 4.0)
    reloaded = peft.PeftModel.from_pretrained(
        transformers.VideoMAEForVideoClassification.from_pretrained(tmp_path / "again" / "base"),
        tmp_path / "again").eval()
    x = clips()
    with torch.no_grad():
        diff = (hf_logits(reloaded, x) - hf_logits(model.eval(), x)).abs().max().item()
    assert diff <= ATOL, diff


def test_peft_options_videopeft_cannot_compute_are_refused(tmp_path):
    base = _hf_base(tmp_path / "base")
    lcfg = peft.LoraConfig(r=2, target_modules=["query"], use_dora=True)
    model = peft.get_peft_model(transformers.VideoMAEForVideoClassification.from_pretrained(base), lcfg)
    model.save_pretrained(tmp_path / "dora")
    with pytest.raises(ExportError, match=r"use_dora: DoRA has no videopeft LoRA equivalent"):
        model_from_peft(tmp_path / "dora", base=base)



def test_a_lora_on_the_head_travels_merged_into_the_peft_saved_classifier(tmp_path):
    adapter, model = make_adapter(tmp_path / "run", {"name": "lora", "rank": 2,
                                                     "targets": ["attn.qkv", "head"]})
    result = export_peft(adapter, tmp_path / "peft")
    assert result.max_abs_diff <= ATOL
    config = json.loads((tmp_path / "peft" / "adapter_config.json").read_text())
    assert "classifier" in config["modules_to_save"]
    assert not any("classifier" in t for t in config["target_modules"])
