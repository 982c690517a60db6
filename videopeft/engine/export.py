"""Hugging Face interop: write a trained adapter as a `transformers` model or a `peft` adapter,
and read a `peft` LoRA adapter trained on HF VideoMAE back into videopeft.

    export_hf("runs/x", "out/hf")        # VideoMAEForVideoClassification dir: config.json (id2label,
                                         # label2id) + model.safetensors; LoRA and BN head folded
    export_peft("runs/x", "out/peft")    # adapter_config.json + adapter_model.safetensors, and
                                         # out/peft/base/: the frozen backbone as an HF directory
    model, info = model_from_peft("out/peft")        # back into a videopeft LoRA model
    import_peft("out/peft", "imported.safetensors")  # ... or a videopeft adapter file

A source is a run folder (its adapter.safetensors) or an adapter file; the backbone is the one
recorded in the adapter (`model.pretrained`) unless `backbone=` names another. Every export is
verified before it is moved into place: the written directory is loaded through `transformers`
(and `peft`) and its logits are compared with videopeft's on a random clip.

How the two models line up:

* Only methods whose result is a plain ViT can become a `transformers` model: lora, bitfit,
  partial, linear and full. AdaptMLP, VPT, prefix tuning and Houlsby adapters add computation
  HF VideoMAE has no module for and are refused (`ExportError`, one line). Layer scale
  (`init_values`) is folded into `attn.proj` / `mlp.fc2`; the BN head (`head_bn`) into the
  classifier. A class token, a learned position table or a resampled sinusoid table (pos_policy
  resample) have no HF equivalent and are refused.
* Block LayerNorms use `config.layer_norm_eps`, written as 1e-6 (VideoMAE's). HF builds `fc_norm`
  with PyTorch's default eps 1e-5, which no config key sets (transformers 5.x
  `VideoMAEForVideoClassification.__init__`). That is the one numeric difference left: the
  logits move by about 4.5e-6 / var(features) relative, far below the 1e-4 check for trained
  models. The check reports it rather than hides it.
* q/v biases: the in-memory naming of the installed transformers is written (`query.bias` in
  5.x, `q_bias` in 4.x) and `save_pretrained` then writes what that version reads back.
* A per-part LoRA on the fused qkv (targets `attn.q`, `attn.v`: factors A_q, B_q, A_v, B_v) is
  exactly peft LoRAs on the named modules only (query, value), each with its own A and B, at
  the same scaling alpha/r. A whole-qkv LoRA (down A: r x D, up B: 3D x r) is exactly three
  peft LoRAs on query/key/value that share A, with B split by rows. LoRA on attn.proj /
  mlp.fc1 / mlp.fc2 maps to attention.output.dense / intermediate.dense / output.dense (a
  layer scale after them is folded into B). The trained head and final norm travel as peft
  `modules_to_save`.
* The reverse: peft's usual LoRAs on query and value, with their own A matrices, become
  videopeft's per-part LoRA (targets attn.q, attn.v, rank r) with the same tensors. Only when
  every qkv carries query, key and value LoRAs sharing one A (what `export_peft` writes for a
  whole-qkv LoRA) is it read back as a whole-qkv LoRA of rank r. Both forms are exact for
  anything else a peft LoRA config can hold, since videopeft has one rank and one scale per
  adapter: smaller LoRAs (rank_pattern) are zero-padded to the largest rank, per-module
  scalings that differ (alpha_pattern, rslora) are folded into the B matrices (scale 1), and
  a part or layer the adapter leaves out gets zero factors (an exact no-op).
"""
from __future__ import annotations

import importlib
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors.torch import load_file

from videopeft import peft
from videopeft.constants import EXPORT_TARGETS, IMAGENET_MEAN, IMAGENET_STD, QKV_PARTS
from videopeft.errors import ExportError
from videopeft.io import atomic_dir, atomic_write_json
from videopeft.models import MODEL_ARCHS, VideoViT, load_pretrained
from videopeft.models.checkpoint_files import read_checkpoint
from videopeft.models.converters import to_hf, videopeft_to_hf_key, videopeft_to_hf_keys

from .infer import lora_layers, model_from_adapter, plain_state_dict

__all__ = ["ExportError", "ExportResult", "EXPORT_TARGETS", "MERGEABLE", "resolve_adapter",
           "export", "export_hf", "export_peft", "model_from_peft", "import_peft",
           "model_from_hf_config", "hf_config_dict"]

_log = logging.getLogger(__name__)

MERGEABLE = ("lora", "bitfit", "partial", "linear", "full")
_NO_PLAIN_FORM = {
    "adaptmlp": "adds a parallel bottleneck MLP to every block",
    "vpt": "adds prompt tokens to the token sequence",
    "prefix": "adds learned key/value prefixes to attention",
    "adapter": "adds bottleneck adapters after attention and the MLP",
}
VERIFY_ATOL = 1e-4
_PEFT_PREFIX = "base_model.model."
# the VideoViT modules outside the blocks a LoRA adapter trains, by their HF module names
_HF_ROOT_MODULES = {m: videopeft_to_hf_key(f"{m}.weight").removesuffix(".weight")
                    for m in ("head", "fc_norm", "norm")}


@dataclass
class ExportResult:
    """What was written where, and how close its logits are to videopeft's (max |diff|)."""

    path: Path
    to: str
    method: str
    max_abs_diff: float
    files: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- shared pieces

def resolve_adapter(source: str | os.PathLike) -> Path:
    """A run folder's adapter.safetensors, or the adapter file itself."""
    path = Path(source)
    if path.is_dir():
        path = path / "adapter.safetensors"
        if not path.is_file():
            raise ExportError(f"{source}: a run folder with no adapter.safetensors (training "
                              f"writes it at the end)")
    elif not path.is_file():
        raise ExportError(f"{source}: no such run folder or adapter file")
    return path


def _require(module: str) -> Any:
    """Import an optional package, or say which one export needs."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(f"exporting needs the {module!r} package (pip install {module})") from None


def _check_exportable(model: nn.Module, method: str, source: Path, to: str) -> None:
    """Refuse, with the reason, what HF VideoMAE cannot represent."""
    if to == "peft" and method != "lora":
        raise ExportError(f"{source}: --to peft writes LoRA adapters; method {method!r} has no "
                          f"peft LoRA form" + (" (use --to hf)" if method in MERGEABLE else ""))
    if method in _NO_PLAIN_FORM:
        raise ExportError(f"{source}: method {method!r} cannot be exported to transformers: it "
                          f"{_NO_PLAIN_FORM[method]}, which HF VideoMAE has no module for "
                          f"(mergeable methods: {', '.join(MERGEABLE)})")
    a = model.arch
    problems = [("class_token", "a class token"), ("learnable_pos_embed", "a learned position table"),
                ("pos_source_grid", "a resampled sinusoid table (pos_policy resample)")]
    for key, what in problems:
        if a.get(key):
            raise ExportError(f"{source}: the backbone has {what}; HF VideoMAE regenerates a fixed "
                              f"sinusoid table for its own grid, so it cannot reproduce it")
    if not a.get("num_classes"):
        raise ExportError(f"{source}: the model has no classification head (num_classes=0)")


def _layer_scales(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`blocks.i.attn.proj.weight` / `blocks.i.mlp.fc2.weight` -> the layer-scale gamma after it."""
    out = {}
    for key in state:
        m = re.match(r"(blocks\.\d+)\.ls([12])\.gamma$", key)
        if m:
            out[f"{m.group(1)}.{'attn.proj' if m.group(2) == '1' else 'mlp.fc2'}.weight"] = state[key]
    return out


def _fold_layer_scale(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """x + gamma * proj(y) == x + proj'(y) with proj' rows scaled by gamma (same for fc2)."""
    for weight_key, gamma in _layer_scales(state).items():
        gamma = gamma.double()
        layer = weight_key[: -len(".weight")]
        for part in ("weight", "bias"):
            t = state[f"{layer}.{part}"]
            scaled = t.double() * (gamma[:, None] if part == "weight" else gamma)
            state[f"{layer}.{part}"] = scaled.to(t.dtype)
    return {k: v for k, v in state.items() if not re.search(r"\.ls[12]\.gamma$", k)}


def hf_config_dict(arch: dict[str, Any], class_names: list[str]) -> dict[str, Any]:
    """The `transformers.VideoMAEConfig` keyword arguments for a VideoViT architecture."""
    dim = arch["embed_dim"]
    return dict(image_size=arch["img_size"], patch_size=arch["patch_size"],
                num_channels=arch.get("in_chans", 3), num_frames=arch["num_frames"],
                tubelet_size=arch["tubelet_size"], hidden_size=dim,
                num_hidden_layers=arch["depth"], num_attention_heads=arch["num_heads"],
                intermediate_size=int(dim * arch.get("mlp_ratio", 4.0)), hidden_act="gelu",
                layer_norm_eps=1e-6, qv_bias=bool(arch.get("qkv_bias", True)),
                use_mean_pooling=bool(arch.get("use_mean_pooling", True)),
                num_labels=len(class_names),
                id2label={i: c for i, c in enumerate(class_names)},
                label2id={c: i for i, c in enumerate(class_names)})


def _class_names(meta: dict, model: nn.Module) -> list[str]:
    names = meta.get("class_names") or [str(i) for i in range(model.num_classes)]
    if len(set(names)) != len(names):  # label2id needs unique names
        names = [f"{i}:{c}" for i, c in enumerate(names)]
    return list(names)


def _hf_bias_naming(hf_model: nn.Module) -> str:
    """The q/v bias naming the installed transformers uses in memory."""
    keys = hf_model.state_dict().keys()
    return "q_bias" if any(k.endswith("attention.attention.q_bias") for k in keys) else "query.bias"


def _write_hf(state: dict[str, torch.Tensor], config: dict[str, Any], out: Path) -> None:
    """Build VideoMAEForVideoClassification from `config`, load `state` strictly, save_pretrained."""
    transformers = _require("transformers")
    hf_model = transformers.VideoMAEForVideoClassification(transformers.VideoMAEConfig(**config))
    hf_state = to_hf(state, qv_bias=_hf_bias_naming(hf_model))
    result = hf_model.load_state_dict({k: v.contiguous() for k, v in hf_state.items()}, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ExportError(f"{out}: weights do not fit transformers' VideoMAE: missing "
                          f"{result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]}")
    hf_model.save_pretrained(out)


def _load_hf(path: Path) -> nn.Module:
    """Load an exported directory through transformers; missing or unexpected keys are an error."""
    transformers = _require("transformers")
    model, info = transformers.VideoMAEForVideoClassification.from_pretrained(
        path, output_loading_info=True)
    bad = {k: sorted(v)[:3] for k, v in info.items() if k != "error_msgs" and v}
    if bad:
        raise ExportError(f"{path}: transformers loads it with {bad}")
    return model.float().eval()


def _random_clips(arch: dict[str, Any]) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, arch.get("in_chans", 3), arch["num_frames"], arch["img_size"],
                       arch["img_size"], generator=g)


def hf_logits(model: nn.Module, clips: torch.Tensor) -> torch.Tensor:
    """Logits of an HF VideoMAE (or a peft model around one) for clips (B, C, T, H, W)."""
    return model(pixel_values=clips.permute(0, 2, 1, 3, 4)).logits  # HF takes (B, T, C, H, W)


def _check_close(out: Path, got: torch.Tensor, reference: torch.Tensor, what: str) -> float:
    diff = (got.float() - reference.float()).abs().max().item()
    bound = VERIFY_ATOL * max(1.0, reference.abs().max().item())
    if not diff <= bound:
        raise ExportError(f"{out}: {what} differs from videopeft's logits by {diff:.3g} (allowed "
                          f"{bound:.3g}; part of it is HF's fc_norm eps, 1e-5 vs videopeft's 1e-6)")
    return diff


def _new_folder(out: str | os.PathLike) -> Path:
    """`out` as an output folder, refused when it holds something already. Exports fill a
    temporary folder (`videopeft.io.atomic_dir`) that becomes `out` only once verified."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out}: already exists and is not an empty folder; choose a new "
                          f"output folder")
    return out


# ----------------------------------------------------------------------------- to transformers

@torch.no_grad()
def export_hf(source: str | os.PathLike, out: str | os.PathLike, *,
              backbone: str | os.PathLike | None = None) -> ExportResult:
    """Write a run/adapter as a merged transformers VideoMAEForVideoClassification directory.

    Raises ExportError (one line) for methods or backbones HF VideoMAE cannot represent, and when
    the written model's logits differ from videopeft's by more than 1e-4 * max(1, max |logit|).
    """
    adapter = resolve_adapter(source)
    model, meta = model_from_adapter(adapter, backbone)
    method = meta["method"]["name"]
    _check_exportable(model, method, adapter, "hf")
    clips = _random_clips(model.arch)
    reference = model(clips)
    state = _fold_layer_scale(plain_state_dict(model, adapter))
    out = _new_folder(out)
    with atomic_dir(out) as tmp:
        _write_hf(state, hf_config_dict(model.arch, _class_names(meta, model)), tmp)
        diff = _check_close(out, hf_logits(_load_hf(tmp), clips), reference,
                            "the transformers model")
    _log.info("exported %s (%s) to %s; max |logit diff| %.3g", adapter, method, out, diff)
    return ExportResult(out, "hf", method, diff, sorted(p.name for p in out.iterdir()))


# ----------------------------------------------------------------------------- to peft

def _hf_module_names(module: str) -> list[str]:
    """HF module name(s) of a videopeft Linear (`blocks.0.attn.qkv` gives query, key, value)."""
    return [k.removesuffix(".weight") for k in videopeft_to_hf_keys(f"{module}.weight")]


def _peft_factors(layers: dict[str, nn.Module], names: list[str],
                  gammas: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """HF module name -> (A, B) of the peft LoRA it becomes, for the LoRA layers `names`: a part
    of a fused qkv (`lora_down_q`, ...) is its own module (query, ...); a whole-qkv LoRA is three
    modules sharing A, B split by rows; a layer scale after attn.proj / mlp.fc2 scales B's rows."""
    out = {}
    for name in names:
        hf_names = _hf_module_names(name)
        gamma = gammas.get(f"{name}.weight")
        for suffix, down, up in layers[name].factors():
            b = up.weight if gamma is None else gamma[:, None].to(up.weight.dtype) * up.weight
            if suffix:  # "_q": the query rows only
                out[hf_names[QKV_PARTS.index(suffix[1:])]] = (down.weight, b)
            else:
                out.update({h: (down.weight, rows)
                            for h, rows in zip(hf_names, b.chunk(len(hf_names)))})
    return out


@torch.no_grad()
def export_peft(source: str | os.PathLike, out: str | os.PathLike, *,
                backbone: str | os.PathLike | None = None) -> ExportResult:
    """Write a LoRA run/adapter as a peft adapter directory, with its HF base in `out/base`.

    `peft.PeftModel.from_pretrained(VideoMAEForVideoClassification.from_pretrained(out/"base"),
    out)` gives videopeft's logits (checked before the folder is moved into place). The trained
    head (BN folded) and final norm are peft `modules_to_save`; a LoRA on the head itself is
    merged into it.
    """
    hf_peft = _require("peft")
    adapter = resolve_adapter(source)
    model, meta = model_from_adapter(adapter, backbone)
    method = meta["method"]["name"]
    _check_exportable(model, method, adapter, "peft")
    cfg = model.peft_config
    clips = _random_clips(model.arch)
    reference = model(clips)

    layers = lora_layers(model)
    root = {n for n in layers if n in _HF_ROOT_MODULES}  # LoRA on the head: merged into it
    state = plain_state_dict(model, adapter, merge=root)
    gammas = _layer_scales(state)
    state = _fold_layer_scale(state)
    trained = set(model.peft_report.trainable)
    saved = [m for m in _HF_ROOT_MODULES if any(p.startswith(m + ".") for p in trained)]
    targets = _peft_factors(layers, sorted(set(layers) - root), gammas)

    out = _new_folder(out)
    with atomic_dir(out) as tmp:
        base_dir = tmp / "base"
        _write_hf(state, hf_config_dict(model.arch, _class_names(meta, model)), base_dir)
        lcfg = hf_peft.LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                                  target_modules=sorted(targets), bias="none",
                                  modules_to_save=[_HF_ROOT_MODULES[m] for m in saved] or None)
        peft_model = hf_peft.get_peft_model(_load_hf(base_dir), lcfg)
        params = dict(peft_model.named_parameters())
        for hf_name, (down, up) in targets.items():
            params[f"{_PEFT_PREFIX}{hf_name}.lora_A.default.weight"].copy_(down)
            params[f"{_PEFT_PREFIX}{hf_name}.lora_B.default.weight"].copy_(up)
        for key, hf_key in _saved_modules(state, saved).items():
            params[f"{_PEFT_PREFIX}{hf_key}"].copy_(state[key])
        peft_model.save_pretrained(tmp)
        loaded = hf_peft.PeftModel.from_pretrained(_load_hf(base_dir), tmp).eval()
        diff = _check_close(out, hf_logits(loaded, clips), reference, "the peft model")
        config_file = tmp / "adapter_config.json"  # point at the base where it is about to lie
        config = json.loads(config_file.read_text())
        config["base_model_name_or_path"] = str((out / "base").resolve())
        atomic_write_json(config_file, config)
    _log.info("exported %s (LoRA rank %d on %d HF modules) to %s; max |logit diff| %.3g",
              adapter, cfg.rank, len(targets), out, diff)
    return ExportResult(out, "peft", method, diff, sorted(p.name for p in out.iterdir()))


def _saved_modules(state: dict[str, torch.Tensor], modules: list[str]) -> dict[str, str]:
    """videopeft key -> peft modules_to_save parameter name, for the trained root modules."""
    out = {}
    for module in modules:
        for key in (k for k in state if k.startswith(module + ".")):
            param = key[len(module) + 1:]
            out[key] = f"{_HF_ROOT_MODULES[module]}.modules_to_save.default.{param}"
    return out


def export(source: str | os.PathLike, to: str, out: str | os.PathLike, *,
           backbone: str | os.PathLike | None = None) -> ExportResult:
    """The `export SOURCE --to hf|peft|videopeft OUT` command: `export_hf`, `export_peft`, or
    `import_peft` (SOURCE a peft adapter folder, OUT a videopeft .safetensors, backbone its base)."""
    if to not in EXPORT_TARGETS:
        raise ExportError(f"--to: expected one of {list(EXPORT_TARGETS)}, got {to!r}")
    if to == "videopeft":
        return import_peft(source, out, base=backbone)
    return (export_hf if to == "hf" else export_peft)(source, out, backbone=backbone)


# ----------------------------------------------------------------------------- from peft

def model_from_hf_config(config: dict[str, Any]) -> nn.Module:
    """A VideoViT with the architecture of an HF VideoMAE config.json (weights left fresh)."""
    def square(key: str) -> int:
        v = config.get(key, 224 if key == "image_size" else 16)
        if isinstance(v, (list, tuple)):
            if len(set(v)) != 1:
                raise ExportError(f"config.json: {key}: expected a square size, got {v}")
            v = v[0]
        return int(v)

    if config.get("hidden_act", "gelu") != "gelu":
        raise ExportError(f"config.json: hidden_act: expected 'gelu', got {config['hidden_act']!r}")
    dim, depth, heads = (int(config.get(k, d)) for k, d in (
        ("hidden_size", 768), ("num_hidden_layers", 12), ("num_attention_heads", 12)))
    labels = config.get("id2label") or {}
    arch = dict(img_size=square("image_size"), patch_size=square("patch_size"),
                in_chans=int(config.get("num_channels", 3)),
                num_frames=int(config.get("num_frames", 16)),
                tubelet_size=int(config.get("tubelet_size", 2)), embed_dim=dim, depth=depth,
                num_heads=heads, mlp_ratio=int(config.get("intermediate_size", 4 * dim)) / dim,
                qkv_bias=bool(config.get("qv_bias", config.get("qkv_bias", True))),
                use_mean_pooling=bool(config.get("use_mean_pooling", True)),
                num_classes=len(labels) or int(config.get("num_labels", 2)))
    model = VideoViT(**arch)
    model.arch["name"] = next((n for n, a in MODEL_ARCHS.items()
                               if (a["embed_dim"], a["depth"], a["num_heads"]) == (dim, depth, heads)),
                              None)
    return model


def _read_peft_dir(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    config_file, weights = path / "adapter_config.json", path / "adapter_model.safetensors"
    for f in (config_file, weights):
        if not f.is_file():
            raise ExportError(f"{path}: not a peft adapter directory (no {f.name})")
    try:
        config = json.loads(config_file.read_text())
    except json.JSONDecodeError as e:
        raise ExportError(f"{config_file}: not valid JSON ({e})") from None
    tensors = load_file(str(weights))
    return config, {k[len(_PEFT_PREFIX):] if k.startswith(_PEFT_PREFIX) else k: v
                    for k, v in tensors.items()}


def _check_peft_config(c: dict[str, Any], path: Path) -> None:
    """Refuse the peft LoRA options that change the maths videopeft's LoRA computes."""
    where = path / "adapter_config.json"
    if c.get("peft_type") != "LORA":
        raise ExportError(f"{where}: peft_type: expected 'LORA', got {c.get('peft_type')!r}")
    refused = [("use_dora", "DoRA"), ("fan_in_fan_out", "fan_in_fan_out"), ("lora_bias", "lora_bias"),
               ("target_parameters", "target_parameters"), ("layer_replication", "layer_replication"),
               ("trainable_token_indices", "trainable_token_indices")]
    for key, what in refused:
        if c.get(key):
            raise ExportError(f"{where}: {key}: {what} has no videopeft LoRA equivalent")
    if c.get("bias", "none") != "none":
        raise ExportError(f"{where}: bias: {c['bias']!r} trains biases, which a videopeft LoRA "
                          f"adapter does not hold; only bias='none' is read")


def _pattern_value(patterns: dict[str, Any], module: str, default: Any) -> Any:
    """peft's rank_pattern / alpha_pattern lookup: a key matches a module name by '.'-suffix regex."""
    for pattern, value in patterns.items():
        if re.match(rf"(.*\.)?{pattern}$", module):
            return value
    return default


@torch.no_grad()
def model_from_peft(peft_dir: str | os.PathLike, *, base: str | os.PathLike | None = None
                    ) -> tuple[nn.Module, dict[str, Any]]:
    """A videopeft LoRA model equal to a peft LoRA adapter on HF VideoMAE (see the module doc).

    `base` is the HF VideoMAE directory the adapter was trained on (default: the adapter's
    base_model_name_or_path when it is a local folder). Returns (model in eval mode, info) with
    info: class_names, base, config (the HF config), rank, alpha, modules (peft module count).
    """
    path = Path(peft_dir)
    config, tensors = _read_peft_dir(path)
    _check_peft_config(config, path)
    base_dir = Path(base or config.get("base_model_name_or_path") or "")
    if not (base_dir / "config.json").is_file():
        raise ExportError(f"{path}: base model {str(base_dir) or '(none recorded)'} is not a "
                          f"local HF VideoMAE folder with config.json; pass base=PATH")
    _, info = read_checkpoint(base_dir)
    model = model_from_hf_config(info.hf_config or {})
    report = load_pretrained(model, base_dir)
    if report.missing:
        raise ExportError(f"{base_dir}: base weights leave {report.missing[:3]} unset")

    hf_to_ours = {h: (key, i, len(hs)) for key in model.state_dict()
                  for hs in [videopeft_to_hf_keys(key)] for i, h in enumerate(hs)}
    pieces: dict[str, _Pieces] = {}
    copies: dict[str, torch.Tensor] = {}
    for key in sorted(tensors):
        if key.endswith(".lora_A.weight"):
            hf_module = key[: -len(".lora_A.weight")]
            ours = hf_to_ours.get(f"{hf_module}.weight")
            up = tensors.get(f"{hf_module}.lora_B.weight")
            if ours is None or up is None:
                raise ExportError(f"{path}: LoRA on {hf_module!r}, which is not a linear layer "
                                  f"videopeft has (or has no lora_B)")
            down = tensors[key]
            r = down.shape[0]
            alpha = _pattern_value(config.get("alpha_pattern") or {}, hf_module,
                                   config.get("lora_alpha", 8))
            scale = alpha / (math.sqrt(r) if config.get("use_rslora") else r)
            name = ours[0][: -len(".weight")]
            pieces.setdefault(name, _Pieces(ours[2])).slots[ours[1]] = (down, up, float(scale))
        elif not key.endswith(".lora_B.weight"):
            hf_key = re.sub(r"\.modules_to_save(\.default)?\.", ".", key)
            ours = hf_to_ours.get(hf_key)
            roots = tuple(f"{m}." for m in _HF_ROOT_MODULES)
            if ours is None or ours[2] != 1 or not ours[0].startswith(roots):
                raise ExportError(f"{path}: saved module tensor {key!r} has no place in a videopeft "
                                  f"LoRA adapter (only classifier, fc_norm, videomae.layernorm)")
            copies[ours[0]] = tensors[key]
    if not pieces:
        raise ExportError(f"{path}: adapter_model.safetensors holds no LoRA tensors")
    factors, scale = _videopeft_factors(pieces)
    cfg = _lora_config(factors, scale, float(config.get("lora_dropout", 0.0)), len(model.blocks))
    peft.apply(model, cfg)
    for name, layer in lora_layers(model).items():  # what the adapter has no LoRA for stays zero
        given = factors.get(name, {})
        for suffix, down, up in layer.factors():
            down.weight.zero_()
            up.weight.zero_()
            if suffix in given:  # a smaller rank fills the first rows of A, columns of B
                d, u = given[suffix]
                down.weight[: d.shape[0]].copy_(d)
                up.weight[:, : d.shape[0]].copy_(u)
    state = model.state_dict(keep_vars=True)
    for key, value in copies.items():
        state[key].copy_(value)
    id2label = (info.hf_config or {}).get("id2label") or {}
    class_names = [str(v) for _, v in sorted((int(k), v) for k, v in id2label.items())]
    _log.info("read peft adapter %s: %d peft LoRA modules as videopeft LoRA rank %d on %s",
              path, sum(len(p.slots) for p in pieces.values()), cfg.rank, list(cfg.targets))
    return model.eval(), {"class_names": class_names or [str(i) for i in range(model.num_classes)],
                          "base": str(base_dir.resolve()), "config": info.hf_config or {},
                          "rank": cfg.rank, "alpha": cfg.alpha,
                          "modules": sum(len(p.slots) for p in pieces.values())}


@dataclass
class _Pieces:
    """The peft LoRAs of one videopeft linear: qkv has 3 slots (query, key, value), others 1."""

    parts: int
    slots: dict[int, tuple[torch.Tensor, torch.Tensor, float]] = field(default_factory=dict)


_Factors = dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]]


def _shares_down(p: _Pieces) -> bool:
    """True when the peft LoRAs of a qkv cover query, key and value with one A (export_peft's
    form of a whole-qkv LoRA)."""
    downs = [d for d, _, _ in p.slots.values()]
    return len(downs) == p.parts and all(d.shape == downs[0].shape and torch.equal(d, downs[0])
                                         for d in downs)


def _videopeft_factors(pieces: dict[str, _Pieces]) -> tuple[_Factors, float]:
    """Per videopeft linear, its LoRA factors by `LoRALinear.factors()` suffix ("" for the whole
    layer, "_q"/"_k"/"_v" per qkv part) as (down, up), at one common scale (the pieces' scale
    when they share it, else 1 with each scale folded into its up). A qkv becomes one whole-qkv
    LoRA when every qkv's pieces share one A over all three parts, else per-part LoRAs."""
    scales = {s for p in pieces.values() for _, _, s in p.slots.values()}
    common = scales.pop() if len(scales) == 1 else 1.0
    qkv = [p for p in pieces.values() if p.parts == len(QKV_PARTS)]
    whole_qkv = all(_shares_down(p) for p in qkv)
    factors: _Factors = {}
    for name, p in pieces.items():
        scaled = {slot: (d.float(), b.float() * (s / common)) for slot, (d, b, s) in p.slots.items()}
        if p.parts == 1:
            factors[name] = {"": scaled[0]}
        elif whole_qkv:
            factors[name] = {"": (scaled[0][0], torch.cat([scaled[i][1] for i in range(p.parts)]))}
        else:
            factors[name] = {f"_{QKV_PARTS[slot]}": f for slot, f in sorted(scaled.items())}
    return factors, common


def _lora_config(factors: _Factors, scale: float, dropout: float, depth: int) -> Any:
    """The videopeft LoraConfig that holds `factors`: the largest rank, alpha = scale * rank, the
    targets (`attn.q` for a part "_q" of attn.qkv) and blocks that occur (None = all blocks)."""
    names = list(factors)
    rank = max(d.shape[0] for per_layer in factors.values() for d, _ in per_layer.values())
    targets = set()
    for name, per_layer in factors.items():
        target = re.sub(r"^blocks\.\d+\.", "", name)
        owner = target.rpartition(".")[0]
        targets.update(f"{owner}.{suffix[1:]}" if suffix else target for suffix in per_layer)
    blocks = sorted({int(m.group(1)) for n in names if (m := re.match(r"blocks\.(\d+)\.", n))})
    in_blocks = all(n.startswith("blocks.") for n in names)
    layers = None if not in_blocks or blocks == list(range(depth)) else blocks
    return peft.LoraConfig(rank=rank, alpha=float(scale * rank), dropout=dropout,
                           targets=tuple(sorted(targets)), layers=layers)


@torch.no_grad()
def import_peft(peft_dir: str | os.PathLike, out: str | os.PathLike, *,
                base: str | os.PathLike | None = None) -> ExportResult:
    """`model_from_peft`, written as a videopeft adapter file usable by infer / eval / export.

    The file records the HF base folder as the backbone (`model.pretrained`), the classes from its
    id2label, and the sampling of its config (frames, size; mean/std from a
    preprocessor_config.json when the base folder has one, else VideoMAE's ImageNet values).
    The written file is reloaded (`model_from_adapter`) and checked against the adapter run
    through peft on HF VideoMAE.
    """
    out = Path(out)
    if out.exists():
        raise ExportError(f"{out}: already exists; choose a new adapter file name")
    model, info = model_from_peft(peft_dir, base=base)
    arch = model.arch
    pre = Path(info["base"]) / "preprocessor_config.json"
    norm = json.loads(pre.read_text()) if pre.is_file() else {}
    extra = {"class_names": info["class_names"], "seed": 0,
             "model": {"name": arch.get("name"), "pretrained": info["base"]},
             "num_frames": arch["num_frames"], "img_size": arch["img_size"],
             "sampling": {"num_frames": arch["num_frames"], "img_size": arch["img_size"],
                          "mean": list(norm.get("image_mean", IMAGENET_MEAN)),
                          "std": list(norm.get("image_std", IMAGENET_STD))},
             "imported_from": str(Path(peft_dir).resolve())}
    peft.save_adapter(model, out, extra=extra)
    reloaded, _ = model_from_adapter(out)
    clips = _random_clips(arch)
    peft_model = _require("peft").PeftModel.from_pretrained(_load_hf(Path(info["base"])),
                                                            str(peft_dir)).eval()
    try:
        diff = _check_close(out, reloaded(clips), hf_logits(peft_model, clips), "the imported adapter")
    except ExportError:
        out.unlink()
        raise
    _log.info("imported peft adapter %s as %s (LoRA rank %d); max |logit diff| %.3g", peft_dir,
              out, info["rank"], diff)
    return ExportResult(out, "videopeft", "lora", diff, [out.name])
