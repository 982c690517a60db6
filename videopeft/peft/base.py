"""What every PEFT method shares: the common config, config checks, layer selection, block
adoption (swap a Block keeping its keys), the BatchNorm head and the trainable-parameter report.

Kept apart from `__init__` so the method modules can import it without a cycle.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from videopeft.config import ConfigError
from videopeft.models.vit import Block, VideoViT

__all__ = ["PeftConfig", "Layers", "TrainableReport", "ParamGroup", "AdoptedBlock", "BatchNormHead",
           "check", "positive_int", "fraction", "one_of", "layers_problem", "resolve_layers",
           "link", "mark_trainable", "refreeze", "add_head_bn", "BLOCK_PARTS"]

_log = logging.getLogger(__name__)

# A layer selection: None (every block), a list of block indices (negative counts from the end),
# or a slice string "start:stop" such as "6:" (the last six blocks of a 12-block model) or ":-2".
Layers = list[int] | str | None

_SLICE = re.compile(r"^\s*(-?\d+)?\s*:\s*(-?\d+)?\s*$")


# ----------------------------------------------------------------------------- config checks

def check(*problems: str | None) -> None:
    """Raise one ConfigError with a line per problem; None entries mean "fine"."""
    found = [p for p in problems if p]
    if found:
        raise ConfigError("\n".join(found))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(key: str, value: Any) -> str | None:
    """'method.<key>: expected a positive int, got ...' unless value is an int >= 1."""
    if _is_int(value) and value >= 1:
        return None
    return f"method.{key}: expected a positive int, got {value!r}"


def fraction(key: str, value: Any) -> str | None:
    """A dropout probability: a number in [0, 1)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value < 1.0:
        return None
    return f"method.{key}: expected a float in [0, 1), got {value!r}"


def one_of(key: str, value: Any, choices: Sequence[Any]) -> str | None:
    """A value from a fixed list."""
    if value in choices:
        return None
    return f"method.{key}: expected one of {list(choices)}, got {value!r}"


def layers_problem(key: str, value: Any) -> str | None:
    """Syntax of a layer selection (indices are checked against the depth at apply time)."""
    if value is None:
        return None
    if isinstance(value, str) and _SLICE.match(value):
        return None
    if isinstance(value, (list, tuple)) and value and all(_is_int(v) for v in value):
        return None
    return (f"method.{key}: expected null (all blocks), a non-empty list of block indices or a "
            f"'start:stop' slice, got {value!r}")


def resolve_layers(spec: Layers, depth: int, key: str = "layers") -> list[int]:
    """Block indices (sorted, unique, non-negative) selected by `spec` in a `depth`-block model."""
    if spec is None:
        return list(range(depth))
    if isinstance(spec, str):
        start, stop = _SLICE.match(spec).groups()
        picked = list(range(depth))[slice(int(start) if start else None, int(stop) if stop else None)]
    else:
        bad = [i for i in spec if not -depth <= i < depth]
        if bad:
            raise ConfigError(f"method.{key}: expected block indices in [-{depth}, {depth}) for this "
                              f"{depth}-block model, got {list(spec)}")
        picked = sorted({i % depth for i in spec})
    if not picked:
        raise ConfigError(f"method.{key}: expected a selection of at least one of the {depth} "
                          f"blocks, got {spec!r}")
    return picked


# ----------------------------------------------------------------------------- common config

@dataclass(kw_only=True)
class PeftConfig:
    """The part of every method's config that says what trains besides the method's own tensors.

    train_head: the classifier (`head`) trains; true in every method by default.
    train_fc_norm: the final norm before the head (`fc_norm`, or `norm` in the cls-token variant)
        trains, as in AdaptFormer's main_video.py.
    head_bn: put AdaptFormer's BatchNorm1d(affine=False, eps=1e-6) in front of the head (no
        parameters, running statistics only; saved in adapter files).
    """

    name: ClassVar[str] = ""
    train_head: bool = True
    train_fc_norm: bool = True
    head_bn: bool = False

    def __post_init__(self) -> None:
        if isinstance(getattr(self, "layers", None), (range, tuple)):
            self.layers = list(self.layers)  # type: ignore[attr-defined]
        flags = [None if isinstance(getattr(self, k), bool) else
                 f"method.{k}: expected true or false, got {getattr(self, k)!r}"
                 for k in ("train_head", "train_fc_norm", "head_bn")]
        check(*flags, *self.problems())

    def problems(self) -> list[str | None]:
        """The method's own range checks, one message (or None) per key; all reported together."""
        return []

    def to_dict(self) -> dict[str, Any]:
        """The YAML/JSON form, `{"name": ..., key: value}`, that `method_config` reads back."""
        def plain(v: Any) -> Any:
            return [plain(x) for x in v] if isinstance(v, (list, tuple)) else v
        return {"name": self.name, **{f.name: plain(getattr(self, f.name))
                                      for f in dataclasses.fields(self)}}


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
