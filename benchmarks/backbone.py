"""Backbone forward+backward time: videopeft's VideoViT vs HF VideoMAE (eager and sdpa).

Same sizes, same weights (HF's copied into videopeft's model with
`videopeft.models.checkpoints.convert_state_dict`, then checked for equal logits), same
process; repeats are interleaved (ours, HF eager, HF sdpa, ours, ...) after a warm-up, and the
median over the undisturbed rounds (`common.clean_rounds`) is reported, in wall time and in
process CPU time (CPU time does not grow while the process waits for a core, so it is the steadier
number on a shared machine). Goal: ours / HF <= 1.0.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

import videopeft
from videopeft.models.checkpoints import convert_state_dict

from .common import Stat, clean_rounds, ratio
from .hf import hf_videomae

NUM_CLASSES = 10
IMPLS = ("videopeft", "hf_eager", "hf_sdpa")


@dataclass(frozen=True)
class Case:
    """One backbone size: input (batch, frames, px), repeats and steps per timed sample."""

    name: str
    arch: str
    frames: int
    size: int
    batch: int
    repeats: int
    inner: int
    warmup: int = 3


CASES = (Case("tiny", "videomae_tiny", 16, 64, 4, repeats=20, inner=10),
         Case("small", "videomae_small", 8, 112, 2, repeats=16, inner=1))
QUICK_CASES = (Case("tiny", "videomae_tiny", 8, 32, 2, repeats=4, inner=2, warmup=1),)


def build_models(case: Case) -> tuple[dict[str, torch.nn.Module], torch.Tensor, float]:
    """videopeft and HF (eager, sdpa) models with identical weights, an input, and the largest
    logit difference between them (asserted below 1e-3)."""
    torch.manual_seed(0)
    hf = {impl: hf_videomae(case.arch, frames=case.frames, size=case.size,
                            num_classes=NUM_CLASSES, impl=impl) for impl in ("eager", "sdpa")}
    hf["sdpa"].load_state_dict(hf["eager"].state_dict())
    ours = videopeft.create_model(case.arch, num_classes=NUM_CLASSES, num_frames=case.frames,
                                  img_size=case.size)
    sd, _ = convert_state_dict(hf["eager"].state_dict(), ours)
    missing, unexpected = ours.load_state_dict(sd, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    x = torch.randn(case.batch, 3, case.frames, case.size, case.size)
    delta = 0.0
    with torch.no_grad():
        ref = ours.eval()(x)
        for impl, model in hf.items():
            out = model.eval()(pixel_values=x.permute(0, 2, 1, 3, 4)).logits
            delta = max(delta, float((out - ref).abs().max()))
    assert delta < 1e-3, f"{case.name}: videopeft and HF logits differ by {delta:.2e}"
    return {"videopeft": ours, "hf_eager": hf["eager"], "hf_sdpa": hf["sdpa"]}, x, delta


def step_fn(model: torch.nn.Module, x: torch.Tensor, hf_input: bool, inner: int
            ) -> Callable[[], tuple[float, float]]:
    """Timed forward+backward (train mode, grads cleared first), mean over `inner` steps:
    (wall s, process CPU s)."""
    inp = x.permute(0, 2, 1, 3, 4).contiguous() if hf_input else x
    model.train()

    def step() -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(inner):
            model.zero_grad(set_to_none=True)
            out = model(pixel_values=inp).logits if hf_input else model(inp)
            out.float().square().mean().backward()
        return (time.perf_counter() - wall) / inner, (time.process_time() - cpu) / inner
    return step


def run_case(case: Case) -> dict:
    """Interleaved rounds of the three models; medians over the clean rounds, and the ratios."""
    models, x, delta = build_models(case)
    steps = {k: step_fn(m, x, k != "videopeft", case.inner) for k, m in models.items()}
    wall: dict[str, list[float]] = {k: [] for k in IMPLS}
    cpu: dict[str, list[float]] = {k: [] for k in IMPLS}
    for i in range(case.warmup + case.repeats):
        for name in IMPLS[i % 3:] + IMPLS[:i % 3]:
            w, c = steps[name]()
            if i >= case.warmup:
                wall[name].append(w)
                cpu[name].append(c)
    clean = clean_rounds(wall)
    wall_s = {k: Stat.of([v[i] for i in clean]) for k, v in wall.items()}
    cpu_s = {k: Stat.of([v[i] for i in clean]) for k, v in cpu.items()}
    ours = models["videopeft"]
    return {
        "case": case.name, "arch": case.arch, "batch": case.batch, "frames": case.frames,
        "img_size": case.size, "tokens": (case.frames // 2) * (case.size // 16) ** 2,
        "params": sum(p.numel() for p in ours.parameters()), "repeats": case.repeats,
        "warmup": case.warmup, "steps_per_sample": case.inner, "clean_rounds": len(clean),
        "max_logit_delta": delta,
        "wall_s": {k: s.to_dict() for k, s in wall_s.items()},
        "cpu_s": {k: s.to_dict() for k, s in cpu_s.items()},
        "wall_all_rounds_median_s": {k: statistics.median(v) for k, v in wall.items()},
        "ratio_vs_hf_eager": ratio(wall_s["videopeft"].median, wall_s["hf_eager"].median),
        "ratio_vs_hf_sdpa": ratio(wall_s["videopeft"].median, wall_s["hf_sdpa"].median),
        "cpu_ratio_vs_hf_eager": ratio(cpu_s["videopeft"].median, cpu_s["hf_eager"].median),
        "cpu_ratio_vs_hf_sdpa": ratio(cpu_s["videopeft"].median, cpu_s["hf_sdpa"].median),
    }


def run(quick: bool) -> dict:
    """The backbone section: every case of the chosen size."""
    return {"cases": [run_case(c) for c in (QUICK_CASES if quick else CASES)]}


def markdown(section: dict) -> list[str]:
    lines = ["## Backbone forward+backward: videopeft vs HF VideoMAE (same weights)", "",
             "Median over undisturbed interleaved rounds; ratio < 1 means videopeft is faster.",
             "", "| case | input (B, T, px) | tokens | videopeft ms | HF eager ms | HF sdpa ms "
             "| ours / eager | ours / sdpa | CPU-time ours / eager | ours / sdpa "
             "| clean / repeats |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in section["cases"]:
        ms = [f"{r['wall_s'][k]['median'] * 1e3:.1f}" for k in IMPLS]
        lines.append(f"| {r['case']} ({r['arch']}) | {r['batch']}, {r['frames']}, {r['img_size']} "
                     f"| {r['tokens']} | {' | '.join(ms)} | {r['ratio_vs_hf_eager']:.2f}x "
                     f"| {r['ratio_vs_hf_sdpa']:.2f}x | {r['cpu_ratio_vs_hf_eager']:.2f}x "
                     f"| {r['cpu_ratio_vs_hf_sdpa']:.2f}x | {r['clean_rounds']} / {r['repeats']} |")
    return lines
