"""Parameter-efficient fine-tuning of a VideoViT behind one call: `apply(model, method)`.

`method` is a mapping (the YAML `method:` section, `{"name": "lora", "rank": 8}`) or a method
dataclass. `apply` freezes the whole model, adds the method's modules, unfreezes exactly what the
method trains plus the common set (head and fc_norm unless the config says otherwise) and returns
a TrainableReport, which prints as a table. Base state-dict keys never change, so backbone
weights load before or after `apply`.

    name      config          trains (besides head + fc_norm)
    adaptmlp  AdaptMLPConfig  blocks.i.adaptmlp.*            (AdaptFormer)
    vpt       VPTConfig       vpt.prompts                    (visual prompt tuning)
    prefix    PrefixConfig    prefix.*                       (prefix tuning via attn.kv_prefix)
    adapter   AdapterConfig   blocks.i.adapter_{attn,mlp}.*  (Houlsby adapters)
    lora      LoraConfig      <linear>.lora_{down,up}.weight (LoRA)
    bitfit    BitFitConfig    every bias
    partial   PartialConfig   the last k blocks
    linear    LinearConfig    nothing more
    full      FullConfig      everything
"""
from __future__ import annotations

import dataclasses
import logging
import types
import typing
from typing import Any, Callable, Mapping

import torch.nn as nn

from videopeft.config import ConfigError
from videopeft.models.vit import VideoViT

from .adapter import AdapterConfig, apply_adapter
from .adaptmlp import AdaptMLPConfig, apply_adaptmlp
from .base import PeftConfig, ParamGroup, TrainableReport, add_head_bn, check, mark_trainable
from .lora import LoraConfig, LoRALinear, apply_lora, merge_lora, unmerge_lora
from .prefix import PrefixConfig, apply_prefix, fold_prefix
from .simple import (BitFitConfig, FullConfig, LinearConfig, PartialConfig, apply_bitfit, apply_full,
                     apply_linear, apply_partial)
from .vpt import VPTConfig, apply_vpt, precompute_prompt_kv
from .adapter_io import (AdapterError, backbone_fingerprint, load_adapter, read_adapter_metadata,
                         save_adapter)

__all__ = [
    "apply", "method_config", "METHODS", "TrainableReport", "ParamGroup", "PeftConfig",
    "AdaptMLPConfig", "VPTConfig", "PrefixConfig", "AdapterConfig", "LoraConfig", "BitFitConfig",
    "PartialConfig", "LinearConfig", "FullConfig", "LoRALinear", "merge_lora", "unmerge_lora",
    "precompute_prompt_kv", "fold_prefix", "save_adapter", "load_adapter", "read_adapter_metadata",
    "backbone_fingerprint", "AdapterError",
]

_log = logging.getLogger(__name__)

ApplyFn = Callable[[VideoViT, Any], dict[str, list[str]]]

# method name -> (config class, function that changes the model and returns its trainable groups)
METHODS: dict[str, tuple[type[PeftConfig], ApplyFn]] = {
    "adaptmlp": (AdaptMLPConfig, apply_adaptmlp),
    "vpt": (VPTConfig, apply_vpt),
    "prefix": (PrefixConfig, apply_prefix),
    "adapter": (AdapterConfig, apply_adapter),
    "lora": (LoraConfig, apply_lora),
    "bitfit": (BitFitConfig, apply_bitfit),
    "partial": (PartialConfig, apply_partial),
    "linear": (LinearConfig, apply_linear),
    "full": (FullConfig, apply_full),
}


def _describe(tp: Any) -> str:
    if tp is type(None):
        return "null"
    if tp is bool:
        return "true or false"
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        return f"a list of {_describe(typing.get_args(tp)[0])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any) -> Any:
    """`value` as type `tp` (YAML scalars and lists); TypeError(what was expected) otherwise."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(tp):
            if arm is type(None):
                if value is None:
                    return None
                continue
            try:
                return _coerce(value, arm)
            except TypeError:
                pass
        raise TypeError(_describe(tp))
    if origin in (tuple, list):
        if isinstance(value, str) and origin is tuple:  # targets: attn.qkv  ->  ("attn.qkv",)
            value = [value]
        if isinstance(value, range):
            value = list(value)
        if not isinstance(value, (list, tuple)):
            raise TypeError(_describe(tp))
        items = [_coerce(v, typing.get_args(tp)[0]) for v in value]
        return tuple(items) if origin is tuple else items
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = {bool: isinstance(value, bool), int: numeric and isinstance(value, int),
          float: numeric, str: isinstance(value, str)}.get(tp, True)
    if not ok:
        raise TypeError(_describe(tp))
    return float(value) if tp is float else value


def method_config(method: Mapping[str, Any] | PeftConfig) -> PeftConfig:
    """The method dataclass for a `method:` mapping (dispatch on `name`), checked.

    Raises ConfigError with one line per problem, each `method.<key>: expected ..., got ...`:
    unknown name, unknown key, wrong type, out-of-range value.
    """
    if isinstance(method, PeftConfig):
        if METHODS.get(method.name, (None,))[0] is not type(method):
            raise ConfigError(f"method.name: expected one of {list(METHODS)}, got {method.name!r}")
        return method
    if not isinstance(method, Mapping):
        raise ConfigError(f"method.name: expected a mapping with a 'name', got {method!r}")
    name = method.get("name")
    if name not in METHODS:
        raise ConfigError(f"method.name: expected one of {list(METHODS)}, got {name!r}")
    cls = METHODS[name][0]
    hints = typing.get_type_hints(cls)
    common = [f.name for f in dataclasses.fields(PeftConfig)]
    fields = [f.name for f in dataclasses.fields(cls) if f.name not in common] + common
    kwargs: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in method.items():
        if key == "name":
            continue
        if key not in fields:
            problems.append(f"method.{key}: expected a key of method {name!r} "
                            f"({', '.join(fields)}), got an unknown key")
            continue
        try:
            kwargs[key] = _coerce(value, hints[key])
        except TypeError as err:
            problems.append(f"method.{key}: expected {err}, got {value!r}")
    check(*problems)
    return cls(**kwargs)


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
        raise ConfigError(f"method.head_bn: expected a model with a linear head, got "
                          f"{type(model.head).__name__} (num_classes=0?)")
    groups = METHODS[cfg.name][1](model, cfg)  # checks its options before changing anything
    if cfg.head_bn:
        add_head_bn(model)
    model.train(model.training)  # new modules (dropout, BN) follow the model's train/eval mode
    report = mark_trainable(model, cfg, groups)
    model.peft_config, model.peft_report = cfg, report
    _log.info("applied %s\n%s", cfg.name, report)
    return report
