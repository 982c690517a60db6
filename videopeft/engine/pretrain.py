"""VideoMAE masked pre-training through the training recipe of `train.py` (a Task, not a loop).

The task builds `PretrainVideoMAE` around a VideoViT encoder of `cfg.model`, draws a tube mask per
clip (`cfg.pretrain.mask_ratio`, 0.9 in every K400/SSv2 script) and regresses the normalised pixels
of the masked tubelets. Labels of the training videos are ignored. Everything the loop offers
(DDP, AMP, accumulation, checkpoints, exact resume, logs) applies unchanged.

The result is ``<output_dir>/checkpoints/pretrain.pth`` = ``{'model': state_dict}`` in the official
pre-train key layout (``encoder.*``, ``decoder.*``, ``mask_token``, ``encoder_to_decoder``), which
`videopeft.load_pretrained` reads into a fine-tuning VideoViT like an official checkpoint.

Recipe defaults (MCG-NJU/VideoMAE:run_mae_pretraining.py and scripts/*/pretrain.sh) belong in the
config: AdamW betas (0.9, 0.95) (declared here as the task's `opt_kwargs`), weight decay 0.05, blr
1.5e-4, warmup 40 epochs, min_lr 1e-5, 16 frames with stride 2 (SSv2) / 4 (K400).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from videopeft.config import RunConfig
from videopeft.models import load_pretrained
from videopeft.models.pos_embed import Grid
from videopeft.models.pretrain import create_pretrain_model, masked_per_slice, tube_mask

from .checkpoint import atomic_save
from .tasks import Task
from .train import run_training

__all__ = ["PretrainTask", "pretrain"]

_log = logging.getLogger(__name__)


class PretrainTask(Task):
    """Masked-autoencoder pre-training of `cfg.model`'s encoder."""

    name = "pretrain"
    validates = False

    def __init__(self, cfg: RunConfig) -> None:
        self.mask_ratio = cfg.pretrain.mask_ratio
        if "adam" in cfg.train.opt:  # the Adam family takes betas; SGD and others do not
            self.opt_kwargs = {"betas": (0.9, 0.95)}
        self.grid: Grid | None = None  # the encoder's token grid, known once `build` ran

    def build(self, cfg: RunConfig, class_names: list[str]) -> nn.Module:
        m, p = cfg.model, cfg.pretrain
        kwargs = dict(drop_path_rate=m.drop_path_rate, use_checkpoint=m.use_checkpoint,
                      **m.overrides)
        model = create_pretrain_model(
            m.name, num_frames=cfg.data.num_frames, img_size=cfg.data.img_size,
            patch_size=m.patch_size, tubelet_size=m.tubelet_size, decoder_dim=p.decoder_dim,
            decoder_depth=p.decoder_depth, decoder_heads=p.decoder_heads,
            normalize_target=p.normalize_target, **kwargs)
        if m.pretrained:  # continue from an encoder checkpoint
            load_pretrained(model.encoder, m.pretrained)
        model.requires_grad_(True)
        self.grid = model.encoder.grid
        n = sum(t.numel() for t in model.parameters())
        _log.info("pretraining %s: %s parameters (encoder %s), mask ratio %.2f", m.name, f"{n:,}",
                  f"{sum(t.numel() for t in model.encoder.parameters()):,}", p.mask_ratio)
        return model

    def mask(self, batch: int, device: torch.device, generator: torch.Generator | None = None
             ) -> torch.Tensor:
        """A tube mask per clip over the encoder's token grid (True = masked)."""
        mask = tube_mask(batch, self.grid, self.mask_ratio, generator=generator)
        if device.type == "cuda":  # a copy from pageable memory would wait for the GPU
            return mask.pin_memory().to(device, non_blocking=True)
        return mask.to(device)

    @property
    def num_masked(self) -> int:
        """Masked tokens per clip of every `mask`: passing it spares the model a host sync."""
        return self.grid[0] * masked_per_slice(self.grid, self.mask_ratio)

    def loss(self, model: nn.Module, clips: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return model(clips, self.mask(clips.shape[0], clips.device), num_masked=self.num_masked)

    def flops_forward(self, model: nn.Module, x: torch.Tensor) -> Any:
        gen = torch.Generator().manual_seed(0)  # leaves the training RNG stream alone
        return model(x, self.mask(x.shape[0], x.device, generator=gen),
                     num_masked=self.num_masked)

    def export(self, model: nn.Module, out_dir: Path, cfg: RunConfig, class_names: list[str], *,
               best: bool = False) -> Path:
        path = out_dir / "checkpoints" / "pretrain.pth"
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        arch = dict(model.encoder.arch)  # lets a later load know the grid
        atomic_save({"model": state, "arch": arch}, path)
        _log.info("pre-trained weights: %s", path)
        return path


def pretrain(cfg: RunConfig, *, run_name: str = "pretrain", overwrite: bool = False) -> Path:
    """Pre-train `cfg.model` on the training videos; returns the path of ``pretrain.pth``.
    The run folder follows `videopeft.run_folder` (`overwrite` moves another run aside)."""
    result = run_training(cfg, PretrainTask(cfg), run_name=run_name, overwrite=overwrite)
    return Path(result["output_dir"]) / "checkpoints" / "pretrain.pth"
