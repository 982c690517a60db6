"""Adapter files: one `.safetensors` holding only what a method trained, plus metadata.

Tensors: every trainable parameter named in `model.peft_report` (base key names, e.g.
`blocks.3.adaptmlp.down_proj.weight`, `head.weight`) and, with `head_bn`, the BatchNorm running
statistics `head.bn.*`. Metadata (safetensors string metadata, each value JSON text): `format`,
`method` (the method config, `{"name": ..., ...}`), `backbone_name`, `backbone_arch` (model.arch),
`backbone_fingerprint`, `num_frames`, and the caller's `extra` (e.g. `classes`, `sampling`).

`load_adapter` applies the file's method to a fresh model first (so the frozen weights are frozen
again after a resume, unlike AdaptFormer's `--resume` path, which skips its freeze step), refuses a
backbone whose frozen weights hash differently, checks every key and shape, then copies the tensors.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import save_file

from videopeft.config import method_config
from videopeft.errors import AdapterError
from videopeft.io import atomic_path
from videopeft.models.vit import VideoViT

from .base import BatchNormHead, TrainableReport, refreeze
from .config import PeftConfig
from .lora import has_merged_lora
from .methods import apply

__all__ = ["AdapterError", "save_adapter", "load_adapter", "read_adapter_metadata",
           "backbone_fingerprint", "FORMAT"]

_log = logging.getLogger(__name__)

FORMAT = "videopeft-adapter/1"
_RESERVED = ("format", "method", "backbone_name", "backbone_arch", "backbone_fingerprint")


def _check_path(path: str | os.PathLike, *, must_exist: bool) -> Path:
    path = Path(path)
    if path.suffix != ".safetensors":
        raise AdapterError(f"{path}: adapter files end in .safetensors, got {path.suffix or 'no suffix'!r}")
    if must_exist and not path.is_file():
        raise AdapterError(f"{path}: adapter file not found")
    return path


def _applied(model: nn.Module, path: Path) -> tuple[PeftConfig, TrainableReport]:
    cfg, report = getattr(model, "peft_config", None), getattr(model, "peft_report", None)
    if cfg is None or report is None:
        raise AdapterError(f"{path}: the model has no PEFT method applied (call videopeft.peft.apply)")
    return cfg, report


def _stat_buffers(model: nn.Module) -> list[str]:
    """Non-parameter state a method trains: the head BatchNorm's running statistics."""
    if isinstance(getattr(model, "head", None), BatchNormHead):
        return [f"head.bn.{n}" for n, _ in model.head.bn.named_buffers()]
    return []


def backbone_fingerprint(model: nn.Module, trained: Iterable[str] | None = None) -> str:
    """Short sha256 (16 hex) over name, dtype, shape and bytes of every frozen parameter, by name.

    Frozen = not in `trained`, which defaults to the applied method's trainable set (all
    parameters count when no method is applied). Buffers are left out: the position table is
    derived, BatchNorm statistics are training state.
    """
    if trained is None:
        report = getattr(model, "peft_report", None)
        trained = report.trainable if report is not None else ()
    skip = set(trained)
    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters(), key=lambda item: item[0]):
        if name in skip:
            continue
        if param.device.type == "meta":
            raise AdapterError(f"cannot fingerprint {name}: it is on the meta device (no values)")
        t = param.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()[:16]


def save_adapter(model: VideoViT, path: str | os.PathLike, *, extra: dict[str, Any] | None = None) -> Path:
    """Write the trained tensors and metadata to `path` (.safetensors), atomically; return the path."""
    path = _check_path(path, must_exist=False)
    cfg, report = _applied(model, path)
    if has_merged_lora(model):
        raise AdapterError(f"{path}: LoRA is merged into the base weights; call unmerge_lora(model) "
                           "before saving (the fingerprint covers the unmerged backbone)")
    clash = sorted(set(extra or {}).intersection(_RESERVED))
    if clash:
        raise AdapterError(f"{path}: extra keys {clash} are written by save_adapter itself")
    state = model.state_dict()
    tensors = {n: state[n].detach().to("cpu").contiguous()
               for n in [*report.trainable, *_stat_buffers(model)]}
    arch = dict(getattr(model, "arch", {}))
    meta: dict[str, Any] = {
        "format": FORMAT, "method": cfg.to_dict(), "backbone_name": arch.get("name"),
        "backbone_arch": arch, "backbone_fingerprint": backbone_fingerprint(model, report.trainable),
        "num_frames": arch.get("num_frames"), **(extra or {})}
    try:
        encoded = {k: json.dumps(v) for k, v in meta.items()}
    except TypeError as err:
        raise AdapterError(f"{path}: metadata is not JSON-serialisable: {err}") from None
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=encoded)
    _log.info("saved %d tensors (%s parameters) of method %s to %s", len(tensors),
              f"{report.num_trainable:,}", cfg.name, path)
    return path


def read_adapter_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The decoded metadata of an adapter file (method, fingerprint, classes, ...)."""
    path = _check_path(path, must_exist=True)
    with safe_open(str(path), framework="pt") as f:
        raw = f.metadata() or {}
    if raw.get("format") != json.dumps(FORMAT):
        raise AdapterError(f"{path}: not a videopeft adapter file (format {raw.get('format')!r})")
    return {k: json.loads(v) for k, v in raw.items()}


def _ensure_method(model: VideoViT, cfg: PeftConfig, path: Path) -> TrainableReport:
    """Apply the file's method to a fresh model, or check an applied one matches and re-freeze it."""
    applied = getattr(model, "peft_config", None)
    if applied is None:
        return apply(model, cfg)
    if applied.to_dict() != cfg.to_dict():
        raise AdapterError(f"{path}: the file holds method {cfg.to_dict()} but the model has "
                           f"{applied.to_dict()} applied; load it into a fresh model")
    refreeze(model, model.peft_report.trainable)
    return model.peft_report


def load_adapter(model: VideoViT, path: str | os.PathLike) -> dict[str, Any]:
    """Load an adapter file into `model` (a fresh backbone, or one with the same method applied).

    Order: apply the file's method (freezing the backbone), compare backbone fingerprints, check
    keys and shapes, copy. Raises AdapterError (one line, naming the file) on any mismatch.
    Returns the file's metadata.
    """
    path = _check_path(path, must_exist=True)
    meta = read_adapter_metadata(path)
    report = _ensure_method(model, method_config(meta["method"]), path)
    if has_merged_lora(model):
        raise AdapterError(f"{path}: the model's LoRA is merged; call unmerge_lora(model) first")
    theirs, ours = meta.get("backbone_fingerprint"), backbone_fingerprint(model, report.trainable)
    if theirs != ours:
        raise AdapterError(f"{path}: adapter was trained on backbone {theirs} but this model's frozen "
                           f"weights have fingerprint {ours}; load the matching backbone weights first")
    state = model.state_dict(keep_vars=True)
    expected = [*report.trainable, *_stat_buffers(model)]
    with safe_open(str(path), framework="pt", device="cpu") as f:
        keys = set(f.keys())
        missing = [k for k in expected if k not in keys]
        unexpected = sorted(keys.difference(expected))
        if missing or unexpected:
            raise AdapterError(f"{path}: tensors do not match method {meta['method']['name']!r}: "
                               f"missing {missing[:5]}, unexpected {unexpected[:5]}")
        for key in expected:
            shape = tuple(f.get_slice(key).get_shape())
            if shape != tuple(state[key].shape):
                raise AdapterError(f"{path}: {key}: shape {shape} in the file, "
                                   f"{tuple(state[key].shape)} in the model")
        with torch.no_grad():
            for key in expected:
                state[key].copy_(f.get_tensor(key))
    _log.info("loaded %d tensors of method %s from %s", len(expected), meta["method"]["name"], path)
    return meta
