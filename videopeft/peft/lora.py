"""LoRA (Hu et al. 2021): a trainable rank-r update W + (alpha/r) * up @ down on chosen Linears.

`LoRALinear` replaces an nn.Linear in place and keeps that layer's `weight`/`bias` Parameters, so
the base keys stay (`blocks.i.attn.qkv.weight`); the update adds `<layer>.lora_down.weight` (r, in;
kaiming-uniform) and `<layer>.lora_up.weight` (out, r; zeros, so a fresh update is a no-op).
On a fused `attn.qkv` the update can instead cover some of its parts (targets `attn.q`,
`attn.v`, ...; rows ordered q, k, v): each part p gets its own `<layer>.lora_down_<p>.weight`
(r, in) and `<layer>.lora_up_<p>.weight` (out/3, r), and the other parts' rows get no update, as
the LoRA paper's W_q, W_v setting (microsoft/LoRA:loralib/layers.py `MergedLinear`).
Dropout acts on the input of the low-rank path only (once, shared by the parts, as loralib).
`merge()` folds the update into `weight` (delta computed in fp32, refused if not finite) and
`unmerge()` takes it out again. Targets match module names by exact name or '.'-suffix (HF peft's
rule).
"""
from __future__ import annotations

import logging
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from videopeft.constants import QKV_PARTS
from videopeft.errors import Problem, check
from videopeft.models.vit import VideoViT

from .base import resolve_layers
from .config import LoraConfig, qkv_part

__all__ = ["LoraConfig", "LoRALinear", "apply_lora", "merge_lora", "unmerge_lora"]

_log = logging.getLogger(__name__)


class LoRALinear(nn.Module):
    """A frozen linear map plus a trainable rank-r update scaled by alpha / r: on the whole
    output, or one update per named part (`parts`, a subset of q, k, v) of a fused qkv."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0,
                 parts: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight, self.bias = base.weight, base.bias  # keys of the layer it replaces
        self.rank, self.scale = rank, alpha / rank
        self.parts = tuple(p for p in QKV_PARTS if p in parts)
        if len(self.parts) != len(parts) or (parts and base.out_features % len(QKV_PARTS)):
            raise ValueError(f"parts must be some of {list(QKV_PARTS)} of a Linear whose "
                             f"out_features divides by 3, got {list(parts)} and "
                             f"{base.out_features}")
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        if not self.parts:
            self.lora_down = nn.Linear(base.in_features, rank, bias=False, **factory)
            self.lora_up = nn.Linear(rank, base.out_features, bias=False, **factory)
        width = base.out_features // len(QKV_PARTS)
        for part in self.parts:
            setattr(self, f"lora_down_{part}", nn.Linear(base.in_features, rank, bias=False,
                                                         **factory))
            setattr(self, f"lora_up_{part}", nn.Linear(rank, width, bias=False, **factory))
        self.merged = False
        self.reset_parameters()

    def factors(self) -> list[tuple[str, nn.Linear, nn.Linear]]:
        """(suffix, down, up) per update: ("", ...) for the whole output, ("_q", ...) per part."""
        if not self.parts:
            return [("", self.lora_down, self.lora_up)]
        return [(f"_{p}", getattr(self, f"lora_down_{p}"), getattr(self, f"lora_up_{p}"))
                for p in self.parts]

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """kaiming-uniform down, zero up: the update starts as an exact no-op."""
        for _, down, up in self.factors():
            nn.init.kaiming_uniform_(down.weight, a=math.sqrt(5))
            nn.init.zeros_(up.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight, self.bias)
        if self.merged:  # the update already lives in `weight`
            return out
        h = self.lora_dropout(x)
        if not self.parts:
            return out + self.scale * self.lora_up(self.lora_down(h))
        width = self.out_features // len(QKV_PARTS)
        pieces = [getattr(self, f"lora_up_{p}")(getattr(self, f"lora_down_{p}")(h))
                  if p in self.parts else out.new_zeros(*out.shape[:-1], width)
                  for p in QKV_PARTS]
        return out + self.scale * torch.cat(pieces, dim=-1)

    def adapter_params(self) -> list[str]:
        """The low-rank factors train; the base `weight`/`bias` stay frozen (AdapterModule)."""
        return [f"lora_{kind}{suffix}.weight" for suffix, _, _ in self.factors()
                for kind in ("down", "up")]

    def delta_weight(self) -> torch.Tensor:
        """(alpha/r) * up @ down in fp32, shape (out, in); zero rows for parts without update."""
        if not self.parts:
            return self.scale * (self.lora_up.weight.float() @ self.lora_down.weight.float())
        width = self.out_features // len(QKV_PARTS)
        delta = self.weight.new_zeros(self.out_features, self.in_features, dtype=torch.float32)
        for i, part in enumerate(QKV_PARTS):
            if part in self.parts:
                up = getattr(self, f"lora_up_{part}").weight.float()
                down = getattr(self, f"lora_down_{part}").weight.float()
                delta[i * width:(i + 1) * width] = self.scale * (up @ down)
        return delta

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
        parts = f", parts={','.join(self.parts)}" if self.parts else ""
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"rank={self.rank}, scale={self.scale:g}{parts}, merged={self.merged}")


def _linear_suffixes(model: nn.Module) -> list[str]:
    """Linear names with the `blocks.<i>.` prefix cut, as suggestions for `targets`."""
    seen: dict[str, None] = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            parts = name.split(".")
            seen[".".join(parts[2:]) if parts[0] == "blocks" else name] = None
    return list(seen)


def apply_lora(model: VideoViT, cfg: LoraConfig) -> None:
    """Wrap each nn.Linear whose name ends with a target (in the selected blocks) in a LoRALinear;
    a target naming a part of a fused qkv (`attn.q`) puts the update on that part only."""
    prefixes = None if cfg.layers is None else tuple(
        f"blocks.{i}." for i in resolve_layers(cfg.layers, len(model.blocks)))
    linears = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)
               and (prefixes is None or n.startswith(prefixes))}
    chosen: dict[str, set[str] | None] = {}  # layer name -> its parts, None = the whole output
    problems = []
    for target in cfg.targets:
        whole, part = qkv_part(target) or (target, None)
        hits = [n for n in linears if n == whole or n.endswith("." + whole)]
        if not hits:
            kind = f"a fused {whole} for part {part!r}" if part else "nn.Linear layers"
            problems.append(Problem(f"expected names of {kind} (suffix match), got {target!r} "
                                    f"which matches none; candidates: "
                                    f"{', '.join(_linear_suffixes(model))}", "method.targets"))
        for name in hits:
            if name in chosen and (part is None) != (chosen[name] is None):
                problems.append(Problem(f"expected either {name} or its parts as targets, got "
                                        f"both (through {target!r})", "method.targets"))
            elif part is None:
                chosen[name] = None
            else:
                chosen.setdefault(name, set()).add(part)  # type: ignore[union-attr]
    check(*problems)
    for name, parts in chosen.items():
        parent, _, child = name.rpartition(".")
        owner = model.get_submodule(parent) if parent else model
        setattr(owner, child, LoRALinear(getattr(owner, child), cfg.rank, cfg.alpha, cfg.dropout,
                                         parts=tuple(parts or ())))
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
