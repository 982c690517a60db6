"""One training step of a video classifier, and what it costs: time, FLOPs, MFU, memory, attention.

A `TrainStep` is what every training measurement times: forward under the chosen autocast,
cross-entropy, backward, AdamW step, gradients cleared; no host synchronisation inside it (no
`.item()`, no finiteness check), so on a GPU the timer sees only device work and launch overhead.
Inputs are random tensors made once on the device: no decoder is involved (the GPU machine has
no decord/av).

FLOPs: the model FLOPs of a step are `videopeft.models.flops.training_flops` of the step's model
at the step's batch: forward + the backward autograd runs for the method's trainable set (a frozen
backbone's backward skips its weight gradients; full fine-tuning is about 3x forward), products
only, multiply-add = 2 FLOPs, attention counted whatever kernel runs it, without checkpointing
recomputation (not model work). MFU = model FLOPs per step / step time / the device's dense bf16
peak (`PEAK_BF16_TFLOPS`, or `--peak-tflops`).

Attention share: the share of a profiled step's time spent inside the scaled-dot-product-attention
ops (`aten::_scaled_dot_product*`, forward and backward; inclusive of what they call), from
`torch.profiler`: on a GPU of the summed kernel time, on a CPU of the summed operator time.
"""
from __future__ import annotations

import contextlib
import gc
import gzip
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import Stat, repeat_timed, synchronize

# method name -> the `method:` mapping given to videopeft.peft.apply (package defaults otherwise)
METHODS: dict[str, dict[str, Any]] = {
    "adaptmlp": {"name": "adaptmlp", "bottleneck": 64},
    "vpt": {"name": "vpt", "deep": True},
    "lora": {"name": "lora"},
    "linear": {"name": "linear"},
    "full": {"name": "full"},
}

# Dense (no sparsity) bf16 tensor-core peak in TFLOP/s by GPU name; the first substring found in
# torch.cuda.get_device_name wins, so specific names come before general ones.
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),
    ("H200", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("B200", 2250.0),
)

ATTENTION_OP_PREFIX = "aten::_scaled_dot_product"

# The batch a GPU run uses unless --batch is given: the largest whose heaviest step at 16 frames
# (HF VideoMAE eager + adapter: fp32 softmax of every attention map kept for backward, about
# 2.5 GiB per ViT-B 16x224 clip) fits in about half the card, the rest left for the 32-frame rows.
# (minimum GiB of the card, clips per step), largest first.
CARD_BATCH: tuple[tuple[float, int], ...] = ((120.0, 32), (60.0, 16), (0.0, 8))


@dataclass(frozen=True)
class Shape:
    """The model and input of a measurement: architecture, clip frames and size, batch."""

    arch: str = "videomae_base"
    frames: int = 16
    img_size: int = 224
    batch: int = 8
    num_classes: int = 174  # SSv2

    @property
    def tokens(self) -> int:
        return (self.frames // 2) * (self.img_size // 16) ** 2


@dataclass
class TrainStep:
    """A callable that runs one optimizer step of `model` on a fixed random batch."""

    model: nn.Module
    forward: Callable[[torch.Tensor], torch.Tensor]  # input -> logits
    optimizer: torch.optim.Optimizer
    x: torch.Tensor
    y: torch.Tensor
    amp_dtype: torch.dtype | None  # None = full precision
    shape: Shape

    def loss(self) -> torch.Tensor:
        amp = (contextlib.nullcontext() if self.amp_dtype is None
               else torch.autocast(self.x.device.type, dtype=self.amp_dtype))
        with amp:
            return F.cross_entropy(self.forward(self.x).float(), self.y)

    def __call__(self) -> None:
        self.loss().backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def make_step(model: nn.Module, shape: Shape, device: torch.device, amp_dtype: torch.dtype | None,
              *, forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
              channels_first: bool = True, seed: int = 0) -> TrainStep:
    """AdamW over the trainable parameters (fused on CUDA) and a random batch on `device`.

    `channels_first`: clips as (B, C, T, H, W) (videopeft); False gives (B, T, C, H, W) (HF).
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape.batch, 3, shape.frames, shape.img_size, shape.img_size, generator=gen)
    if not channels_first:
        x = x.permute(0, 2, 1, 3, 4).contiguous()
    y = torch.randint(0, shape.num_classes, (shape.batch,), generator=gen)
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5, fused=device.type == "cuda")
    return TrainStep(model, forward or model, optimizer, x.to(device), y.to(device), amp_dtype,
                     shape)


def build_videopeft(shape: Shape, method: str, *, checkpointing: bool = False) -> nn.Module:
    """videopeft's VideoViT of `shape.arch` with `METHODS[method]` applied (seeded init)."""
    import videopeft
    from videopeft import peft

    torch.manual_seed(0)
    model = videopeft.create_model(shape.arch, num_classes=shape.num_classes,
                                   num_frames=shape.frames, img_size=shape.img_size,
                                   use_checkpoint=checkpointing)
    peft.apply(model, dict(METHODS[method]))
    return model


def step_flops(step: TrainStep) -> float:
    """Model FLOPs of one training step of a videopeft model (see the module docstring)."""
    from videopeft.models.flops import training_flops

    batch, *clip = step.x.shape
    return float(training_flops(step.model, tuple(clip), batch=batch, device=step.x.device))


def peak_tflops(device: torch.device, override: float | None) -> tuple[float | None, str]:
    """The dense bf16 peak to compute MFU against, and where it came from."""
    if override:
        return override, "--peak-tflops"
    if device.type != "cuda":
        return None, "none (CPU: no tensor-core peak; pass --peak-tflops to get an MFU)"
    name = torch.cuda.get_device_name(device)
    for key, tflops in PEAK_BF16_TFLOPS:
        if key.lower() in name.lower():
            return tflops, f"table: {key}"
    return None, f"none ({name} is not in PEAK_BF16_TFLOPS; pass --peak-tflops)"


def batch_for_card(device: torch.device) -> tuple[int, str]:
    """Clips per step for a full-size run on `device` (CARD_BATCH), and why."""
    if device.type != "cuda":
        return 8, "default (not a GPU)"
    gib = torch.cuda.get_device_properties(device).total_memory / 2**30
    batch = next(b for least, b in CARD_BATCH if gib >= least)
    return batch, f"card: {gib:.0f} GiB (CARD_BATCH)"


def _profile(step: Callable[[], Any], device: torch.device, steps: int) -> Any:
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        synchronize(device)
    return prof


def attention_share(prof: Any, device: torch.device) -> float:
    """Share of profiled time inside the attention ops (see the module docstring).

    Both sums run over operator events: the total over the outermost ones (no parent), the
    attention time over the outermost `aten::_scaled_dot_product*` ones, each with its children
    (GPU: the kernels they launched), so nothing is counted twice.
    """
    from torch.autograd import DeviceType

    cuda = device.type == "cuda"

    def spent(event: Any) -> float:
        return event.device_time_total if cuda else event.cpu_time_total

    def inside_attention(event: Any) -> bool:
        parent = event.cpu_parent
        while parent is not None:
            if parent.name.startswith(ATTENTION_OP_PREFIX):
                return True
            parent = parent.cpu_parent
        return False

    ops = [e for e in prof.events() if e.device_type == DeviceType.CPU and not e.is_async]
    total = sum(spent(e) for e in ops if e.cpu_parent is None)
    attention = sum(spent(e) for e in ops
                    if e.name.startswith(ATTENTION_OP_PREFIX) and not inside_attention(e))
    return attention / total if total > 0 else 0.0


def write_profile(step: Callable[[], Any], device: torch.device, stem: Path, steps: int = 3,
                  warmup: int = 3) -> dict[str, str]:
    """Profile `steps` steps after `warmup` unprofiled ones: `<stem>-profile.txt` (key_averages
    table, sorted by self time on the device) and `<stem>-trace.json.gz` (chrome://tracing /
    Perfetto); returns the file names (they are written next to the result files)."""
    for _ in range(warmup):
        step()
    prof = _profile(step, device, steps)
    sort = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=60)
    txt = stem.parent / f"{stem.name}-profile.txt"
    txt.write_text(f"torch.profiler, {steps} training steps, sorted by {sort}\n\n{table}\n")
    raw = stem.parent / f"{stem.name}-trace.json"
    prof.export_chrome_trace(str(raw))
    trace = raw.with_suffix(".json.gz")
    with raw.open("rb") as src, gzip.open(trace, "wb") as dst:
        shutil.copyfileobj(src, dst)
    raw.unlink()
    return {"table": txt.name, "trace": trace.name}


@dataclass
class Timing:
    """How long to measure: untimed warm-up steps, then `repeats` timings of `inner` steps."""

    warmup: int = 5
    repeats: int = 10
    inner: int = 5


@dataclass
class Measurement:
    """Everything measured about one training configuration."""

    label: str
    shape: Shape
    step_s: Stat
    flops_per_step: float
    params_total: int
    params_trainable: int
    peak_memory_mib: float | None  # CUDA max_memory_allocated; None on CPU
    peak_tflops: float | None
    attention_share: float | None = None
    first_step_s: float | None = None  # includes torch.compile's compilation when compiled
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def clips_per_s(self) -> float:
        return self.shape.batch / self.step_s.median

    @property
    def achieved_tflops(self) -> float:
        return self.flops_per_step / self.step_s.median / 1e12

    @property
    def mfu(self) -> float | None:
        return None if self.peak_tflops is None else self.achieved_tflops / self.peak_tflops

    def to_dict(self) -> dict:
        return {"label": self.label, "arch": self.shape.arch, "frames": self.shape.frames,
                "img_size": self.shape.img_size, "batch": self.shape.batch,
                "tokens": self.shape.tokens, "step_s": self.step_s.to_dict(),
                "clips_per_s": self.clips_per_s, "flops_per_step": self.flops_per_step,
                "achieved_tflops": self.achieved_tflops, "peak_tflops": self.peak_tflops,
                "mfu": self.mfu, "peak_memory_mib": self.peak_memory_mib,
                "params_total": self.params_total, "params_trainable": self.params_trainable,
                "attention_share": self.attention_share, "first_step_s": self.first_step_s,
                **self.notes}


def free_memory(device: torch.device) -> None:
    """Drop what earlier measurements left behind and restart the peak-memory counter."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def measure(label: str, build: Callable[[], TrainStep], device: torch.device, timing: Timing,
            *, peak: float | None, flops: float | None = None, compile_backend: str | None = None,
            with_attention: bool = False, notes: dict[str, Any] | None = None) -> Measurement:
    """Build a step (memory counter reset first, so the peak includes weights, gradients,
    optimizer state and activations), count its FLOPs unless given, time it, optionally profile
    the attention share.

    `compile_backend`: wrap the model's forward in torch.compile with that backend; the first
    (compiling) step is timed apart and the FLOPs must then be given (counted uncompiled).
    """
    free_memory(device)
    step = build()
    if compile_backend:
        step.forward = torch.compile(step.forward, backend=compile_backend)
    elif flops is None:
        flops = step_flops(step)
    assert flops is not None, "a compiled step needs FLOPs counted on the uncompiled model"
    synchronize(device)
    begin = time.perf_counter()
    step()
    synchronize(device)
    first = time.perf_counter() - begin
    stat = repeat_timed(step, device, warmup=timing.warmup, repeats=timing.repeats,
                        inner=timing.inner)
    memory = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    share = attention_share(_profile(step, device, 2), device) if with_attention else None
    params = list(step.model.parameters())
    result = Measurement(label, step.shape, stat, flops, sum(p.numel() for p in params),
                         sum(p.numel() for p in params if p.requires_grad), memory, peak, share,
                         first, dict(notes or {}))
    del step
    if compile_backend:
        torch._dynamo.reset()  # the compiled graph holds the model; let the next peak start clean
    free_memory(device)
    return result

