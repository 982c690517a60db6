"""Turn a RunConfig into runtime pieces shared by training, evaluation and inference.

Output folder, precision context, the backbone + PEFT method, parameter counts and the FLOPs of one
view live here once, so `train.py` and `evaluate.py` build models the same way.
"""
from __future__ import annotations

import contextlib
import logging
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ContextManager

import torch
import torch.nn as nn
from timm.layers import trunc_normal_

from videopeft import peft
from videopeft.config import RunConfig
from videopeft.constants import AMPS
from videopeft.errors import ConfigError
from videopeft.models import create_model, load_pretrained
from videopeft.models.flops import forward_flops
from videopeft.data.preflight import check_data, check_num_classes
from videopeft.run_folder import changed_settings, claim_run_folder, inspect_folder, unique_path

from . import distributed as dist

__all__ = ["Precision", "resolve_precision", "resolve_output_dir", "prepare_run", "build_backbone",
           "build_model", "count_params", "gflops_per_view", "peak_memory_mb",
           "resolve_num_classes"]

_log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- output folder

def resolve_output_dir(cfg: RunConfig, run_name: str, suffix: str = "",
                       parent: str | Path | None = None) -> Path:
    """The run folder: `cfg.output_dir`, else ``runs/<run_name><suffix>-<time>`` (the same on every
    rank; ``-2``, ``-3`` ... when that name exists already); with `parent`, always a new
    ``<parent>/<run_name><suffix>-<time>`` (an evaluation inside the run it evaluates).

    With ``train.resume: auto`` and no output_dir, the newest existing ``runs/<run_name>-*`` that
    holds checkpoints of the same run (`videopeft.run_folder.changed_settings` finds no key) is
    reused, so re-running the same command continues the run.
    """
    if cfg.output_dir and parent is None:
        return Path(cfg.output_dir)
    path = None
    if dist.is_main():
        base = Path("runs") if parent is None else Path(parent)
        if cfg.train.resume == "auto" and not suffix and parent is None and base.is_dir():
            previous = sorted((p for p in base.glob(f"{run_name}-*") if _same_run(p, cfg)),
                              key=lambda p: p.stat().st_mtime)
            if previous:
                path = previous[-1]
                _log.info("resume: auto: continuing %s", path)
        if path is None:
            path = unique_path(base / f"{run_name}{suffix}-{time.strftime('%Y%m%d-%H%M%S')}")
    return Path(dist.broadcast_object(str(path) if path else None))


def _same_run(folder: Path, cfg: RunConfig) -> bool:
    """Does `folder` hold checkpoints of a run with `cfg`'s settings (resume and length aside)?"""
    state = inspect_folder(folder)
    return state.has_checkpoints and state.config is not None \
        and not changed_settings(state.config, cfg)


# ----------------------------------------------------------------------------- precision

@dataclass
class Precision:
    """How forward passes run: an autocast context (or a no-op) and whether a GradScaler is needed."""

    dtype: torch.dtype | None  # None = full precision
    device_type: str

    @property
    def name(self) -> str:
        return {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    @property
    def use_scaler(self) -> bool:
        return self.dtype == torch.float16

    def autocast(self) -> ContextManager:
        """`torch.autocast` for the chosen dtype, or a nullcontext: one code path for all precisions."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)


def resolve_precision(amp: str, device: torch.device) -> Precision:
    """`train.amp` -> Precision: auto = bf16 on CUDA, off on CPU; fp16 needs CUDA."""
    if amp not in AMPS:  # the config checks it; this guards direct callers
        raise ValueError(f"amp must be one of {list(AMPS)}, got {amp!r}")
    if amp == "auto":
        amp = "bf16" if device.type == "cuda" else "off"
    if amp == "fp16" and device.type != "cuda":
        _log.warning("train.amp=fp16 needs CUDA; running in full precision on %s", device)
        amp = "off"
    dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return Precision(dtype=dtype, device_type=device.type)


# ----------------------------------------------------------------------------- model

def resolve_num_classes(cfg: RunConfig, class_names: list[str]) -> int:
    """model.num_classes, or the dataset's class count when it is 0; a mismatch is a ConfigError
    (`videopeft.data.preflight.check_num_classes`)."""
    return check_num_classes(cfg.model.num_classes, class_names)


# ----------------------------------------------------------------------------- before a run

def prepare_run(out_dir: Path, cfg: RunConfig, splits: dict[str, bool], info: dist.DistInfo, *,
                overwrite: bool = False, num_classes: int = 0, resumable: bool = True) -> None:
    """Before anything is written: the main rank reads every split (`check_data`: `splits` maps
    each to whether it is trained on; one warning for missing files and short videos) and claims
    `out_dir` (`claim_run_folder`); every rank raises the same ConfigError when either is
    refused. `resumable=False` for an evaluation, which never continues a folder."""
    problems = None
    if info.is_main:
        try:
            check_data(cfg.data, splits, num_classes=num_classes)
            claim_run_folder(out_dir, cfg, resume=resumable and bool(cfg.train.resume),
                             overwrite=overwrite, resumable=resumable)
        except ConfigError as err:
            problems = err.problems
    problems = dist.broadcast_object(problems)
    if problems:
        raise ConfigError(*problems)


def build_backbone(cfg: RunConfig, num_classes: int, *, load_weights: bool = True,
                   weights: str | None = None) -> nn.Module:
    """create_model from the config (+ `model.pretrained`, or `weights` when given, via
    load_pretrained; its report is logged), then the head re-drawn when `model.head_init_std` > 0.

    `load_weights=False` builds the architecture only, for weights loaded from another file.
    """
    m = cfg.model
    weights = m.pretrained if weights is None else weights
    kwargs: dict[str, Any] = dict(patch_size=m.patch_size, drop_path_rate=m.drop_path_rate,
                                  use_checkpoint=m.use_checkpoint)
    kwargs.update(m.overrides)
    model = create_model(m.name, num_classes=num_classes, num_frames=cfg.data.num_frames,
                         img_size=cfg.data.img_size, tubelet_size=m.tubelet_size, **kwargs)
    if load_weights and weights:
        load_pretrained(model, weights, pos_policy=m.pos_policy)
    if m.head_init_std > 0 and isinstance(model.head, nn.Linear):
        # AdaptFormer re-draws the head weight after loading ("following MoCo v3"; the bias keeps
        # its value): ShoufaChen/AdaptFormer:main_video.py, trunc_normal_(head.weight, std=0.01)
        with torch.no_grad():
            trunc_normal_(model.head.weight, std=m.head_init_std)
    return model


def build_model(cfg: RunConfig, num_classes: int, *, weights: str | None = None
                ) -> tuple[nn.Module, Any]:
    """Backbone + pretrained weights (`weights`, default `model.pretrained`) + the PEFT method;
    returns (model, TrainableReport).

    The method is applied before any DDP wrapping, so DDP only registers the trainable parameters.
    """
    model = build_backbone(cfg, num_classes, weights=weights)
    report = peft.apply(model, cfg.method)
    return model, report


def count_params(model: nn.Module) -> dict[str, int]:
    """{'total': every parameter, 'trainable': those with requires_grad} (shared tensors once)."""
    seen: dict[int, nn.Parameter] = {id(p): p for p in model.parameters()}
    total = sum(p.numel() for p in seen.values())
    trainable = sum(p.numel() for p in seen.values() if p.requires_grad)
    return {"total": total, "trainable": trainable}


def gflops_per_view(model: nn.Module, num_frames: int, img_size: int, device: torch.device,
                    forward: Any = None) -> float:
    """Forward GFLOPs of one view (1, 3, T, H, W): multiply-add = 2 FLOPs, attention counted
    whatever kernel runs it (`videopeft.models.flops.forward_flops`; GMACs = GFLOPs / 2).

    `forward(model, x)` replaces `model(x)` for models with another call signature.
    """
    return forward_flops(model, (3, num_frames, img_size, img_size), forward=forward,
                         device=device) / 1e9


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: CUDA max_memory_allocated on GPU, the process's peak RSS on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB

