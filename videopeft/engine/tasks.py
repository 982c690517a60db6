"""What a training run optimises: a `Task` builds the model, gives the loss of a micro-batch and
writes the run's deliverable. The recipe (`train.py`) is the same loop for every task.

`ClassificationTask` fine-tunes a VideoViT classifier with a PEFT method: timm Mixup/CutMix with
a soft-target loss, or label smoothing, or plain cross-entropy; the deliverable is the adapter file.
The masked-autoencoder task lives in `pretrain.py`.
"""
from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

import torch
import torch.nn as nn
from timm.data import Mixup
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

from videopeft import peft
from videopeft.config import RunConfig
from videopeft.errors import ConfigError

from .builder import build_model, resolve_num_classes

__all__ = ["Task", "ClassificationTask", "adapter_extra", "build_criterion", "mix_clips",
           "ADAPTER", "BEST_ADAPTER"]

ADAPTER = "adapter.safetensors"  # the final state of a fine-tuning run
BEST_ADAPTER = "adapter_best.safetensors"  # the state at the best validation score


class Task:
    """What a training run optimises. The recipe calls `build`, then `loss` every micro-step, and
    `export` at each new best validation score (`best=True`) and at the end."""

    name = "task"
    validates = False  # run validation and the final multi-view evaluation
    opt_kwargs: Mapping[str, Any] = MappingProxyType({})  # extra optimizer arguments

    def build(self, cfg: RunConfig, class_names: list[str]) -> nn.Module:
        """The model to train, with exactly the parameters to train marked requires_grad."""
        raise NotImplementedError

    def loss(self, model: nn.Module, clips: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The scalar loss of one micro-batch (model may be DDP-wrapped)."""
        raise NotImplementedError

    def flops_forward(self, model: nn.Module, x: torch.Tensor) -> Any:
        """One forward pass on one view, for FLOP counting."""
        return model(x)

    def export(self, model: nn.Module, out_dir: Path, cfg: RunConfig, class_names: list[str], *,
               best: bool = False) -> Path | None:
        """Write the deliverable of the run (main rank only): the final state, or with `best`
        the state at the best validation score; returns its path."""
        return None


class ClassificationTask(Task):
    """Fine-tuning a VideoViT classifier with a PEFT method (`cfg.method`)."""

    name = "classification"
    validates = True

    def __init__(self) -> None:
        self.mixup: Callable | None = None
        self.criterion: nn.Module = nn.CrossEntropyLoss()

    def build(self, cfg: RunConfig, class_names: list[str]) -> nn.Module:
        num_classes = resolve_num_classes(cfg, class_names)
        model, _ = build_model(cfg, num_classes)  # peft.apply logs the trainable report
        self.mixup, self.criterion = build_criterion(cfg, num_classes)
        return model

    def loss(self, model: nn.Module, clips: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.mixup is not None:
            clips, labels = mix_clips(self.mixup, clips, labels)
        return self.criterion(model(clips), labels)

    def export(self, model: nn.Module, out_dir: Path, cfg: RunConfig, class_names: list[str], *,
               best: bool = False) -> Path:
        path = out_dir / (BEST_ADAPTER if best else ADAPTER)
        peft.save_adapter(model, path, extra=adapter_extra(cfg, class_names))
        return path


def adapter_extra(cfg: RunConfig, class_names: list[str]) -> dict:
    """Adapter metadata that makes the file usable alone: classes, sampling, model, frames."""
    d = cfg.data
    return {
        "class_names": list(class_names),
        "seed": cfg.seed,
        "model": {"name": cfg.model.name, "tubelet_size": cfg.model.tubelet_size,
                  "patch_size": cfg.model.patch_size, "overrides": dict(cfg.model.overrides),
                  "pretrained": cfg.model.pretrained},
        "num_frames": d.num_frames,
        "img_size": d.img_size,
        "sampling": {"sampling": d.sampling, "stride": d.stride, "num_frames": d.num_frames,
                     "img_size": d.img_size, "short_video": d.short_video,
                     "mean": list(d.mean), "std": list(d.std),
                     "views_temporal": cfg.eval.views_temporal,
                     "views_spatial": cfg.eval.views_spatial, "fusion": cfg.eval.fusion,
                     "short_side": cfg.eval.short_side},
    }


def build_criterion(cfg: RunConfig, num_classes: int) -> tuple[Callable | None, nn.Module]:
    """timm Mixup/CutMix + SoftTargetCrossEntropy, else label-smoothing CE, else plain CE."""
    t = cfg.train
    if t.mixup > 0 or t.cutmix > 0:
        clips = t.batch_size * cfg.data.num_sample  # timm mixes the batch with its reverse
        if clips % 2:
            raise ConfigError(f"mixup/cutmix need an even number of clips per micro-batch "
                              f"(batch_size x data.num_sample), got {clips}",
                              key="train.batch_size")
        mixup = Mixup(mixup_alpha=t.mixup, cutmix_alpha=t.cutmix, label_smoothing=t.label_smoothing,
                      num_classes=num_classes)
        return mixup, SoftTargetCrossEntropy()
    if t.label_smoothing > 0:
        return None, LabelSmoothingCrossEntropy(smoothing=t.label_smoothing)
    return None, nn.CrossEntropyLoss()


def mix_clips(mixup: Callable, clips: torch.Tensor, labels: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup/CutMix on clips (B, C, T, H, W): the same box / weight for every frame of a clip.

    VideoMAE mixes its 5-D batches with its own copy of timm's Mixup, which pastes boxes with
    `x[..., yl:yh, xl:xh]`: one (H, W) box for every frame (MCG-NJU/VideoMAE:mixup.py). timm's
    Mixup pastes with `x[:, :, yl:yh, xl:xh]`, which on a 5-D batch would cut (T, H), so the
    clip is viewed as (B, C*T, H, W) for it.
    """
    b, c, t, h, w = clips.shape
    flat = clips.reshape(b, c * t, h, w).clone()
    flat, soft = mixup(flat, labels)
    return flat.view(b, c, t, h, w), soft
