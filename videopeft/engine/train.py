"""The training recipe: one loop for fine-tuning (any PEFT method) and for VideoMAE pretraining.

Read top to bottom: set up the run (process group, folder, logs), the data, the model (backbone +
pretrained weights + PEFT method, *before* DDP), the optimizer and schedule; resume if asked; then
the step loop; then the final multi-view evaluation and the exports. What differs between
fine-tuning and pretraining is a small `Task` (`tasks.py`, `pretrain.py`: model, loss, export and
optimizer arguments), not a second loop; parameter groups and the schedule are in `optim.py`.

Features:
    * timm optimizers (`train.opt`) on the trainable parameters only, no weight decay on biases,
      norms and other 1-D tensors, VideoMAE layer decay (`train.layer_decay`);
    * timm cosine schedule with linear warmup from `train.warmup_lr`, stepped per optimizer step;
      the lr is ``train.blr * global_batch / 256`` when ``train.lr`` is 0 (min_lr and warmup_lr
      scaled the same way);
    * AMP (`train.amp`: auto = bf16 on CUDA, off on CPU; fp16 with a GradScaler), gradient
      accumulation (DDP gradients synchronised on the last micro-step only), clipping;
      `train.global_batch` fixes the batch a step sees, whatever the world size: the accumulation
      is derived from it (`accum_steps_for`), and the log states the global batch and the lr;
    * BatchNorm statistics per process, as AdaptFormer's DDP runs have them, or over all GPUs
      with `train.sync_bn`;
    * timm Mixup/CutMix with soft-target loss, label smoothing, optional EMA of the weights;
    * augmentation in the DataLoader workers, or on the device (`data.augment`; auto = device on
      CUDA): workers then decode and cut uint8 crops, `DeviceAugment` does the rest batched;
      repeated augmentation (`data.num_sample: k`, k clips per decoded video; the lr follows the
      global batch of videos, as VideoMAE's);
    * DDP through torchrun; the data order depends only on (seed, epoch), so any world size with
      the same global batch sees the same samples per step;
    * checkpoints (full state, atomic, keep-last-k) every `save_every` epochs and every
      `save_every_steps` steps; `resume: auto` continues *exactly* where a killed run stopped;
    * JSONL + TensorBoard logs, tqdm on rank 0, an efficiency report (params, GFLOPs per view, peak
      memory, clips/s, data-time share, with a warning when loading dominates);
    * validation (1 temporal x 1 spatial centre view, as VideoMAE validates) every `eval_every`
      epochs, best.pt + adapter_best.safetensors at the best score; at the end the final state
      in adapter.safetensors and the multi-view evaluation -> results.json, plots, manifest.json;
    * run.json, the reproducibility record (`run_record.py`), written at the start and the end;
    * the run folder belongs to this run (`videopeft.run_folder`): before anything is written the
      main rank reads the data (`videopeft.data.preflight`) and claims the folder, and every rank
      stops on the same ConfigError when either is refused.

Epochs are counted from 1 wherever a user reads them (log lines, log.jsonl, `Best.epoch`);
`Position.epoch` (checkpoints, resume) counts epochs done, from 0.

Run folder: README.md, "What a run writes".

Raises:
    ConfigError: the config does not fit the data or model, or the run folder holds another run
        (before any step).
    RunInterrupted: Ctrl-C; it names the run folder and the last checkpoint's step.
    CheckpointError: a resume checkpoint is unreadable or belongs to another model/method.
    FloatingPointError: a non-finite loss, noted on the device each step and raised with its step
        at the next log step, checkpoint or epoch end (`hostsync.LossWatch`).
"""
from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from timm.utils import ModelEmaV3
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from videopeft.config import DataConfig, RunConfig, config_to_dict, save_config
from videopeft.data import Manifest, build_dataset, collate_train
from videopeft.data.device_augment import build_device_augment
from videopeft.data.transfer import unpack_crops
from videopeft.errors import CheckpointError, RunInterrupted, run_error
from videopeft.io import atomic_write_json

from . import distributed as dist
from .builder import (Precision, count_params, gflops_per_view, peak_memory_mb, prepare_run,
                      resolve_output_dir, resolve_precision)
from .checkpoint import (CheckpointManager, find_resume, load_checkpoint, load_model_state,
                         model_state, rng_state, set_rng_state)
from .evaluate import evaluate, evaluate_model, write_manifest
from .hostsync import LossWatch, synchronize
from .loaders import build_train_loader, data_config_for, data_levers
from .logging import MetricsLogger, setup_console_logging
from .machine import cpu_cores
from .optim import accum_steps_for, build_optimizer, build_scheduler, scaled_lrs
from .report import plot_training_curves
from .run_record import finish_run_record, start_run_record
from .tasks import ClassificationTask, Task

__all__ = ["train", "run_training", "Recipe", "prepare_batchnorm"]

_log = logging.getLogger(__name__)


# ============================================================================= bookkeeping

@dataclass
class Position:
    """Where training is: the epoch, optimizer steps done in it, and the global step."""

    epoch: int = 0
    epoch_step: int = 0
    step: int = 0


@dataclass
class Throughput:
    """Step time and data-loading time over the first `window` steps after the first one."""

    window: int
    steps: int = 0
    samples: int = 0
    step_time: float = 0.0
    data_time: float = 0.0
    first: tuple[int, float, float] | None = None  # kept apart: it pays for start-up
    reported: bool = False

    def add(self, samples: int, step_time: float, data_time: float) -> None:
        if self.first is None:
            self.first = (samples, step_time, data_time)
            return
        self.steps += 1
        self.samples += samples
        self.step_time += step_time
        self.data_time += data_time

    @property
    def ready(self) -> bool:
        return not self.reported and self.steps >= self.window

    @property
    def needs_sync(self) -> bool:
        """The step being timed starts or ends the window: wait for the GPU before timing it,
        so the window spans device work, not only the host queueing it (steps never sync)."""
        return not self.reported and (self.first is None or self.steps + 1 >= self.window)

    def summary(self, world: int) -> dict:
        """clips/s over all ranks, seconds per step, share of step time spent waiting for data.

        A run of a single step has only the start-up step to measure; it is used then.
        """
        samples, secs, data, steps = self.samples, self.step_time, self.data_time, self.steps
        if steps == 0 and self.first is not None:
            (samples, secs, data), steps = self.first, 1
        secs = max(secs, 1e-9)
        return {"clips_per_s": samples * world / secs, "step_s": secs / max(steps, 1),
                "data_share": data / secs, "measured_steps": steps}


@dataclass
class Best:
    """The best validation score so far (video top-1) and where it happened (epoch from 1)."""

    score: float = -math.inf
    step: int = -1
    epoch: int = -1
    metrics: dict = field(default_factory=dict)


# ============================================================================= the recipe

class Recipe:
    """One training run: `setup` -> `resume` -> `train` -> `finish` (see the module docstring)."""

    def __init__(self, cfg: RunConfig, task: Task, info: dist.DistInfo, out_dir: Path,
                 logger: MetricsLogger) -> None:
        self.cfg, self.task, self.info, self.out_dir, self.logger = cfg, task, info, out_dir, logger
        self.device = info.device
        self.accum_steps = accum_steps_for(cfg.train, info.world_size)  # micro-batches per step
        self.pos, self.best = Position(), Best()
        self.last_saved = -1

    # ------------------------------------------------------------------ setup
    def setup(self, manifest: Manifest) -> None:
        """Data, model, optimizer and checkpoint folder, then the setup line of the log."""
        self._setup_data(manifest)
        self._setup_model()
        self._setup_optimizer()
        self.loss_watch = LossWatch(self.device)
        self.checkpoints = CheckpointManager(self.out_dir / "checkpoints",
                                             keep_last=self.cfg.train.keep_last,
                                             enabled=self.info.is_main)
        self._log_setup()

    def _setup_data(self, manifest: Manifest) -> None:
        """Training clips in the resumable seeded order; a 1-view validation set."""
        cfg, t, info = self.cfg, self.cfg.train, self.info
        self.data: DataConfig = data_config_for(cfg.data, self.device)  # `augment` resolved
        self.device_augment = build_device_augment(self.data) \
            if self.data.augment == "device" else None
        self.train_set, self.class_names = build_dataset(self.data, self.data.split, train=True,
                                                         manifest=manifest)
        self.loader, self.sampler = build_train_loader(
            self.train_set, batch_size=t.batch_size, accum_steps=self.accum_steps,
            workers=self.data.workers, seed=cfg.seed, rank=info.rank,
            world_size=info.world_size, pin_memory=self.device.type == "cuda",
            collate_fn=collate_train)
        self.steps_per_epoch = self.sampler.steps_per_epoch
        self.max_steps = t.max_steps if t.max_steps > 0 else t.epochs * self.steps_per_epoch
        self.val_set = None
        if self.task.validates and t.eval_every > 0:  # VideoMAE validates with one centre view
            self.val_set, _ = build_dataset(self.data, cfg.eval.split, train=False,
                                            manifest=manifest, views_temporal=1, views_spatial=1,
                                            short_side=cfg.eval.short_side)

    def _setup_model(self) -> None:
        """The task's model (PEFT applied), on the device, then DDP over the trainable params."""
        cfg, info = self.cfg, self.info
        torch.manual_seed(cfg.seed)  # identical initialisation on every rank and world size
        model = self.task.build(cfg, self.class_names).to(self.device)
        self.model = model = prepare_batchnorm(model, cfg.train.sync_bn, info)
        self.precision: Precision = resolve_precision(cfg.train.amp, self.device)
        self.params = count_params(model)
        self.gflops = gflops_per_view(model, cfg.data.num_frames, cfg.data.img_size, self.device,
                                      forward=self.task.flops_forward)
        self.trainable_names = sorted(n for n, p in model.named_parameters() if p.requires_grad)
        self.ema = _build_ema(model, cfg.train.ema)
        self.ddp_model: nn.Module = model
        if info.distributed:  # after peft.apply: DDP registers only the parameters needing grads
            self.ddp_model = DDP(model, device_ids=[self.device] if self.device.type == "cuda"
                                 else None)
        if cfg.train.compile:
            self.ddp_model = torch.compile(self.ddp_model)

    def _setup_optimizer(self) -> None:
        """timm optimizer over the trainable parameter groups, cosine schedule, AMP scaler."""
        cfg, t = self.cfg, self.cfg.train
        self.global_batch = t.batch_size * self.accum_steps * self.info.world_size
        self.lr, self.min_lr, self.warmup_lr = scaled_lrs(cfg, self.global_batch)
        self.optimizer = build_optimizer(self.model, cfg, self.lr, self.task.opt_kwargs)
        self.scheduler = build_scheduler(self.optimizer, cfg, self.steps_per_epoch, self.min_lr,
                                         self.warmup_lr)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision.use_scaler)

    def _log_setup(self) -> None:
        """The efficiency report's static half: sizes, cost per view, batch and schedule."""
        p, g = self.params, self.gflops
        d = self.data
        self.logger.log(
            "setup", 0, task=self.task.name, params_total=p["total"],
            params_trainable=p["trainable"], gflops_per_view=g, gmacs_per_view=g / 2,
            world_size=self.info.world_size, batch_size=self.cfg.train.batch_size,
            accum_steps=self.accum_steps, global_batch=self.global_batch,
            num_sample=d.num_sample, clips_per_step=self.global_batch * d.num_sample,
            augment=d.augment, workers=d.workers, lr=self.lr,
            min_lr=self.min_lr, warmup_lr=self.warmup_lr, steps_per_epoch=self.steps_per_epoch,
            epochs=self.cfg.train.epochs, max_steps=self.max_steps,
            precision=self.precision.name, device=str(self.device),
            train_videos=len(self.train_set), classes=len(self.class_names))
        _log.info("params: %s total, %s trainable (%.3f%%); %.4g GFLOPs per view (%.4g GMACs); "
                  "global batch %d videos (%d processes x %d x %d accumulation steps), lr %.3g, "
                  "%d steps per epoch, precision %s",
                  f"{p['total']:,}", f"{p['trainable']:,}",
                  100 * p["trainable"] / max(p["total"], 1), g, g / 2, self.global_batch,
                  self.info.world_size, self.cfg.train.batch_size, self.accum_steps, self.lr,
                  self.steps_per_epoch, self.precision.name)
        _log.info("data: augmentation %s, %d workers per process%s",
                  "in the DataLoader workers" if d.augment == "worker"
                  else "on the device (the workers decode and cut crops)",
                  d.workers, f"; {d.num_sample} augmented clips per video (data.num_sample), "
                  f"{self.global_batch * d.num_sample} clips per step; the lr follows the global "
                  f"batch of videos" if d.num_sample > 1 else "")

    # ------------------------------------------------------------------ state
    @property
    def eval_model(self) -> nn.Module:
        """The weights to validate and export: the EMA copy when EMA is on."""
        return self.ema.module if self.ema is not None else self.model

    def state_dict(self) -> dict:
        """Everything needed to continue exactly from here (gathers every rank's RNG state)."""
        own = model_state(self.model)
        ema = None
        if self.ema is not None:
            ema = {k: v.detach().cpu() for k, v in self.ema.module.state_dict().items() if k in own}
        return {
            "model": own, "trainable": self.trainable_names,
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None, "ema": ema,
            "epoch": self.pos.epoch, "epoch_step": self.pos.epoch_step, "step": self.pos.step,
            "world_size": self.info.world_size, "rng": dist.gather_objects(rng_state()),
            "best": vars(self.best), "config": config_to_dict(self.cfg),
            "class_names": list(self.class_names), "method": self._method(),
            "task": self.task.name,
        }

    def _method(self) -> dict:
        """The PEFT method a checkpoint records; none for tasks without one (pre-training)."""
        return self.cfg.method.to_dict() if self.task.validates else {}

    def save(self) -> None:
        """A step checkpoint (and last.pt) at the current position (never after a NaN loss)."""
        self.loss_watch.check()
        self.checkpoints.save(self.state_dict(), self.pos.step)
        self.last_saved = self.pos.step

    def resume(self) -> None:
        """Continue from `train.resume` ('' = fresh start, 'auto' = newest valid, or a path)."""
        found = _find_resume_state(self.cfg, self.out_dir)
        if found is None:
            _seed_all(self.cfg.seed + self.info.rank)  # per-rank streams: dropout, masks, mixup
            self.logger.drop_earlier_runs()  # a reused folder: its failed attempt's lines go
            return
        path, state = found
        _check_resume(state, path, self.cfg, self.class_names, self.trainable_names,
                      self._method())
        load_model_state(self.model, state["model"], source=str(path))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state.get("ema"):
            self.ema.module.load_state_dict(state["ema"], strict=False)
        self.pos = Position(state["epoch"], state["epoch_step"], state["step"])
        self.best = Best(**state["best"]) if state.get("best") else Best()
        self.last_saved = self.pos.step
        rngs = state["rng"]
        if len(rngs) == self.info.world_size:
            set_rng_state(rngs[self.info.rank])
        else:
            _log.warning("checkpoint was written by %d processes, this run has %d: RNG streams "
                         "are re-seeded, so the continuation is not bit-exact", len(rngs),
                         self.info.world_size)
            _seed_all(self.cfg.seed + self.info.rank + self.pos.step)
        self.logger.truncate_after(self.pos.step)  # drop what a killed run logged after this
        self.logger.log("resume", self.pos.step, checkpoint=str(path), epoch=self.pos.epoch + 1,
                        epoch_step=self.pos.epoch_step)
        _log.info("resumed from %s at step %d (epoch %d, %d of its steps done)", path,
                  self.pos.step, self.pos.epoch + 1, self.pos.epoch_step)

    # ------------------------------------------------------------------ the loop
    def train(self) -> None:
        """Epochs of optimizer steps until `epochs` or `max_steps`; validation and checkpoints."""
        t, pos = self.cfg.train, self.pos
        # 20 steps after the first: enough to average over worker start-up and epoch edges, and
        # independent of how often the loss is logged
        self.meter = Throughput(window=max(1, min(20, self.max_steps - pos.step - 1)))
        # `with`: the bar ends its line even when a step fails or Ctrl-C stops the run, so the
        # error line that follows stands on its own
        with _progress(self.info.is_main, total=self.max_steps, initial=pos.step) as progress:
            self.model.train()
            for epoch in range(pos.epoch, t.epochs):
                if pos.step >= self.max_steps:
                    break
                if epoch != pos.epoch:
                    pos.epoch, pos.epoch_step = epoch, 0
                self.sampler.set_position(epoch, pos.epoch_step)  # skips steps before a resume
                batches = iter(self.loader)
                while pos.epoch_step < self.steps_per_epoch and pos.step < self.max_steps:
                    step_start = time.perf_counter()
                    loss, data_time = self.train_step(batches)
                    if self.meter.needs_sync:
                        synchronize(self.device)
                    pos.step += 1
                    pos.epoch_step += 1
                    progress.update(1)
                    self._after_step(loss, data_time, time.perf_counter() - step_start,
                                     progress)
                if pos.epoch_step < self.steps_per_epoch:
                    break  # stopped by max_steps in the middle of the epoch
                self._end_epoch(epoch)

    def train_step(self, batches: Any) -> tuple[torch.Tensor, float]:
        """One optimizer step over `accum_steps` micro-batches; returns (loss, data wait time)."""
        t, task = self.cfg.train, self.task
        self.scheduler.step_update(self.pos.step)
        loss_sum, data_time = torch.zeros((), device=self.device), 0.0
        for micro in range(self.accum_steps):
            data_start = time.perf_counter()
            clips, labels, _ = next(batches)
            data_time += time.perf_counter() - data_start
            clips = self.model_input(clips)
            labels = labels.to(self.device, non_blocking=True)
            # DDP all-reduces gradients during backward; only the last micro-step needs that
            last = micro == self.accum_steps - 1
            sync = self.ddp_model.no_sync() if self.info.distributed and not last \
                else contextlib.nullcontext()
            with sync:
                with self.precision.autocast():
                    loss = task.loss(self.ddp_model, clips, labels) / self.accum_steps
                self.scaler.scale(loss).backward()
            loss_sum += loss.detach()
        self.loss_watch.observe(loss_sum, self.pos.step, self.pos.epoch)  # checked on log steps
        if t.clip_grad > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad],
                                     t.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model, step=self.pos.step)
        return loss_sum, data_time

    def model_input(self, clips: Any) -> torch.Tensor:
        """A collated batch on the device, as the model takes it: float clips (B, C, T, H, W);
        in device mode the crops are copied over and augmented there."""
        if self.device_augment is None:
            return clips.to(self.device, non_blocking=True)
        return self.device_augment(unpack_crops(clips, self.device), clips)

    def _after_step(self, loss: torch.Tensor, data_time: float, step_time: float,
                    progress: Any) -> None:
        """Throughput, logging and step checkpoints after optimizer step `pos.step`."""
        t, step = self.cfg.train, self.pos.step
        self.meter.add(t.batch_size * self.accum_steps * self.data.num_sample, step_time,
                       data_time)
        if self.meter.ready:
            self._report_efficiency()
        if step % t.log_every == 0 or step == self.max_steps:
            self.loss_watch.check()
            loss_value = dist.all_reduce_mean(loss, self.device)
            lr = max(g["lr"] for g in self.optimizer.param_groups)
            self.logger.log("train", step, epoch=self.pos.epoch + 1, loss=loss_value, lr=lr,
                            data_time=data_time, step_time=step_time)
            progress.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}")
        if t.save_every_steps > 0 and step % t.save_every_steps == 0:
            self.save()

    def _end_epoch(self, epoch: int) -> None:
        """Validate (every `eval_every` epochs), keep the best, checkpoint (every `save_every`)."""
        t = self.cfg.train
        self.loss_watch.check()
        self.pos.epoch, self.pos.epoch_step = epoch + 1, 0
        if self.val_set is not None and (epoch + 1) % t.eval_every == 0:
            self.validate(epoch)
        if (epoch + 1) % max(t.save_every, 1) == 0 or self.pos.epoch == t.epochs:
            self.save()

    def validate(self, epoch: int) -> None:
        """Score the validation set (1 centre view: a cheaper protocol than the final multi-view
        evaluation); at a new best write best.pt and adapter_best.safetensors."""
        cfg = self.cfg
        metrics, _ = evaluate_model(self.eval_model, self.val_set, self.class_names,
                                    batch_size=cfg.eval.batch_size, workers=cfg.data.workers,
                                    device=self.device, precision=self.precision,
                                    fusion=cfg.eval.fusion)
        self.model.train()
        top1, top5 = metrics["video_top1"], metrics["video_top5"]
        shown = epoch + 1
        self.logger.log("val", self.pos.step, epoch=shown, video_top1=top1, video_top5=top5,
                        num_failed=metrics["num_failed"], views="1x1 centre crop")
        views = (cfg.eval.views_temporal, cfg.eval.views_spatial)
        final = "" if views == (1, 1) else \
            "; the final %dx%d-view evaluation will differ" % views
        _log.info("epoch %d: val top-1 %.2f%%, top-5 %.2f%% (1 temporal x 1 spatial view, centre "
                  "crop%s)", shown, top1, top5, final)
        if top1 > self.best.score:
            self.best = Best(top1, self.pos.step, shown, {"video_top1": top1, "video_top5": top5})
            self.checkpoints.save_best(self.state_dict())
            if self.info.is_main:
                self.task.export(self.eval_model, self.out_dir, cfg, self.class_names, best=True)

    def _report_efficiency(self) -> None:
        """Log clips/s, data-time share and peak memory once; warn when data loading dominates."""
        self.meter.reported = True
        if self.meter.steps == 0 and self.meter.first is None:
            return  # no step ran (a finished run resumed)
        summary = self.meter.summary(self.info.world_size)
        summary["peak_memory_mb"] = peak_memory_mb(self.device)
        self.logger.log("efficiency", self.pos.step, **summary)
        _log.info("throughput: %.1f clips/s, %.0f%% of step time waiting for data, peak memory "
                  "%.0f MiB", summary["clips_per_s"], 100 * summary["data_share"],
                  summary["peak_memory_mb"])
        if summary["data_share"] > 0.5:
            _log.warning("data loading takes %.0f%% of each step; what applies here: %s",
                         100 * summary["data_share"],
                         "; ".join(data_levers(self.data, self.device, cpu_cores())))

    # ------------------------------------------------------------------ the end
    def training_facts(self) -> dict:
        """How the model was trained, for results.json: batch, repeated augmentation, where the
        augmentation ran, lr, steps."""
        d = self.data
        return {"steps": self.pos.step, "global_batch": self.global_batch,
                "num_sample": d.num_sample, "clips_per_step": self.global_batch * d.num_sample,
                "augment": d.augment, "lr": self.lr, "world_size": self.info.world_size}

    def finish(self) -> dict:
        """Final checkpoint, export of the final state (adapter.safetensors), multi-view
        evaluation of that state (results.json) and plots."""
        cfg, info, out_dir = self.cfg, self.info, self.out_dir
        self.loss_watch.check()
        if self.last_saved != self.pos.step:
            self.save()
        if not self.meter.reported:
            self._report_efficiency()
        if self.best.step < 0:  # never validated: the final state is the best we know
            self.checkpoints.save_best(self.state_dict())
        exported = None
        if info.is_main:
            exported = self.task.export(self.eval_model, out_dir, cfg, self.class_names)
        results: dict = {"output_dir": str(out_dir),
                         "exported": str(exported) if exported else None}
        if self.task.validates:  # run.json is the training run's (run_training writes it)
            record = evaluate(cfg, model=self.eval_model, output_dir=out_dir,
                              progress=info.is_main, run_record=False,
                              training=self.training_facts())
            self.logger.log("test", self.pos.step, **{k: record[k] for k in (
                "clip_top1", "clip_top5", "video_top1", "video_top5", "num_videos",
                "num_failed")})
            results.update(record)
        if info.is_main:
            plot_training_curves(self.logger.path, out_dir / "plots")
        dist.barrier()
        return results


# ============================================================================= entry points

def train(cfg: RunConfig, *, run_name: str = "run", overwrite: bool = False) -> dict:
    """Fine-tune `cfg.model` with `cfg.method` on `cfg.data`; returns the results.json dict.

    `run_name` names the default output folder (``runs/<run_name>-<time>``); tools pass the
    config file's stem. A folder holding another run is refused unless `overwrite` (its contents
    are moved aside; `videopeft.run_folder`). The returned dict also has ``output_dir`` and
    ``exported``.
    """
    return run_training(cfg, ClassificationTask(), run_name=run_name, overwrite=overwrite)


def run_training(cfg: RunConfig, task: Task, *, run_name: str = "run",
                 overwrite: bool = False) -> dict:
    """Check the data and claim the run folder, set up the logs, run the `Recipe`, and always
    write manifest, log and run.json (with the error of a run that failed)."""
    accum_steps_for(cfg.train, dist.get_dist_info().world_size)  # stops before any folder exists
    owns_group = not torch.distributed.is_initialized()
    info = dist.init_distributed(cfg.device)
    setup_console_logging(info.is_main)
    splits = {cfg.data.split: True}  # {split: trained on}
    if task.validates:
        splits.setdefault(cfg.eval.split, False)
    try:
        out_dir = resolve_output_dir(cfg, run_name)
        prepare_run(out_dir, cfg, splits, info, overwrite=overwrite,
                    num_classes=cfg.model.num_classes if task.validates else 0)
    except BaseException:
        if owns_group:
            dist.cleanup()
        raise
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out_dir / "config.yaml")
    dist.barrier()
    logger = MetricsLogger(out_dir, enabled=info.is_main)
    manifest = Manifest(out_dir / ".manifest_spool")  # shared by DataLoader workers and ranks
    record = start_run_record(out_dir, cfg.data, list(splits), info)  # run.json
    finished, error, recipe = False, None, None
    try:
        recipe = Recipe(cfg, task, info, out_dir, logger)
        recipe.setup(manifest)
        recipe.resume()
        recipe.train()
        results = recipe.finish()
        finished = True
        return results
    except KeyboardInterrupt:
        error = "interrupted"
        raise RunInterrupted(str(out_dir), recipe.last_saved if recipe else -1) from None
    except BaseException as err:
        error = run_error(err)
        raise
    finally:  # nothing lost on failure: the log is flushed line by line, the manifest written here
        if finished:  # gathers every rank's records
            failures = write_manifest(manifest, out_dir / "manifest.json")
            finish_run_record(out_dir, record, manifest, failures, finished=True)
        elif info.is_main:  # no collectives after an error: other ranks may be elsewhere
            failures = manifest.to_dict()
            atomic_write_json(out_dir / "manifest.json", failures)
            finish_run_record(out_dir, record, manifest, failures, finished=False, error=error)
        logger.close()
        if owns_group:
            dist.cleanup()


# ============================================================================= helpers

def prepare_batchnorm(model: nn.Module, sync_bn: bool, info: dist.DistInfo) -> nn.Module:
    """The model with BatchNorm statistics per process (AdaptFormer's DDP runs: a plain
    BatchNorm1d head, ShoufaChen/AdaptFormer:main_video.py) or, with `sync_bn` on several CUDA
    processes, over all of them (SyncBatchNorm)."""
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if not (info.distributed and has_bn):
        return model
    if not sync_bn:
        _log.info("BatchNorm statistics are per process (train.sync_bn: false)")
        return model
    if info.device.type != "cuda":
        _log.warning("train.sync_bn needs CUDA processes; BatchNorm keeps per-process statistics "
                     "on %s", info.device)
        return model
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def _seed_all(seed: int) -> None:
    """Seed python, numpy and torch (dropout, masks, mixup draw from them)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _build_ema(model: nn.Module, decay: float) -> ModelEmaV3 | None:
    """timm's EMA of the weights (`train.ema` = its decay), or None when off."""
    return ModelEmaV3(model, decay=decay) if decay > 0 else None


def _find_resume_state(cfg: RunConfig, out_dir: Path) -> tuple[Path, dict] | None:
    """The checkpoint to resume from: `train.resume` = '' (none), 'auto' or a path."""
    r = cfg.train.resume
    if not r:
        return None
    if r == "auto":
        found = find_resume(out_dir / "checkpoints")
        if found is None:
            _log.info("resume: auto: no checkpoint in %s, starting fresh", out_dir / "checkpoints")
        return found
    return Path(r), load_checkpoint(r)


def _check_resume(state: dict, path: Path, cfg: RunConfig, class_names: list[str],
                  trainable: list[str], method: dict) -> None:
    """Refuse a checkpoint of another method, model or class list (never train the wrong tensors)."""
    problems = []
    if state.get("method") != method:
        problems.append(f"method {state.get('method')} != config method {method}")
    if state.get("class_names") != list(class_names):
        problems.append("class list differs from the dataset's")
    if sorted(state.get("trainable", [])) != trainable:
        extra = sorted(set(state.get("trainable", [])) - set(trainable))
        missing = sorted(set(trainable) - set(state.get("trainable", [])))
        problems.append(f"trainable parameters differ (checkpoint only: {extra[:3]}, "
                        f"model only: {missing[:3]})")
    saved_model = state.get("config", {}).get("model", {})
    if saved_model.get("name") != cfg.model.name:
        problems.append(f"model {saved_model.get('name')} != {cfg.model.name}")
    if problems:
        raise CheckpointError(f"{path}: cannot resume: " + "; ".join(problems))


def _progress(enabled: bool, total: int, initial: int) -> tqdm:
    """The step bar (main rank). An explicit ``disable=False`` would override TQDM_DISABLE=1,
    so `disable` is passed only to turn the bar off."""
    off = {} if enabled else {"disable": True}
    return tqdm(total=total, initial=initial, desc="train", dynamic_ncols=True, **off)
