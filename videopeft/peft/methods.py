"""The method registry and `apply`: change a built VideoViT so it trains one PEFT method."""
from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

import torch.nn as nn

from videopeft.config import method_config
from videopeft.errors import ConfigError
from videopeft.models.vit import VideoViT

from .adapter import apply_adapter
from .adaptmlp import apply_adaptmlp
from .base import Rules, TrainableReport, add_head_bn, mark_trainable
from .config import METHOD_CONFIGS, PeftConfig
from .lora import apply_lora
from .prefix import apply_prefix
from .simple import select_bitfit, select_full, select_linear, select_partial
from .vpt import apply_vpt

__all__ = ["METHODS", "apply"]

_log = logging.getLogger(__name__)

# Checks the method's options against the model, then either adds the method's modules (which
# declare what trains: `adapter_params`) and returns None, or returns the rules that select the
# existing parameters a method that adds nothing trains.
MethodFn = Callable[[VideoViT, Any], Rules | None]

# method name -> (config class, its MethodFn)
METHODS: dict[str, tuple[type[PeftConfig], MethodFn]] = {name: (METHOD_CONFIGS[name], fn) for name, fn in {
    "adaptmlp": apply_adaptmlp,
    "vpt": apply_vpt,
    "prefix": apply_prefix,
    "adapter": apply_adapter,
    "lora": apply_lora,
    "bitfit": select_bitfit,
    "partial": select_partial,
    "linear": select_linear,
    "full": select_full,
}.items()}
assert set(METHODS) == set(METHOD_CONFIGS), "every method config needs an apply function"


def apply(model: VideoViT, method: Mapping[str, Any] | PeftConfig) -> TrainableReport:
    """Freeze `model`, add/unfreeze exactly what `method` trains; return the TrainableReport.

    The config and report are kept as `model.peft_config` and `model.peft_report` (adapter files
    and `load_adapter` read them). A model takes one method, once: build a fresh one to change it.
    """
    cfg = method_config(method)
    applied = getattr(model, "peft_config", None)
    if applied is not None:
        raise ValueError(f"method {applied.name!r} is already applied to this model; build a fresh "
                         f"model to apply {cfg.name!r}")
    if cfg.head_bn and not isinstance(model.head, nn.Linear):
        raise ConfigError(f"expected a model with a linear head, got {type(model.head).__name__} "
                          f"(num_classes=0?)", key="method.head_bn")
    rules = METHODS[cfg.name][1](model, cfg)  # checks its options before changing anything
    if cfg.head_bn:
        add_head_bn(model)
    model.train(model.training)  # new modules (dropout, BN) follow the model's train/eval mode
    report = mark_trainable(model, cfg, rules)
    model.peft_config, model.peft_report = cfg, report
    _log.info("applied %s\n%s", cfg.name, report)
    return report
