"""The optimizer and the learning-rate schedule of a run, built the VideoMAE way.

Parameter groups follow MCG-NJU/VideoMAE:optim_factory.py (`get_parameter_groups`,
`get_num_layer_for_vit`): only trainable parameters, no weight decay for biases, 1-D tensors
(norms) and the parameters named in the models' `no_weight_decay()` (`train.no_weight_decay`:
pos_embed, cls_token, and the pre-training model's mask_token, modeling_pretrain.py; matched by
exact name, as there), and with layer decay an lr scale of ``layer_decay ** (L + 1 - layer_id)``,
where layer_id is 0 for the embeddings, i + 1 for ``blocks.i`` and L + 1 for everything after the
blocks (fc_norm, head). timm optimizers and schedulers multiply each group's lr by its
``lr_scale``.

The schedule is a linear warmup from ``train.warmup_lr`` then a half cosine to min_lr, per
optimizer step: ShoufaChen/AdaptFormer:util/lr_sched.py, and MCG-NJU/VideoMAE:utils.py
`cosine_scheduler`. VideoMAE's scripts scale a `--warmup_lr` but never pass it to the scheduler
(run_class_finetuning.py, run_mae_pretraining.py), so both papers' warmups start at 0.
"""
from __future__ import annotations

from typing import Any, Collection, Mapping, NamedTuple

import torch
import torch.nn as nn
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler

from videopeft.config import RunConfig, TrainConfig
from videopeft.constants import NO_WEIGHT_DECAY
from videopeft.errors import ConfigError

__all__ = ["layer_id", "param_groups", "accum_steps_for", "ScaledLrs", "scaled_lrs",
           "build_optimizer", "build_scheduler"]

_EMBEDDINGS = ("patch_embed", "pos_embed", "cls_token")


def layer_id(name: str, depth: int) -> int:
    """VideoMAE's layer index: 0 = embeddings, i + 1 = blocks.i, depth + 1 = everything after."""
    if name.startswith(_EMBEDDINGS):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return depth + 1


def _decays(name: str, param: torch.Tensor, skip: Collection[str]) -> bool:
    """Weight decay applies to matrices, not to biases, 1-D tensors or the `skip` names."""
    return not (param.ndim <= 1 or name.endswith(".bias") or name in skip)


def param_groups(model: nn.Module, weight_decay: float, layer_decay: float = 1.0,
                 no_weight_decay: Collection[str] = NO_WEIGHT_DECAY) -> list[dict]:
    """The trainable parameters grouped by (layer, decays): each group has ``params``, ``names``,
    ``weight_decay`` (0 for the no-decay set) and ``lr_scale`` (1 without layer decay)."""
    depth = len(getattr(model, "blocks", []))
    groups: dict[tuple[int, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        lid = layer_id(name, depth) if layer_decay != 1.0 else depth + 1
        decays = _decays(name, p, no_weight_decay)
        group = groups.setdefault((lid, decays), {
            "params": [], "names": [], "weight_decay": weight_decay if decays else 0.0,
            "lr_scale": layer_decay ** (depth + 1 - lid)})
        group["params"].append(p)
        group["names"].append(name)
    return [groups[k] for k in sorted(groups)]


def accum_steps_for(train: TrainConfig, world_size: int) -> int:
    """Micro-batches per optimizer step: train.accum_steps, or, with train.global_batch, the
    number that makes world_size * batch_size * accum_steps equal it (ConfigError if none does).
    The papers' lrs hold at their global batch (AdaptFormer 1024 = 16 x 64 GPUs)."""
    if train.global_batch <= 0:
        return train.accum_steps
    per_pass = world_size * train.batch_size
    if train.global_batch % per_pass:
        raise ConfigError(f"expected a multiple of world size x batch_size = {world_size} x "
                          f"{train.batch_size} = {per_pass}, got {train.global_batch}",
                          key="train.global_batch")
    return train.global_batch // per_pass


class ScaledLrs(NamedTuple):
    """The run's learning rates: peak, floor of the cosine, start of the warmup."""

    lr: float
    min_lr: float
    warmup_lr: float


def scaled_lrs(cfg: RunConfig, global_batch: int) -> ScaledLrs:
    """train.lr, min_lr and warmup_lr as given, or, when train.lr is 0, blr * global_batch / 256
    with min_lr and warmup_lr scaled alike (MCG-NJU/VideoMAE:run_class_finetuning.py)."""
    t = cfg.train
    if t.lr > 0:
        return ScaledLrs(t.lr, t.min_lr, t.warmup_lr)
    scale = global_batch / 256
    return ScaledLrs(t.blr * scale, t.min_lr * scale, t.warmup_lr * scale)


def build_optimizer(model: nn.Module, cfg: RunConfig, lr: float,
                    opt_kwargs: Mapping[str, Any] | None = None) -> torch.optim.Optimizer:
    """timm `create_optimizer_v2` (`train.opt`) over `param_groups`; `opt_kwargs` are the task's
    extra optimizer arguments (e.g. AdamW betas). ConfigError when nothing is trainable."""
    t = cfg.train
    groups = param_groups(model, t.weight_decay, t.layer_decay, t.no_weight_decay)
    if not groups:
        raise ConfigError(f"method {cfg.method.name!r} left no trainable parameters",
                          key="method.name")
    for group in groups:
        group.pop("names")
    # timm passes momentum only to the optimizers that take it (sgd, momentum, lars, ...)
    return create_optimizer_v2(groups, opt=t.opt, lr=lr, weight_decay=t.weight_decay,
                               momentum=t.momentum, **dict(opt_kwargs or {}))


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: RunConfig, steps_per_epoch: int,
                    min_lr: float, warmup_lr: float = 0.0) -> CosineLRScheduler:
    """timm CosineLRScheduler in optimizer steps: linear warmup from `warmup_lr`, then a half
    cosine to `min_lr`."""
    total = max(1, cfg.train.epochs * steps_per_epoch)
    warmup = min(int(round(cfg.train.warmup_epochs * steps_per_epoch)), total - 1)
    return CosineLRScheduler(optimizer, t_initial=max(1, total - warmup), lr_min=min_lr,
                             warmup_t=warmup, warmup_lr_init=warmup_lr, warmup_prefix=True,
                             t_in_epochs=False)
