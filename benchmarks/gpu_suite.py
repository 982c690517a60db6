"""The GPU suite: ViT-B 16x224 bf16 training throughput, MFU, memory and scaling per PEFT method.

Sections (all at the same batch; see training.py for how a step is timed and FLOPs are counted):
    methods        clips/s, TFLOP/s, MFU and peak memory of AdaptMLP-64, VPT-deep, LoRA, linear,
                   full fine-tuning
    hf             the AdaptMLP step against HF VideoMAE (eager and sdpa attention) with the same
                   parallel bottleneck adapter (hf.py), same trainable parameter count
    frames         AdaptMLP and VPT at 4, 8, 16, 32 frames: clips/s, memory, attention share
    compile        AdaptMLP eager vs torch.compile (first step, with compilation, timed apart)
    checkpointing  AdaptMLP without and with gradient checkpointing over blocks
    ratios, goals  the issue's targets, pass/fail (null where this device cannot measure them)
    profile        with --profile: torch.profiler table and trace of the AdaptMLP step

It imports no decoder (random tensors as input): the GPU machine has no decord/av. On a CPU it
runs end to end at `--quick` size (videomae_tiny) for tests; memory and MFU are null there.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch

from .common import ratio
from .training import (METHODS, Measurement, Shape, Timing, TrainStep, build_videopeft,
                       free_memory, make_step, measure, peak_tflops, write_profile)

MAIN = "adaptmlp"  # the method the goals are about
FRAME_METHODS = ("adaptmlp", "vpt")


@dataclass(frozen=True)
class Goal:
    """A target from the issue: `value op target`, value read from the record at `path`."""

    key: str
    description: str
    path: tuple[str, ...]
    op: str  # ">=" | "<="
    target: float

    def check(self, record: dict) -> dict:
        value: Any = record
        for part in self.path:
            value = value.get(part) if isinstance(value, dict) else None
        passed = None if value is None else (value >= self.target if self.op == ">="
                                             else value <= self.target)
        return {"key": self.key, "description": self.description, "value": value,
                "op": self.op, "target": self.target, "passed": passed}


GOALS = (
    Goal("mfu_adaptmlp", "MFU of AdaptMLP-64 training", ("methods", MAIN, "mfu"), ">=", 0.50),
    Goal("vs_hf_eager_adapter", "AdaptMLP clips/s vs HF VideoMAE eager + adapter",
         ("hf", "speedup_vs_hf_eager"), ">=", 2.0),
    Goal("vs_full_throughput", "frozen-backbone (AdaptMLP) clips/s vs full fine-tune",
         ("ratios", "adaptmlp_vs_full_throughput"), ">=", 1.25),
    Goal("vs_full_memory", "AdaptMLP peak memory vs full fine-tune",
         ("ratios", "adaptmlp_vs_full_memory"), "<=", 0.6),
)


@dataclass(frozen=True)
class Options:
    """How the GPU suite runs (filled in by the command line; see __main__.py)."""

    device: torch.device
    shape: Shape
    amp_dtype: torch.dtype | None
    timing: Timing
    frames: tuple[int, ...]
    peak_tflops: float | None
    peak_source: str
    compile_backend: str
    profile: bool


def options(device: torch.device, *, quick: bool, batch: int | None, amp: str,
            peak_override: float | None, compile_backend: str | None, profile: bool) -> Options:
    """Defaults: ViT-B 16x224 batch 8, bf16 on CUDA (fp32 on CPU); --quick: videomae_tiny at
    4 frames x 32 px, batch 2, few repeats (a smoke test that runs on a CPU in seconds)."""
    if quick:
        shape, timing = Shape("videomae_tiny", 4, 32, batch or 2), Timing(1, 3, 1)
    else:
        shape, timing = Shape("videomae_base", 16, 224, batch or 8), Timing(5, 10, 5)
    if amp == "auto":
        amp = "bf16" if device.type == "cuda" else "off"
    peak, source = peak_tflops(device, peak_override)
    backend = compile_backend or ("inductor" if device.type == "cuda" else "aot_eager")
    return Options(device, shape, {"bf16": torch.bfloat16, "off": None}[amp], timing,
                   (4, 8, 16, 32), peak, source, backend, profile)


# ----------------------------------------------------------------------------- step builders

def videopeft_step(opts: Options, method: str, shape: Shape | None = None,
                   checkpointing: bool = False) -> Callable[[], TrainStep]:
    """A builder of videopeft's training step for `method` (built when the measurement starts)."""
    shape = shape or opts.shape

    def build() -> TrainStep:
        model = build_videopeft(shape, method, checkpointing=checkpointing)
        return make_step(model, shape, opts.device, opts.amp_dtype)
    return build


def hf_step(opts: Options, impl: str) -> Callable[[], TrainStep]:
    """A builder of HF VideoMAE + parallel adapter's training step, attention `impl`."""
    from .hf import add_parallel_adapters, hf_videomae

    def build() -> TrainStep:
        torch.manual_seed(0)
        s = opts.shape
        model = hf_videomae(s.arch, frames=s.frames, size=s.img_size,
                            num_classes=s.num_classes, impl=impl)
        add_parallel_adapters(model, METHODS[MAIN]["bottleneck"])
        return make_step(model, s, opts.device, opts.amp_dtype,
                         forward=lambda x: model(pixel_values=x).logits, channels_first=False)
    return build


def _measure(opts: Options, label: str, build: Callable[[], TrainStep], **kw: Any) -> Measurement:
    m = measure(label, build, opts.device, opts.timing, peak=opts.peak_tflops, **kw)
    mfu = f", MFU {m.mfu:.1%}" if m.mfu is not None else ""
    mem = f", {m.peak_memory_mib / 1024:.2f} GiB" if m.peak_memory_mib is not None else ""
    print(f"  {label}: {m.clips_per_s:.2f} clips/s, {m.achieved_tflops:.3g} TFLOP/s{mfu}{mem}",
          flush=True)
    return m


# ----------------------------------------------------------------------------- sections

def methods_section(opts: Options) -> dict[str, Measurement]:
    """Every PEFT method at the suite's shape."""
    return {name: _measure(opts, name, videopeft_step(opts, name), notes={"method": cfg})
            for name, cfg in METHODS.items()}


def hf_section(opts: Options, ours: Measurement) -> dict:
    """HF VideoMAE + adapter, eager and sdpa, against videopeft's AdaptMLP measurement; their
    model FLOPs are videopeft's AdaptMLP step's (same architecture, adapter and trainable set)."""
    out: dict[str, Any] = {"videopeft_adaptmlp_clips_per_s": ours.clips_per_s,
                           "videopeft_params_trainable": ours.params_trainable}
    for impl in ("eager", "sdpa"):
        m = _measure(opts, f"hf_{impl}_adapter", hf_step(opts, impl), flops=ours.flops_per_step)
        out[f"hf_{impl}"] = m.to_dict()
        out[f"speedup_vs_hf_{impl}"] = ratio(ours.clips_per_s, m.clips_per_s)
    out["same_trainable_params"] = (out["hf_eager"]["params_trainable"] == ours.params_trainable)
    return out


def guarded(label: str, fn: Callable[[], dict], device: torch.device) -> dict:
    """`fn()`, or {"error": ...} when it raised: one failed measurement (out of memory, a compile
    error) is recorded as such and must not lose the rest of a long run."""
    try:
        return fn()
    except Exception as err:  # noqa: BLE001 - recorded in the results, not swallowed
        torch._dynamo.reset()
        free_memory(device)
        message = f"{type(err).__name__}: {(str(err).splitlines() or [''])[0]}"
        print(f"  {label} FAILED: {message}", flush=True)
        return {"error": message}


def frames_section(opts: Options) -> dict[str, list[dict]]:
    """AdaptMLP and VPT at each frame count, with the attention share profiled; a frame count
    that fails (e.g. out of memory at 32 frames) gives a row with its error."""
    def row(method: str, t: int) -> dict:
        shape = replace(opts.shape, frames=t)
        return guarded(f"{method}@{t}f", lambda: _measure(
            opts, f"{method}@{t}f", videopeft_step(opts, method, shape),
            with_attention=True).to_dict(), opts.device) | {"frames": t}
    return {method: [row(method, t) for t in opts.frames] for method in FRAME_METHODS}


def compile_section(opts: Options, eager: Measurement) -> dict:
    """AdaptMLP compiled (FLOPs from the eager measurement: compiling changes no model work)."""
    compiled = _measure(opts, f"{MAIN}+compile", videopeft_step(opts, MAIN),
                        flops=eager.flops_per_step, compile_backend=opts.compile_backend)
    return {"backend": opts.compile_backend, "eager": eager.to_dict(),
            "compiled": compiled.to_dict(),
            "speedup": ratio(compiled.clips_per_s, eager.clips_per_s)}


def checkpointing_section(opts: Options, off: Measurement) -> dict:
    """AdaptMLP with gradient checkpointing over blocks (VideoViT's use_checkpoint)."""
    on = _measure(opts, f"{MAIN}+checkpointing", videopeft_step(opts, MAIN, checkpointing=True),
                  flops=off.flops_per_step)
    return {"off": off.to_dict(), "on": on.to_dict(),
            "throughput_ratio_on_vs_off": ratio(on.clips_per_s, off.clips_per_s),
            "memory_ratio_on_vs_off": ratio(on.peak_memory_mib, off.peak_memory_mib)}


def run(opts: Options, stem: Path) -> dict:
    """Every section, the ratios and the goals; `stem` names the profile files."""
    print(f"GPU suite on {opts.device}: {opts.shape}", flush=True)
    methods = methods_section(opts)
    main, full = methods[MAIN], methods["full"]
    record: dict[str, Any] = {
        "options": {"shape": asdict(opts.shape), "tokens": opts.shape.tokens,
                    "amp": str(opts.amp_dtype).replace("torch.", "") if opts.amp_dtype else "off",
                    "timing": asdict(opts.timing), "frames": list(opts.frames),
                    "peak_tflops": opts.peak_tflops, "peak_source": opts.peak_source,
                    "compile_backend": opts.compile_backend,
                    "optimizer": "AdamW (fused on CUDA)", "loss": "cross_entropy",
                    "cudnn_benchmark": torch.backends.cudnn.benchmark},
        "methods": {name: m.to_dict() for name, m in methods.items()},
    }
    record["hf"] = guarded("hf", lambda: hf_section(opts, main), opts.device)
    record["ratios"] = {
        "adaptmlp_vs_full_throughput": ratio(main.clips_per_s, full.clips_per_s),
        "adaptmlp_vs_full_memory": ratio(main.peak_memory_mib, full.peak_memory_mib)}
    record["frames"] = frames_section(opts)
    record["compile"] = guarded("compile", lambda: compile_section(opts, main), opts.device)
    record["checkpointing"] = guarded("checkpointing", lambda: checkpointing_section(opts, main),
                                      opts.device)
    record["goals"] = [g.check(record) for g in GOALS]
    if opts.profile:
        record["profile"] = guarded("profile", lambda: write_profile(
            videopeft_step(opts, MAIN)(), opts.device, stem.parent / f"{stem.name}-{MAIN}"),
            opts.device)
    return record


# ----------------------------------------------------------------------------- markdown

def _num(value: float | None, fmt: str, none: str = "n/a") -> str:
    return none if value is None else format(value, fmt)


def _x(value: float | None) -> str:
    return _num(value, ".2f") + ("x" if value is not None else "")


def _gib(mib: float | None) -> str:
    return _num(None if mib is None else mib / 1024, ".2f")


def _row(label: str, m: dict) -> str:
    return (f"| {label} | {m['params_trainable']:,} | {m['step_s']['median'] * 1e3:.1f} "
            f"| {m['clips_per_s']:.2f} | {m['achieved_tflops']:.3g} | {_num(m['mfu'], '.1%')} "
            f"| {_gib(m['peak_memory_mib'])} |")


HEADER = ["| run | trainable params | step ms | clips/s | TFLOP/s | MFU | peak memory GiB |",
          "|---|---:|---:|---:|---:|---:|---:|"]


def _failed(title: str, section: dict) -> list[str]:
    return ["", f"### {title}", "", f"Failed: `{section['error']}`"]


def markdown(record: dict) -> list[str]:
    o = record["options"]
    s = o["shape"]
    lines = [f"## Training: {s['arch']}, {s['frames']} frames x {s['img_size']} px "
             f"({o['tokens']} tokens), batch {s['batch']}, amp {o['amp']}", "",
             f"Step = forward + backward + AdamW; median of {o['timing']['repeats']} timings of "
             f"{o['timing']['inner']} steps after {o['timing']['warmup']} warm-up. FLOPs = "
             f"model FLOPs of forward + backward for the method's trainable set "
             f"(videopeft.models.flops.training_flops; multiply-add = 2 FLOPs); MFU against "
             + (f"{o['peak_tflops']:g} TFLOP/s ({o['peak_source']})." if o["peak_tflops"]
                else f"no peak: {o['peak_source']}."), "",
             "### Methods", "", *HEADER]
    lines += [_row(name, m) for name, m in record["methods"].items()]
    r = record["ratios"]
    lines += ["", f"AdaptMLP vs full fine-tune: {r['adaptmlp_vs_full_throughput']:.2f}x clips/s, "
              f"{_x(r['adaptmlp_vs_full_memory'])} peak memory."]
    hf, title = record["hf"], "AdaptMLP-64: videopeft vs HF VideoMAE + the same adapter"
    lines += _failed(title, hf) if "error" in hf else [
        "", f"### {title}", "", *HEADER, _row("videopeft adaptmlp", record["methods"][MAIN]),
        _row("HF eager + adapter", hf["hf_eager"]), _row("HF sdpa + adapter", hf["hf_sdpa"]),
        "", f"videopeft speed-up: {hf['speedup_vs_hf_eager']:.2f}x over HF eager, "
        f"{hf['speedup_vs_hf_sdpa']:.2f}x over HF sdpa (same trainable parameters: "
        f"{hf['same_trainable_params']})."]
    lines += ["", "### Frame count (attention share = time inside scaled-dot-product attention, "
              "forward + backward, from torch.profiler)", "",
              "| method | frames | tokens | clips/s | MFU | peak memory GiB | attention share |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for method, rows in record["frames"].items():
        lines += [f"| {method} | {m['frames']} | failed: `{m['error']}` | | | | |" if "error" in m
                  else f"| {method} | {m['frames']} | {m['tokens']} | {m['clips_per_s']:.2f} "
                  f"| {_num(m['mfu'], '.1%')} | {_gib(m['peak_memory_mib'])} "
                  f"| {m['attention_share']:.1%} |" for m in rows]
    c, g = record["compile"], record["checkpointing"]
    if "error" in c:
        lines += _failed("torch.compile", c)
    else:
        lines += ["", f"### torch.compile (backend {c['backend']}), AdaptMLP", "", *HEADER,
                  _row("eager", c["eager"]), _row("compiled", c["compiled"]), "",
                  f"compile: {c['speedup']:.2f}x clips/s (first step with compilation "
                  f"{c['compiled']['first_step_s']:.1f} s)."]
    if "error" in g:
        lines += _failed("Gradient checkpointing", g)
    else:
        lines += ["", "### Gradient checkpointing over blocks, AdaptMLP", "", *HEADER,
                  _row("off", g["off"]), _row("on", g["on"]), "",
                  f"checkpointing: {g['throughput_ratio_on_vs_off']:.2f}x clips/s, "
                  f"{_x(g['memory_ratio_on_vs_off'])} peak memory."]
    return lines


def markdown_goals(goals: list[dict]) -> list[str]:
    lines = ["## Goals", "", "| goal | value | target | result |", "|---|---:|---:|---|"]
    for g in goals:
        verdict = {True: "pass", False: "FAIL", None: "not measured here"}[g["passed"]]
        lines.append(f"| {g['description']} | {_num(g['value'], '.3g')} | {g['op']} "
                     f"{g['target']:g} | {verdict} |")
    return lines
