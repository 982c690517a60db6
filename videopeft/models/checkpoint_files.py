"""Checkpoint files on disk: read any supported file or HF directory into a flat state dict plus
what it says about itself (`read_checkpoint`), and write our own (`save_pretrained`).

Read: `.pth`/`.pt`/`.bin` through `torch.load(weights_only=True)` (official files carry an argparse
`args` namespace, allowed explicitly), weights wrapped under 'model' / 'module' / 'state_dict' or
bare, DDP's `module.` prefix stripped; `.safetensors`; an HF `save_pretrained` directory
(config.json + safetensors/bin, sharded or not); a single HF-layout file next to a config.json
gets that config too. Anything unreadable raises one `CheckpointError` line naming the file.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from videopeft.errors import CheckpointError, one_line
from videopeft.io import atomic_path

from .converters import StateDict, detect_layout_or_none

__all__ = ["SourceInfo", "read_checkpoint", "save_pretrained"]

_log = logging.getLogger(__name__)

_WRAPPER_KEYS = ("model", "module", "state_dict")
_ARCH_META_KEY = "videopeft.arch"  # safetensors metadata entry written by save_pretrained
# torch.load reports corrupt input through many exception types (random bytes raise KeyError,
# EOFError, UnpicklingError or RuntimeError depending on the first bytes); all mean "unreadable".
_TORCH_LOAD_ERRORS = (pickle.UnpicklingError, EOFError, RuntimeError, ValueError, OSError,
                      LookupError, TypeError, AttributeError, struct.error)


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


def save_pretrained(model: nn.Module, path: str | Path) -> Path:
    """Write the weights of `model` (a VideoViT or PretrainVideoMAE) with its `arch`, so a later
    load knows the grid it was built for; atomically: the file is whole or absent.

    `.safetensors` stores arch as JSON metadata; any other suffix a `torch.save` dict
    {'model': state_dict, 'arch': arch}.
    """
    path = Path(path)
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    arch = dict(model.arch)
    with atomic_path(path) as tmp:
        if path.suffix == ".safetensors":
            save_file(sd, str(tmp), metadata={_ARCH_META_KEY: json.dumps(arch)})
        else:
            torch.save({"model": sd, "arch": arch}, tmp)
    return path
