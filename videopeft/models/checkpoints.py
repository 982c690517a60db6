"""Load VideoMAE-family checkpoints into a VideoViT and say exactly what happened.

Supported source layouts, recognised by sentinel keys (`detect_layout`):

* ``videopeft`` / ``official_finetune`` - our keys = the official VideoMAE fine-tune keys
  (`patch_embed.proj.weight` 5-D, `blocks.i.attn.q_bias`); official `gamma_1/2` become
  `ls1/2.gamma`.
  Wrapped under 'model' / 'module' / 'state_dict' or bare (engine `.pt` files have a 'model' key).
* ``official_pretrain`` - `encoder.*` keys of the masked autoencoder (also written by
  `videopeft.models.pretrain`); decoder, `mask_token`, `encoder_to_decoder` are ignored.
* ``hf`` - transformers VideoMAE (`[videomae.]embeddings.patch_embeddings.projection.weight`),
  from a directory (config.json + safetensors/bin, sharded or not) or one file; q/v biases named
  `q_bias`/`v_bias` (4.x, and 5.x `save_pretrained`) or `query.bias`/`value.bias` (5.x in memory).
* ``timm`` - an image ViT (`patch_embed.proj.weight` 4-D or a fused `attn.qkv.bias`): the patch
  kernel is inflated over the tubelet, the learned 2-D table resampled and repeated over time.

Positions: official and HF checkpoints use the fixed sinusoid table and store none.
``pos_policy="regenerate"`` (VideoMAE's behaviour) keeps the model's table, built for its own grid;
``"resample"`` calls `model.set_pos_source_grid(checkpoint grid)` so that "frame t" keeps the table
rows it was trained with. The checkpoint grid comes from the HF config, from `arch` metadata in our
own files, from an official `args` namespace, or (official pre-train layout only) is assumed to be
16 frames at 224 px, the size of every released VideoMAE pre-training run. Learned tables are
resampled in 3-D (time and space separately) whenever the grids differ.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import pickle
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from videopeft.constants import POS_POLICIES
from videopeft.errors import CheckpointError, one_line
from videopeft.io import atomic_path

from .pos_embed import Grid, resample_pos_embed_3d

__all__ = ["CheckpointError", "LoadReport", "ConvertNotes", "SourceInfo", "LAYOUTS",
           "load_pretrained", "read_checkpoint", "detect_layout", "convert_state_dict",
           "inflate_patch_weight", "save_pretrained"]

_log = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]

LAYOUTS = ("videopeft", "official_finetune", "official_pretrain", "hf", "timm")
# every released VideoMAE pre-training run used 16 frames at 224 px (MCG-NJU/VideoMAE scripts/*/pretrain.sh)
OFFICIAL_PRETRAIN_FRAMES, OFFICIAL_PRETRAIN_SIZE = 16, 224
_KEY_BIAS_ATOL = 1e-6
_WRAPPER_KEYS = ("model", "module", "state_dict")
_ARCH_META_KEY = "videopeft.arch"
# torch.load reports corrupt input through many exception types (random bytes raise KeyError,
# EOFError, UnpicklingError or RuntimeError depending on the first bytes); all mean "unreadable".
_TORCH_LOAD_ERRORS = (pickle.UnpicklingError, EOFError, RuntimeError, ValueError, OSError,
                      LookupError, TypeError, AttributeError, struct.error)


# ---------------------------------------------------------------------------------------------
# report


@dataclass
class ConvertNotes:
    """What a converter changed: keys dropped on purpose, keys resized, and free-text remarks."""

    ignored: dict[str, str] = field(default_factory=dict)  # key -> why it was dropped
    resized: dict[str, str] = field(default_factory=dict)  # key -> "from -> to (how)"
    messages: list[str] = field(default_factory=list)


@dataclass
class LoadReport:
    """The outcome of `load_pretrained`: which model keys were filled, left fresh or changed."""

    file: str
    layout: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # model keys left as initialised
    unexpected: list[str] = field(default_factory=list)  # checkpoint keys the model has no slot for
    resized: dict[str, str] = field(default_factory=dict)  # regenerated/resampled/inflated keys
    ignored: dict[str, str] = field(default_factory=dict)  # dropped on purpose (decoder, new head)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        rows: list[tuple[str, str, str]] = [
            ("loaded", str(len(self.loaded)), _compress(self.loaded)),
            ("missing", str(len(self.missing)), _compress(self.missing)),
            ("unexpected", str(len(self.unexpected)), _compress(self.unexpected)),
        ]
        rows += [("resized", "", f"{k}: {v}") for k, v in self.resized.items()]
        if not self.resized:
            rows.append(("resized", "0", "-"))
        for reason, keys in _group_by_value(self.ignored).items():
            rows.append(("ignored", str(len(keys)), f"{_compress(keys)} ({reason})"))
        if not self.ignored:
            rows.append(("ignored", "0", "-"))
        rows += [("note", "", n) for n in self.notes]
        width = max(len(r[0]) for r in rows)
        lines = [f"checkpoint {self.file} (layout: {self.layout})",
                 f"{'category':<{width}}  count  keys", f"{'-' * width}  -----  {'-' * 40}"]
        lines += [f"{c:<{width}}  {n:>5}  {d}" for c, n, d in rows]
        return "\n".join(lines)


def _compress(keys: list[str], limit: int = 8) -> str:
    """Collapse block indices (`blocks.0.x, blocks.1.x` -> `blocks.[0-1].x`) for short reports."""
    if not keys:
        return "-"
    groups: dict[str, list[int]] = {}
    for key in keys:
        m = re.search(r"\.(\d+)\.", key)
        pattern = key if m is None else key[:m.start()] + ".\0." + key[m.end():]
        groups.setdefault(pattern, []).append(-1 if m is None else int(m.group(1)))
    parts = []
    for pattern, idx in groups.items():
        idx = sorted(set(idx))
        if idx == [-1]:
            parts.append(pattern)
            continue
        if len(idx) == 1:
            label = str(idx[0])
        elif idx == list(range(idx[0], idx[-1] + 1)):
            label = f"[{idx[0]}-{idx[-1]}]"
        else:
            label = "[" + ",".join(map(str, idx)) + "]"
        parts.append(pattern.replace("\0", label))
    extra = f", ... (+{len(parts) - limit})" if len(parts) > limit else ""
    return ", ".join(parts[:limit]) + extra


def _group_by_value(mapping: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in mapping.items():
        out.setdefault(value, []).append(key)
    return out


# ---------------------------------------------------------------------------------------------
# reading files


@dataclass
class SourceInfo:
    """What a file says about itself besides tensors: HF config, our `arch`, official `args`."""

    file: str
    hf_config: dict[str, Any] | None = None
    arch: dict[str, Any] | None = None  # VideoViT.arch of the model that wrote it
    args: dict[str, Any] | None = None  # official VideoMAE training arguments


def read_checkpoint(path: str | Path) -> tuple[StateDict, SourceInfo]:
    """Read a checkpoint file or HF directory into a flat state dict plus its metadata.

    Raises CheckpointError (one line, naming the file) for anything that is not a checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        return _read_hf_dir(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file or directory")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    info = SourceInfo(file=str(path))
    if path.suffix == ".safetensors":
        sd, meta = _load_safetensors(path)
        if _ARCH_META_KEY in meta:
            try:
                info.arch = json.loads(meta[_ARCH_META_KEY])
            except json.JSONDecodeError:
                _log.warning("%s: unreadable %s metadata ignored", path, _ARCH_META_KEY)
    else:
        sd = _unwrap(_torch_load(path), path, info)
    sd = _strip_prefix(sd, "module.")
    config = path.parent / "config.json"
    if config.is_file() and detect_layout_or_none(sd) == "hf":
        info.hf_config = _read_json(config)
    return sd, info


def _torch_load(path: Path) -> Any:
    """`torch.load(weights_only=True)`, allowing the argparse namespace official files carry."""
    allow = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
    ctx = allow([argparse.Namespace]) if allow else contextlib.nullcontext()
    try:
        with ctx:
            return torch.load(path, map_location="cpu", weights_only=True)
    except _TORCH_LOAD_ERRORS as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({one_line(e)})") from None


def _load_safetensors(path: Path) -> tuple[StateDict, dict[str, str]]:
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        return load_file(str(path), device="cpu"), meta
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({one_line(e)})") from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({one_line(e)})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def _unwrap(obj: Any, path: Path, info: SourceInfo) -> StateDict:
    """Find the weights in a loaded object: under 'model'/'module'/'state_dict' or bare."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    if isinstance(obj.get("arch"), dict):
        info.arch = obj["arch"]
    args = obj.get("args")
    if isinstance(args, argparse.Namespace):
        info.args = vars(args)
    elif isinstance(args, dict):
        info.args = args
    inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), dict)), obj)
    sd = {k: v for k, v in inner.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not sd:
        raise CheckpointError(f"{path}: holds no tensors (keys: {list(obj)[:5]})")
    return sd


def _strip_prefix(sd: StateDict, prefix: str) -> StateDict:
    """Drop a prefix every key shares (DDP's `module.`)."""
    if sd and all(k.startswith(prefix) for k in sd):
        return {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def _read_hf_dir(path: Path) -> tuple[StateDict, SourceInfo]:
    """An HF `save_pretrained` directory: config.json + one or sharded safetensors/bin files."""
    info = SourceInfo(file=str(path))
    if (path / "config.json").is_file():
        info.hf_config = _read_json(path / "config.json")
        model_type = info.hf_config.get("model_type", "videomae")
        if model_type != "videomae":
            raise CheckpointError(f"{path}: config.json is for model_type {model_type!r}, "
                                  f"not 'videomae'")
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (path / name).is_file():
            return _read_weight_file(path / name), info
        index = path / f"{name}.index.json"
        if index.is_file():
            weight_map = _read_json(index).get("weight_map", {})
            sd: StateDict = {}
            for shard in sorted(set(weight_map.values())):
                sd.update(_read_weight_file(path / shard))
            return sd, info
    raise CheckpointError(f"{path}: directory has no model.safetensors, pytorch_model.bin or "
                          f"their .index.json")


def _read_weight_file(path: Path) -> StateDict:
    if path.suffix == ".safetensors":
        return _load_safetensors(path)[0]
    return _unwrap(_torch_load(path), path, SourceInfo(file=str(path)))


# ---------------------------------------------------------------------------------------------
# layouts


def detect_layout(state_dict: StateDict) -> str:
    """Name the key layout of a state dict from sentinel keys (one of `LAYOUTS`)."""
    keys = state_dict.keys()
    if {"videomae.embeddings.patch_embeddings.projection.weight",
            "embeddings.patch_embeddings.projection.weight"} & set(keys):
        return "hf"
    if any(k.startswith(("encoder.patch_embed.", "encoder.blocks.")) for k in keys):
        return "official_pretrain"
    patch = state_dict.get("patch_embed.proj.weight")
    if (patch is not None and patch.ndim == 4) or any(k.endswith("attn.qkv.bias") for k in keys):
        return "timm"
    if (patch is not None and patch.ndim == 5) or any(k.endswith("attn.q_bias") for k in keys):
        ours = any(".ls1.gamma" in k for k in keys) or "pos_embed" in keys or "cls_token" in keys
        return "videopeft" if ours else "official_finetune"
    raise CheckpointError(f"no known layout (VideoMAE official/HF, timm ViT); first keys: "
                          f"{list(keys)[:4]}")


def detect_layout_or_none(state_dict: StateDict) -> str | None:
    """`detect_layout`, or None when no layout fits."""
    try:
        return detect_layout(state_dict)
    except CheckpointError:
        return None


def _from_videomae(sd: StateDict, notes: ConvertNotes) -> StateDict:
    """Official fine-tune / our layout: only the layer-scale names differ."""
    out = {}
    for key, value in sd.items():
        key = re.sub(r"\.gamma_([12])$", r".ls\1.gamma", key)
        out[key] = value
    return out


def _from_official_pretrain(sd: StateDict, notes: ConvertNotes) -> StateDict:
    """Masked-autoencoder layout: keep the encoder (prefix stripped), ignore the decoder."""
    out = {}
    for key, value in sd.items():
        if key.startswith("encoder."):
            out[key[len("encoder."):]] = value
        elif key.startswith(("decoder.", "encoder_to_decoder.")) or key == "mask_token":
            notes.ignored[key] = "pre-training decoder"
        else:
            out[key] = value
    return _from_videomae(out, notes)


_HF_TOP = (("embeddings.patch_embeddings.projection.", "patch_embed.proj."),
           ("layernorm.", "norm."), ("fc_norm.", "fc_norm."), ("classifier.", "head."))
_HF_BLOCK = (("attention.attention.q_bias", "attn.q_bias"),
             ("attention.attention.query.bias", "attn.q_bias"),
             ("attention.attention.v_bias", "attn.v_bias"),
             ("attention.attention.value.bias", "attn.v_bias"),
             ("attention.output.dense.", "attn.proj."), ("intermediate.dense.", "mlp.fc1."),
             ("output.dense.", "mlp.fc2."), ("layernorm_before.", "norm1."),
             ("layernorm_after.", "norm2."))
_HF_QKV = ("query", "key", "value")


def _from_hf(sd: StateDict, notes: ConvertNotes) -> StateDict:
    """transformers VideoMAE: rename, fuse query/key/value weights into qkv (rows q, k, v)."""
    out: StateDict = {}
    qkv: dict[int, dict[str, torch.Tensor]] = {}
    for original, value in sd.items():
        key = original[len("videomae."):] if original.startswith("videomae.") else original
        m = re.match(r"encoder\.layer\.(\d+)\.(.+)$", key)
        if m:
            i, rest = int(m.group(1)), m.group(2)
            w = re.match(r"attention\.attention\.(query|key|value)\.weight$", rest)
            if w:
                qkv.setdefault(i, {})[w.group(1)] = value
            elif rest == "attention.attention.key.bias":
                _drop_key_bias(f"blocks.{i}.attn", value, original, notes)
            else:
                out[f"blocks.{i}.{_rename(rest, _HF_BLOCK)}"] = value
        elif key.startswith(("decoder.", "encoder_to_decoder.")) or key == "mask_token":
            notes.ignored[original] = "pre-training decoder"
        else:
            out[_rename(key, _HF_TOP)] = value
    for i, parts in sorted(qkv.items()):
        if set(parts) != set(_HF_QKV):
            raise CheckpointError(f"encoder.layer.{i}: has only {sorted(parts)} of "
                                  f"query/key/value weights")
        out[f"blocks.{i}.attn.qkv.weight"] = torch.cat([parts[n] for n in _HF_QKV], dim=0)
    return out


def _rename(key: str, table: tuple[tuple[str, str], ...]) -> str:
    for old, new in table:
        if key.startswith(old):
            return new + key[len(old):]
    return key


def _from_timm(sd: StateDict, notes: ConvertNotes) -> StateDict:
    """timm image ViT: same names; the fused qkv bias is split into q_bias / v_bias."""
    out: StateDict = {}
    for key, value in sd.items():
        if key.endswith("attn.qkv.bias"):
            prefix = key[: -len(".qkv.bias")]
            q, k, v = value.chunk(3)
            out[f"{prefix}.q_bias"], out[f"{prefix}.v_bias"] = q, v
            _drop_key_bias(prefix, k, key, notes)
        else:
            out[key] = value
    return out


def _drop_key_bias(prefix: str, k_bias: torch.Tensor, key: str, notes: ConvertNotes) -> None:
    """VideoMAE attention has no key bias. Dropping one is exact for plain softmax attention
    (q.b_k shifts a whole row of logits), but not once prefix keys (VPT/prefix tuning) join in."""
    amax = float(k_bias.abs().max()) if k_bias.numel() else 0.0
    if amax <= _KEY_BIAS_ATOL:
        notes.ignored[key] = "zero key bias (VideoMAE has none)"
        return
    notes.ignored[key] = "nonzero key bias dropped"
    msg = (f"{prefix}: key bias |b_k|max={amax:.3g} dropped; plain attention is unchanged "
           f"(softmax ignores a per-row shift) but prefix/prompt keys would see a difference")
    notes.messages.append(msg)
    _log.warning(msg)


_CONVERTERS = {"videopeft": _from_videomae, "official_finetune": _from_videomae,
               "official_pretrain": _from_official_pretrain, "hf": _from_hf, "timm": _from_timm}


# ---------------------------------------------------------------------------------------------
# fitting converted weights to the model


def inflate_patch_weight(weight: torch.Tensor, tubelet: int) -> torch.Tensor:
    """Image patch kernel (D, C, p, p) -> tubelet kernel (D, C, tubelet, p, p), 'average' inflation.

    The 2-D kernel is repeated over the tubelet's frames and divided by `tubelet`, so a clip of
    identical frames gives exactly the image response. ('central' inflation, the kernel in one frame
    and zeros elsewhere, gives the same on static clips but ignores the other frames; not used.)
    """
    return weight.unsqueeze(2).repeat(1, 1, tubelet, 1, 1) / tubelet


def convert_state_dict(state_dict: StateDict, model: nn.Module, layout: str | None = None, *,
                       source_grid: Grid | None = None) -> tuple[StateDict, ConvertNotes]:
    """Rename a state dict of `layout` (detected when None) into `model`'s keys and fit it.

    Pure: the inputs are not modified. Fitting inflates an image patch kernel, resamples a learned
    position table from `source_grid` (inferred when None) to the model's grid, drops a table the
    model does not learn, a class token it does not have, and a head of another class count.
    Remaining shape mismatches are left for the caller (`load_pretrained` raises on them).
    """
    layout = layout or detect_layout(state_dict)
    if layout not in _CONVERTERS:
        raise ValueError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    notes = ConvertNotes()
    sd = _CONVERTERS[layout](dict(state_dict), notes)
    return _fit_to_model(sd, model, notes, source_grid, image=layout == "timm"), notes


def _fit_to_model(sd: StateDict, model: nn.Module, notes: ConvertNotes, source_grid: Grid | None,
                  *, image: bool) -> StateDict:
    target = model.state_dict()
    patch = sd.get("patch_embed.proj.weight")
    want = target.get("patch_embed.proj.weight")
    if patch is not None and want is not None and patch.ndim == 4 and want.ndim == 5:
        tubelet = want.shape[2]
        sd["patch_embed.proj.weight"] = inflate_patch_weight(patch, tubelet)
        notes.resized["patch_embed.proj.weight"] = (
            f"{_shape(patch)} -> {_shape(sd['patch_embed.proj.weight'])} "
            f"(image kernel inflated over {tubelet} frames, average)")
    if "pos_embed" in sd:
        _fit_pos_embed(sd, model, notes, source_grid, image=image)
    if "cls_token" in sd and getattr(model, "cls_token", None) is None:
        del sd["cls_token"]
        notes.ignored["cls_token"] = "model has no class token"
    for key in ("head.weight", "head.bias"):
        if key in sd and key not in target:
            del sd[key]
            notes.ignored[key] = "model has no head (num_classes=0)"
        elif key in sd and sd[key].shape != target[key].shape:
            notes.ignored[key] = (f"head of shape {_shape(sd.pop(key))}, model's is "
                                  f"{_shape(target[key])}: new head left fresh")
    return sd


def _fit_pos_embed(sd: StateDict, model: nn.Module, notes: ConvertNotes,
                   source_grid: Grid | None, *, image: bool) -> None:
    """Resample a learned table to the model's grid, or drop it for a sinusoid model."""
    table = sd["pos_embed"]
    if not isinstance(getattr(model, "pos_embed", None), nn.Parameter):
        del sd["pos_embed"]
        notes.ignored["pos_embed"] = "model uses the fixed sinusoid table"
        return
    grid: Grid = tuple(model.grid)
    want = model.pos_embed.shape[1]
    model_prefix = want - math.prod(grid)
    src_prefix = 1 if "cls_token" in sd else 0
    n = table.shape[1] - src_prefix
    if image:
        side = math.isqrt(n)
        if side * side != n and src_prefix and math.isqrt(n + 1) ** 2 == n + 1:
            src_prefix, n, side = 0, n + 1, math.isqrt(n + 1)  # timm no_embed_class tables
        if side * side != n:
            raise CheckpointError(f"pos_embed: {n} image positions are not a square grid")
        src: Grid = (1, side, side)
    else:
        src = tuple(source_grid) if source_grid else _infer_table_grid(n, grid)
    if math.prod(src) != n:
        raise CheckpointError(f"pos_embed: {n} positions do not make the grid {src}")
    prefix, body = table[:, :src_prefix], table[:, src_prefix:]
    how = []
    if src != grid:
        body = resample_pos_embed_3d(body, src, grid)
        how.append(f"grid {src} -> {grid}" + (" (space resampled, repeated over time)"
                                               if image else " (resampled in 3-D)"))
    if model_prefix > src_prefix:
        prefix = torch.zeros(1, model_prefix, table.shape[2], dtype=table.dtype)
        how.append("zero class-token row added")
    elif model_prefix < src_prefix:
        prefix = prefix[:, :model_prefix]
        how.append("class-token row dropped")
    sd["pos_embed"] = torch.cat([prefix, body], dim=1)
    if how:
        notes.resized["pos_embed"] = (f"{_shape(table)} -> {_shape(sd['pos_embed'])} "
                                      f"({', '.join(how)})")


def _infer_table_grid(n: int, dst: Grid) -> Grid:
    """The grid of an n-row video table with no metadata: same space or same time as the model."""
    t, h, w = dst
    cands = set()
    if n % (h * w) == 0:
        cands.add((n // (h * w), h, w))
    if n % t == 0 and math.isqrt(n // t) ** 2 == n // t:
        cands.add((t, math.isqrt(n // t), math.isqrt(n // t)))
    if len(cands) == 1:
        return cands.pop()
    raise CheckpointError(f"pos_embed: cannot tell the grid of a {n}-row table for a model grid "
                          f"{dst} (candidates {sorted(cands) or 'none'}); pass source_grid=")


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


# ---------------------------------------------------------------------------------------------
# source grid


def _checkpoint_grid(layout: str, sd: StateDict, info: SourceInfo,
                     notes: ConvertNotes) -> tuple[Grid | None, Grid | None]:
    """(grid the checkpoint's model was built for, grid its sinusoid table was made for)."""
    a = info.arch or {}
    if all(k in a for k in ("num_frames", "tubelet_size", "img_size", "patch_size")):
        built = (a["num_frames"] // a["tubelet_size"], a["img_size"] // a["patch_size"],
                 a["img_size"] // a["patch_size"])
        return built, tuple(a["pos_source_grid"]) if a.get("pos_source_grid") else built
    if info.hf_config and layout == "hf":
        c = info.hf_config
        size, patch = _pair(c.get("image_size", 224)), _pair(c.get("patch_size", 16))
        grid = (c.get("num_frames", 16) // c.get("tubelet_size", 2),
                size[0] // patch[0], size[1] // patch[1])
        return grid, grid
    weight = sd.get("patch_embed.proj.weight")
    video = weight is not None and weight.ndim == 5
    tubelet, patch = (weight.shape[2], weight.shape[-1]) if video else (2, 16)
    if info.args and "num_frames" in info.args and "input_size" in info.args:
        a = info.args
        grid = (a["num_frames"] // a.get("tubelet_size", tubelet), a["input_size"] // patch,
                a["input_size"] // patch)
        return grid, grid
    if layout == "official_pretrain":
        grid = (OFFICIAL_PRETRAIN_FRAMES // tubelet, OFFICIAL_PRETRAIN_SIZE // patch,
                OFFICIAL_PRETRAIN_SIZE // patch)
        notes.messages.append(f"checkpoint grid assumed {grid}: official pre-training used "
                              f"{OFFICIAL_PRETRAIN_FRAMES} frames at {OFFICIAL_PRETRAIN_SIZE} px")
        return grid, grid
    return None, None


def _pair(v: Any) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (list, tuple)) else (int(v), int(v))


# ---------------------------------------------------------------------------------------------
# loading


def load_pretrained(model: nn.Module, path: str | Path, *, pos_policy: str = "regenerate",
                    strict_shapes: bool = True, source_grid: Grid | None = None) -> LoadReport:
    """Load a checkpoint file or HF directory into a VideoViT; return (and log) what happened.

    Args:
        pos_policy: "regenerate" keeps the model's sinusoid table for its own grid (VideoMAE);
            "resample" builds it at the checkpoint's grid and resamples it in 3-D to the model's.
        strict_shapes: raise CheckpointError on a shape no policy resolves; False drops such keys
            (reported under ignored) and warns.
        source_grid: the checkpoint's token grid (T', H', W') when the file cannot say (overrides).
    """
    if pos_policy not in POS_POLICIES:
        raise ValueError(f"pos_policy must be one of {POS_POLICIES}, got {pos_policy!r}")
    if not hasattr(model, "grid") or not hasattr(model, "blocks"):
        raise TypeError(f"load_pretrained expects a VideoViT, got {type(model).__name__}")
    sd, info = read_checkpoint(path)
    try:
        layout = detect_layout(sd)
        notes = ConvertNotes()
        table_grid, sinusoid_grid = _checkpoint_grid(layout, sd, info, notes)
        table_grid = tuple(source_grid) if source_grid else table_grid
        sinusoid_grid = tuple(source_grid) if source_grid else sinusoid_grid
        new_sd, conv = convert_state_dict(sd, model, layout, source_grid=table_grid)
    except CheckpointError as e:
        raise CheckpointError(f"{info.file}: {e}") from None
    if layout == "official_finetune" and info.arch:
        layout = "videopeft"
    notes.ignored.update(conv.ignored)
    notes.resized.update(conv.resized)
    notes.messages += conv.messages
    _check_depth(new_sd, model, info.file)
    _check_shapes(new_sd, model, info.file, notes, strict_shapes)
    result = model.load_state_dict(new_sd, strict=False)
    unexpected = set(result.unexpected_keys)
    if not any(k.startswith(("patch_embed.", "blocks.")) and k not in unexpected for k in new_sd):
        raise CheckpointError(f"{info.file}: no backbone weight matched the model (layout "
                              f"{layout}; first checkpoint keys {list(sd)[:3]})")
    _apply_pos_policy(model, pos_policy, sinusoid_grid, "pos_embed" in sd, notes)
    _note_hf_eps(info, notes)
    report = LoadReport(file=info.file, layout=layout,
                        loaded=[k for k in new_sd if k not in unexpected],
                        missing=list(result.missing_keys), unexpected=list(result.unexpected_keys),
                        resized=notes.resized, ignored=notes.ignored, notes=notes.messages)
    _log.info("loaded pretrained weights\n%s", report)
    return report


def _check_depth(sd: StateDict, model: nn.Module, file: str) -> None:
    """A checkpoint with another number of blocks is another architecture: refuse it."""
    depth = len(model.blocks)
    idx = {int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k))}
    if idx and (max(idx) + 1 != depth):
        name = getattr(model, "arch", {}).get("name", type(model).__name__)
        raise CheckpointError(f"{file}: checkpoint has {max(idx) + 1} blocks, model {name} has "
                              f"{depth} (another architecture?)")


def _check_shapes(sd: StateDict, model: nn.Module, file: str, notes: ConvertNotes,
                  strict: bool) -> None:
    """Refuse (or drop, when not strict) keys whose shapes differ from the model's."""
    target = model.state_dict()
    bad = [(k, _shape(sd[k]), _shape(v)) for k, v in target.items()  # in model order
           if k in sd and sd[k].shape != v.shape]
    if not bad:
        return
    text = "; ".join(f"{k}: checkpoint {a} vs model {b}" for k, a, b in bad[:3])
    more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
    if strict:
        name = getattr(model, "arch", {}).get("name", type(model).__name__)
        raise CheckpointError(f"{file}: does not fit {name}: {text}{more}")
    for k, a, b in bad:
        del sd[k]
        notes.ignored[k] = "shape mismatch"
    _log.warning("%s: dropped keys of another shape: %s%s", file, text, more)


def _apply_pos_policy(model: nn.Module, policy: str, src: Grid | None, had_table: bool,
                      notes: ConvertNotes) -> None:
    """Set the sinusoid table of the model according to the policy and record what changed."""
    if isinstance(model.pos_embed, nn.Parameter):
        if not had_table:
            notes.messages.append("checkpoint has no learned pos_embed: the model's table is fresh")
        return
    grid = tuple(model.grid)
    if policy == "resample":
        if src is None:
            notes.messages.append("pos_policy=resample but the checkpoint grid is unknown: table "
                                  "regenerated (pass source_grid=)")
            return
        model.set_pos_source_grid(src if tuple(src) != grid else None)
        if tuple(src) != grid:
            notes.resized["pos_embed"] = f"sinusoid made for grid {tuple(src)} resampled -> {grid}"
        return
    if model.pos_source_grid is not None:
        notes.messages.append(f"model keeps its own pos_source_grid {model.pos_source_grid}")
    elif src is not None and tuple(src) != grid:
        notes.resized["pos_embed"] = f"sinusoid regenerated: checkpoint grid {tuple(src)} -> {grid}"


def _note_hf_eps(info: SourceInfo, notes: ConvertNotes) -> None:
    eps = (info.hf_config or {}).get("layer_norm_eps")
    if eps is not None and abs(eps - 1e-6) > 1e-12:
        notes.messages.append(f"HF config layer_norm_eps={eps:g}; VideoViT uses 1e-6 (tiny drift)")


# ---------------------------------------------------------------------------------------------
# writing our own files


def save_pretrained(model: nn.Module, path: str | Path) -> Path:
    """Write `model`'s weights with its `arch` so a later load knows the grid it was built for
    (atomically: the file is whole or absent).

    `.safetensors` stores arch as JSON metadata; any other suffix a `torch.save` dict
    {'model': state_dict, 'arch': arch}.
    """
    path = Path(path)
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    arch = dict(getattr(model, "arch", {}))
    with atomic_path(path) as tmp:
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file
            save_file(sd, str(tmp), metadata={_ARCH_META_KEY: json.dumps(arch)})
        else:
            torch.save({"model": sd, "arch": arch}, tmp)
    return path

