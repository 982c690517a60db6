"""What every PEFT method's code shares: layer selection, block adoption (swap a Block keeping
its keys), the BatchNorm head, and what trains: the modules a method adds declare their tensors
(`AdapterModule.adapter_params`), methods that add nothing select backbone parameters by rule, and
`mark_trainable` turns both into requires_grad flags and the report. (The configs are in config.py.)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Protocol, runtime_checkable

import torch
import torch.nn as nn
import torch.nn.functional as F

from videopeft.errors import ConfigError
from videopeft.models.vit import Block, VideoViT

from .config import SLICE_PATTERN, Layers, PeftConfig

__all__ = ["TrainableReport", "ParamGroup", "AdoptedBlock", "BatchNormHead", "resolve_layers",
           "link", "AdapterModule", "get_adapter_params", "Rules", "mark_trainable", "refreeze",
           "add_head_bn", "BLOCK_PARTS"]

# ----------------------------------------------------------------------------- layer selection

def resolve_layers(spec: Layers, depth: int) -> list[int]:
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
                              f"{depth}-block model, got {list(spec)}", key="method.layers")
        picked = sorted({i % depth for i in spec})
    if not picked:
        raise ConfigError(f"expected a selection of at least one of the {depth} blocks, got "
                          f"{spec!r}", key="method.layers")
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
    """Replace `model.head` (a Linear; `peft.apply` checks that first) by a BatchNormHead sharing
    its weights."""
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


# ----------------------------------------------------------------------------- what trains

@runtime_checkable
class AdapterModule(Protocol):
    """A module holding tensors that a PEFT method trains; `adapter_params()` names them, relative
    to the module (torchtune's protocol of the same name, pytorch/torchtune:
    torchtune/modules/peft/_utils.py). Any module with that method qualifies."""

    def adapter_params(self) -> list[str]:
        """Names of the trainable parameters, as in `self.named_parameters()`."""
        ...


def get_adapter_params(model: nn.Module) -> dict[str, nn.Parameter]:
    """Every parameter that an AdapterModule inside `model` declares, by its name in the model.

    A declared name the module does not have is a bug in that module, reported here (torchtune's
    get_adapter_params asserts the same).
    """
    found: dict[str, nn.Parameter] = {}
    for prefix, module in model.named_modules():
        if not isinstance(module, AdapterModule):
            continue
        declared, own = set(module.adapter_params()), dict(module.named_parameters())
        missing = sorted(declared.difference(own))
        if missing:
            raise RuntimeError(f"{type(module).__name__} {prefix!r} declares parameters it does "
                               f"not have: {missing}")
        found.update({f"{prefix}.{n}" if prefix else n: p for n, p in own.items() if n in declared})
    return found


# Report group name -> which existing parameters (by name in the model) the group unfreezes.
Rules = Mapping[str, Callable[[str], bool]]


def common_rules(cfg: PeftConfig) -> dict[str, Callable[[str], bool]]:
    """The groups every method trains, as the config asks: head, and the final norm (fc_norm with
    mean pooling, norm in the cls-token variant)."""
    rules: dict[str, Callable[[str], bool]] = {}
    if cfg.train_head:
        rules["head"] = lambda name: name.startswith("head.")
    if cfg.train_fc_norm:
        rules["fc_norm"] = lambda name: name.startswith(("fc_norm.", "norm."))
    return rules


def mark_trainable(model: VideoViT, cfg: PeftConfig, rules: Rules | None = None) -> TrainableReport:
    """Freeze everything, then unfreeze exactly what the method trains, reported in groups:

    * `cfg.name`: every parameter the method's modules declare (`get_adapter_params`);
    * `rules`: the backbone parameters a method that adds nothing selects (bitfit's biases, ...);
    * head / fc_norm: the common groups, which claim their parameters first (so bitfit's
      `head.bias` is reported under head, or under bias when the head is frozen).
    Within a group, parameters are in model order.
    """
    declared = get_adapter_params(model)
    common = common_rules(cfg)
    method = {cfg.name: declared.__contains__, **(rules or {})}
    precedence = [*common.items(), *method.items()]
    params = dict(model.named_parameters())
    groups: dict[str, list[str]] = {name: [] for name in [*method, *common]}
    for name in params:
        group = next((g for g, selects in precedence if selects(name)), None)
        if group is not None:
            groups[group].append(name)
    groups = {g: names for g, names in groups.items() if names}
    refreeze(model, [n for names in groups.values() for n in names])
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
