"""What every PEFT method's code shares: layer selection, block adoption (swap a Block keeping
its keys), the BatchNorm head and the trainable-parameter report. (The configs are in config.py.)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from videopeft.errors import ConfigError
from videopeft.models.vit import Block, VideoViT

from .config import SLICE_PATTERN, Layers, PeftConfig

__all__ = ["TrainableReport", "ParamGroup", "AdoptedBlock", "BatchNormHead", "resolve_layers",
           "link", "mark_trainable", "refreeze", "add_head_bn", "BLOCK_PARTS"]

# ----------------------------------------------------------------------------- layer selection

def resolve_layers(spec: Layers, depth: int, key: str = "layers") -> list[int]:
    """Block indices (sorted, unique, non-negative) selected by `spec` in a `depth`-block model."""
    if spec is None:
        return list(range(depth))
    if isinstance(spec, str):
        start, stop = SLICE_PATTERN.match(spec).groups()
        picked = list(range(depth))[slice(int(start) if start else None, int(stop) if stop else None)]
    else:
        bad = [i for i in spec if not -depth <= i < depth]
        if bad:
            raise ConfigError(f"expected block indices in [-{depth}, {depth}) for this "
                              f"{depth}-block model, got {list(spec)}", key=f"method.{key}")
        picked = sorted({i % depth for i in spec})
    if not picked:
        raise ConfigError(f"expected a selection of at least one of the {depth} blocks, got "
                          f"{spec!r}", key=f"method.{key}")
    return picked


# ----------------------------------------------------------------------------- module helpers

BLOCK_PARTS = ("norm1", "attn", "ls1", "drop_path1", "norm2", "mlp", "ls2", "drop_path2")


class AdoptedBlock(Block):
    """A Block that re-uses another Block's submodules (the same objects, so the same state-dict keys).

    Methods subclass it to change the forward without adding flags to the base Block; the
    inherited `Block.forward` is the plain pre-norm forward.
    """

    def __init__(self, block: Block) -> None:
        nn.Module.__init__(self)  # Block.__init__ would build fresh weights; adopt the old ones
        if type(block) is not Block:
            raise TypeError(f"expected a plain videopeft Block, got {type(block).__name__} "
                            "(a PEFT method is already applied to this block)")
        for part in BLOCK_PARTS:
            setattr(self, part, getattr(block, part))


def link(module: nn.Module, name: str, target: nn.Module) -> None:
    """Give `module` an attribute pointing at `target` without registering it as a child.

    Used where several modules read one owner's parameters (shared prompts, a prefix encoder):
    the owner is registered once on the model, so its tensors are saved and counted once.
    """
    object.__setattr__(module, name, target)


class BatchNormHead(nn.Module):
    """AdaptFormer's head: BatchNorm1d(affine=False, eps=1e-6), then the linear head.

    Holds the linear head's own `weight`/`bias` Parameters, so the keys stay `head.weight` and
    `head.bias`; the BN adds only the buffers `head.bn.running_mean/running_var/num_batches_tracked`.
    """

    def __init__(self, head: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = head.in_features, head.out_features
        self.weight, self.bias = head.weight, head.bias
        self.bn = nn.BatchNorm1d(head.in_features, affine=False, eps=1e-6,
                                 device=head.weight.device, dtype=head.weight.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.bn(x), self.weight, self.bias)


def add_head_bn(model: VideoViT) -> None:
    """Replace `model.head` (a Linear) by a BatchNormHead sharing its weights."""
    if not isinstance(model.head, nn.Linear):
        raise ConfigError(f"method.head_bn: expected a model with a linear head, got "
                          f"{type(model.head).__name__} (num_classes=0?)")
    model.head = BatchNormHead(model.head)


# ----------------------------------------------------------------------------- report

@dataclass(frozen=True)
class ParamGroup:
    """One named group of trainable tensors."""

    name: str
    params: tuple[str, ...]
    count: int


@dataclass(frozen=True)
class TrainableReport:
    """What a method trains: named groups of parameter names, with counts; prints as a table."""

    method: str
    groups: tuple[ParamGroup, ...]
    num_total: int

    @property
    def trainable(self) -> list[str]:
        """Every trainable parameter name, group by group."""
        return [n for g in self.groups for n in g.params]

    @property
    def num_trainable(self) -> int:
        return sum(g.count for g in self.groups)

    def group(self, name: str) -> ParamGroup:
        """The group called `name` (KeyError naming the groups otherwise)."""
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(f"no group {name!r}; groups: {[g.name for g in self.groups]}")

    def __str__(self) -> str:
        total = max(self.num_total, 1)
        rows = [(g.name, f"{len(g.params)}", f"{g.count:,}", f"{100 * g.count / total:.3f}%")
                for g in self.groups]
        rows.append(("trainable", f"{len(self.trainable)}", f"{self.num_trainable:,}",
                     f"{100 * self.num_trainable / total:.3f}%"))
        rows.append(("total", "", f"{self.num_total:,}", "100%"))
        head = ("group", "tensors", "params", "share")
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]

        def fmt(r: tuple[str, ...]) -> str:
            return "  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])])
        rule = "-" * len(fmt(head))
        return "\n".join([f"trainable parameters (method: {self.method})", fmt(head), rule,
                          *map(fmt, rows[:-2]), rule, *map(fmt, rows[-2:])])


def _module_params(model: nn.Module, attr: str) -> list[str]:
    module = getattr(model, attr, None)
    if module is None:
        return []
    return [f"{attr}.{n}" for n, _ in module.named_parameters()]


def common_groups(model: VideoViT, cfg: PeftConfig) -> dict[str, list[str]]:
    """The groups every method trains, as the config asks: head, and the final norm."""
    groups: dict[str, list[str]] = {}
    if cfg.train_head:
        groups["head"] = _module_params(model, "head")
    if cfg.train_fc_norm:  # fc_norm with mean pooling; norm in the cls-token variant
        groups["fc_norm"] = _module_params(model, "fc_norm") + _module_params(model, "norm")
    return {k: v for k, v in groups.items() if v}


def mark_trainable(model: VideoViT, cfg: PeftConfig,
                   method_groups: Mapping[str, Iterable[str]]) -> TrainableReport:
    """Freeze everything, then unfreeze exactly the method's groups plus the common ones.

    Every declared name must be a parameter of the model (like torchtune's get_adapter_params):
    a method that declares a name it did not create is a bug, reported here.
    """
    params = dict(model.named_parameters())
    common = common_groups(model, cfg)
    claimed = {n for names in common.values() for n in names}
    groups: dict[str, list[str]] = {}
    for gname, names in method_groups.items():
        kept = [n for n in names if n not in claimed]
        if kept:
            groups[gname] = kept
    groups.update(common)
    seen: set[str] = set()
    for gname, names in groups.items():
        missing = [n for n in names if n not in params]
        if missing:
            raise RuntimeError(f"method {cfg.name!r} declared parameters the model lacks: {missing[:5]}")
        dup = seen.intersection(names)
        if dup:
            raise RuntimeError(f"parameters {sorted(dup)[:5]} are in two groups")
        seen.update(names)
    model.requires_grad_(False)
    for name in seen:
        params[name].requires_grad_(True)
    return TrainableReport(
        method=cfg.name,
        groups=tuple(ParamGroup(g, tuple(ns), sum(params[n].numel() for n in ns))
                     for g, ns in groups.items()),
        num_total=sum(p.numel() for p in params.values()))


def refreeze(model: nn.Module, trainable: Iterable[str]) -> None:
    """Set requires_grad to exactly `trainable` (by name)."""
    model.requires_grad_(False)
    params = dict(model.named_parameters())
    for name in trainable:
        params[name].requires_grad_(True)
