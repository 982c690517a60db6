"""LoRA (Hu et al. 2021): a trainable rank-r update W + (alpha/r) * up @ down on chosen Linears.

`LoRALinear` replaces an nn.Linear in place and keeps that layer's `weight`/`bias` Parameters, so
the base keys stay (`blocks.i.attn.qkv.weight`); the update adds `<layer>.lora_down.weight` (r, in;
kaiming-uniform) and `<layer>.lora_up.weight` (out, r; zeros, so a fresh update is a no-op).
Dropout acts on the input of the low-rank path only. `merge()` folds the update into `weight`
(delta computed in fp32, refused if not finite) and `unmerge()` takes it out again.
Targets match module names by exact name or '.'-suffix (HF peft's rule).
"""
from __future__ import annotations

import logging
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from videopeft.errors import Problem, check
from videopeft.models.vit import VideoViT

from .base import resolve_layers
from .config import LoraConfig

__all__ = ["LoraConfig", "LoRALinear", "apply_lora", "merge_lora", "unmerge_lora"]

_log = logging.getLogger(__name__)


class LoRALinear(nn.Module):
    """A frozen linear map plus a trainable rank-r update scaled by alpha / r."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight, self.bias = base.weight, base.bias  # keys of the layer it replaces
        self.rank, self.scale = rank, alpha / rank
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.lora_down = nn.Linear(base.in_features, rank, bias=False, **factory)
        self.lora_up = nn.Linear(rank, base.out_features, bias=False, **factory)
        self.merged = False
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """kaiming-uniform down, zero up: the update starts as an exact no-op."""
        nn.init.kaiming_uniform_(self.lora_down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_up.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight, self.bias)
        if self.merged:  # the update already lives in `weight`
            return out
        return out + self.scale * self.lora_up(self.lora_down(self.lora_dropout(x)))

    def adapter_params(self) -> list[str]:
        """The low-rank factors train; the base `weight`/`bias` stay frozen (AdapterModule)."""
        return ["lora_down.weight", "lora_up.weight"]

    def delta_weight(self) -> torch.Tensor:
        """(alpha/r) * up @ down in fp32, shape (out, in)."""
        return self.scale * (self.lora_up.weight.float() @ self.lora_down.weight.float())

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into `weight` (for inference); a second call does nothing."""
        if self.merged:
            return
        delta = self.delta_weight()
        if not torch.isfinite(delta).all():
            raise ValueError("LoRA update has non-finite values; refusing to merge it")
        self.weight.copy_((self.weight.float() + delta).to(self.weight.dtype))
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the update back out of `weight`; a call on an unmerged layer does nothing."""
        if not self.merged:
            return
        self.weight.copy_((self.weight.float() - self.delta_weight()).to(self.weight.dtype))
        self.merged = False

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"rank={self.rank}, scale={self.scale:g}, merged={self.merged}")


def _linear_suffixes(model: nn.Module) -> list[str]:
    """Linear names with the `blocks.<i>.` prefix cut, as suggestions for `targets`."""
    seen: dict[str, None] = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            parts = name.split(".")
            seen[".".join(parts[2:]) if parts[0] == "blocks" else name] = None
    return list(seen)


def apply_lora(model: VideoViT, cfg: LoraConfig) -> None:
    """Wrap each nn.Linear whose name ends with a target (in the selected blocks) in a LoRALinear."""
    prefixes = None if cfg.layers is None else tuple(
        f"blocks.{i}." for i in resolve_layers(cfg.layers, len(model.blocks)))
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)
               and (prefixes is None or n.startswith(prefixes))]
    chosen: list[str] = []
    problems = []
    for target in cfg.targets:
        hits = [n for n in linears if n == target or n.endswith("." + target)]
        if not hits:
            problems.append(Problem(f"expected names of nn.Linear layers (suffix match), got "
                                    f"{target!r} which matches none; candidates: "
                                    f"{', '.join(_linear_suffixes(model))}", "method.targets"))
        chosen += [n for n in hits if n not in chosen]
    check(*problems)
    for name in chosen:
        parent, _, child = name.rpartition(".")
        owner = model.get_submodule(parent) if parent else model
        setattr(owner, child, LoRALinear(getattr(owner, child), cfg.rank, cfg.alpha, cfg.dropout))
    _log.debug("lora: wrapped %d linears", len(chosen))


def _lora_layers(model: nn.Module) -> list[LoRALinear]:
    return [m for m in model.modules() if isinstance(m, LoRALinear)]


def merge_lora(model: nn.Module) -> int:
    """Merge every LoRA update into its base weight; return how many layers were merged."""
    layers = _lora_layers(model)
    if not layers:
        raise ValueError("merge_lora: the model has no LoRALinear layers (apply method 'lora' first)")
    for layer in layers:
        layer.merge()
    return len(layers)


def unmerge_lora(model: nn.Module) -> int:
    """Undo `merge_lora`; return how many layers were unmerged."""
    layers = [m for m in _lora_layers(model) if m.merged]
    for layer in layers:
        layer.unmerge()
    return len(layers)


def has_merged_lora(model: nn.Module) -> bool:
    """True when some LoRA update is folded into its base weight."""
    return any(m.merged for m in _lora_layers(model))
