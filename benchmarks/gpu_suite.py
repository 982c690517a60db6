"""The GPU suite: ViT-B 16x224 bf16 training throughput, MFU, memory and scaling per PEFT method.

Sections (all at the same batch; see training.py for how a step is timed and FLOPs are counted):
    methods        clips/s, TFLOP/s, MFU and peak memory of AdaptMLP-64, VPT-deep, LoRA, linear,
                   full fine-tuning
    hf             the AdaptMLP step against HF VideoMAE (eager and sdpa attention) with the same
                   parallel bottleneck adapter (hf.py), same trainable parameter count
    frames         AdaptMLP and VPT at 4, 8, 16, 32 frames: clips/s, memory, attention share
    compile        AdaptMLP eager vs torch.compile (first step, with compilation, timed apart)
    checkpointing  AdaptMLP without and with gradient checkpointing over blocks
    activations    bytes autograd saves per clip for each method (activations.py): the memory a
                   frozen backbone is meant to save, independent of the allocator
    ratios, goals  the issue's targets, pass/fail (null where this device cannot measure them)
    profile        with --profile: torch.profiler table and trace of the AdaptMLP step

It imports no decoder (random tensors as input): the GPU machine has no decord/av. On a CPU it
runs end to end at `--quick` size (videomae_tiny) for tests; memory and MFU are null there.

With a time budget, a section (or frame-count row) that would start after it is recorded as
skipped instead of run, and `on_section` lets the caller write the record after every section,
so a run stopped from outside still leaves what it measured.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch

from .common import ratio
from .training import (METHODS, Measurement, Shape, Timing, TrainStep, batch_for_card,
                       build_videopeft, free_memory, make_step, measure, peak_tflops,
                       write_profile)

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
    batch_source: str = "--batch"
    time_budget_s: float | None = None  # sections that would start later are skipped


def options(device: torch.device, *, quick: bool, batch: int | None, amp: str,
            peak_override: float | None, compile_backend: str | None, profile: bool,
            time_budget_s: float | None = None) -> Options:
    """Defaults: ViT-B 16x224, the batch sized to the card (`training.CARD_BATCH`: 32 on an
    H100/H200-class card, 8 off a GPU), bf16 on CUDA (fp32 on CPU); --quick: videomae_tiny at
    4 frames x 32 px, batch 2, few repeats (a smoke test that runs on a CPU in seconds)."""
    source = "--batch"
    if quick:
        shape, timing = Shape("videomae_tiny", 4, 32, batch or 2), Timing(1, 3, 1)
        source = source if batch else "--quick"
    else:
        if batch is None:
            batch, source = batch_for_card(device)
        shape, timing = Shape("videomae_base", 16, 224, batch), Timing(3, 8, 4)
    if amp == "auto":
        amp = "bf16" if device.type == "cuda" else "off"
    peak, peak_source = peak_tflops(device, peak_override)
    backend = compile_backend or ("inductor" if device.type == "cuda" else "aot_eager")
    return Options(device, shape, {"bf16": torch.bfloat16, "off": None}[amp], timing,
                   (4, 8, 16, 32), peak, peak_source, backend, profile, source, time_budget_s)


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

def methods_section(opts: Options, deadline: float | None) -> tuple[dict, dict[str, Measurement]]:
    """Every PEFT method at the suite's shape: the record (a method that fails, out of memory
    say, gets its error) and the measurements that succeeded."""
    measured: dict[str, Measurement] = {}

    def one(name: str, cfg: dict) -> dict:
        measured[name] = _measure(opts, name, videopeft_step(opts, name), notes={"method": cfg})
        return measured[name].to_dict()
    record = {name: guarded(name, lambda: one(name, cfg), opts.device, deadline)
              for name, cfg in METHODS.items()}
    return record, measured


def hf_section(opts: Options, ours: Measurement | None) -> dict:
    """HF VideoMAE + adapter, eager and sdpa, against videopeft's AdaptMLP measurement; their
    model FLOPs are videopeft's AdaptMLP step's (same architecture, adapter and trainable set)."""
    if ours is None:
        raise RuntimeError(f"no {MAIN} measurement to compare with")
    out: dict[str, Any] = {"videopeft_adaptmlp_clips_per_s": ours.clips_per_s,
                           "videopeft_params_trainable": ours.params_trainable}
    for impl in ("eager", "sdpa"):  # each on its own: eager may run out of memory, sdpa not
        m = guarded(f"hf_{impl}", lambda: _measure(opts, f"hf_{impl}_adapter", hf_step(opts, impl),
                                                   flops=ours.flops_per_step).to_dict(),
                    opts.device)
        out[f"hf_{impl}"] = m
        out[f"speedup_vs_hf_{impl}"] = ratio(ours.clips_per_s, m.get("clips_per_s"))
    counts = {m["params_trainable"] for m in (out["hf_eager"], out["hf_sdpa"]) if "error" not in m}
    out["same_trainable_params"] = counts == {ours.params_trainable} if counts else None
    return out


def activations_section(opts: Options) -> dict:
    """Saved-for-backward bytes per clip of each method's training forward (activations.py), at
    the suite's shape and autocast, and each method's ratio to full fine-tuning."""
    from .activations import saved_bytes_per_clip

    s = opts.shape
    per_clip: dict[str, float] = {}
    for name in METHODS:
        model = build_videopeft(s, name).to(opts.device)
        per_clip[name] = saved_bytes_per_clip(model, (3, s.frames, s.img_size, s.img_size),
                                              opts.device, amp_dtype=opts.amp_dtype) / 2**20
        del model
        free_memory(opts.device)
    return {"saved_mib_per_clip": per_clip,
            "vs_full": {name: ratio(v, per_clip["full"]) for name, v in per_clip.items()}}


def guarded(label: str, fn: Callable[[], dict], device: torch.device,
            deadline: float | None = None) -> dict:
    """`fn()`, or {"error": ...} when it raised: one failed measurement (out of memory, a compile
    error) is recorded as such and must not lose the rest of a long run. Past `deadline`
    (time.monotonic) `fn` is not started and the error says it was skipped."""
    if deadline is not None and time.monotonic() > deadline:
        print(f"  {label} skipped: past the time budget", flush=True)
        return {"error": "skipped: past the time budget"}
    try:
        return fn()
    except Exception as err:  # noqa: BLE001 - recorded in the results, not swallowed
        torch._dynamo.reset()
        free_memory(device)
        message = f"{type(err).__name__}: {(str(err).splitlines() or [''])[0]}"
        print(f"  {label} FAILED: {message}", flush=True)
        return {"error": message}


def frames_section(opts: Options, deadline: float | None = None) -> dict[str, list[dict]]:
    """AdaptMLP and VPT at each frame count, with the attention share profiled; a frame count
    that fails (e.g. out of memory at 32 frames) gives a row with its error."""
    def row(method: str, t: int) -> dict:
        shape = replace(opts.shape, frames=t)
        return guarded(f"{method}@{t}f", lambda: _measure(
            opts, f"{method}@{t}f", videopeft_step(opts, method, shape),
            with_attention=True).to_dict(), opts.device, deadline) | {"frames": t}
    return {method: [row(method, t) for t in opts.frames] for method in FRAME_METHODS}


def compile_section(opts: Options, eager: Measurement | None) -> dict:
    """AdaptMLP compiled (FLOPs from the eager measurement: compiling changes no model work)."""
    if eager is None:
        raise RuntimeError(f"no eager {MAIN} measurement to compare with")
    compiled = _measure(opts, f"{MAIN}+compile", videopeft_step(opts, MAIN),
                        flops=eager.flops_per_step, compile_backend=opts.compile_backend)
    return {"backend": opts.compile_backend, "eager": eager.to_dict(),
            "compiled": compiled.to_dict(),
            "speedup": ratio(compiled.clips_per_s, eager.clips_per_s)}


def checkpointing_section(opts: Options, off: Measurement | None) -> dict:
    """AdaptMLP with gradient checkpointing over blocks (VideoViT's use_checkpoint)."""
    if off is None:
        raise RuntimeError(f"no {MAIN} measurement without checkpointing to compare with")
    on = _measure(opts, f"{MAIN}+checkpointing", videopeft_step(opts, MAIN, checkpointing=True),
                  flops=off.flops_per_step)
    return {"off": off.to_dict(), "on": on.to_dict(),
            "throughput_ratio_on_vs_off": ratio(on.clips_per_s, off.clips_per_s),
            "memory_ratio_on_vs_off": ratio(on.peak_memory_mib, off.peak_memory_mib)}


def ratios(measured: dict[str, Measurement]) -> dict[str, float | None]:
    """Each method's clips/s and peak memory over full fine-tuning's, at the same batch."""
    full = measured.get("full")
    out: dict[str, float | None] = {}
    for name in METHODS:
        if name == "full":
            continue
        m = measured.get(name)
        if m is None or full is None:
            out[f"{name}_vs_full_throughput"] = out[f"{name}_vs_full_memory"] = None
            continue
        out[f"{name}_vs_full_throughput"] = ratio(m.clips_per_s, full.clips_per_s)
        out[f"{name}_vs_full_memory"] = ratio(m.peak_memory_mib, full.peak_memory_mib)
    return out


def run(opts: Options, stem: Path, on_section: Callable[[dict], None] | None = None) -> dict:
    """Every section, the ratios and the goals; `stem` names the profile files; `on_section`
    gets the record so far after each section (for writing partial results)."""
    deadline = None if opts.time_budget_s is None else time.monotonic() + opts.time_budget_s
    print(f"GPU suite on {opts.device}: {opts.shape} (batch: {opts.batch_source})", flush=True)
    record: dict[str, Any] = {
        "options": {"shape": asdict(opts.shape), "tokens": opts.shape.tokens,
                    "batch_source": opts.batch_source,
                    "amp": str(opts.amp_dtype).replace("torch.", "") if opts.amp_dtype else "off",
                    "timing": asdict(opts.timing), "frames": list(opts.frames),
                    "peak_tflops": opts.peak_tflops, "peak_source": opts.peak_source,
                    "compile_backend": opts.compile_backend, "time_budget_s": opts.time_budget_s,
                    "optimizer": "AdamW (fused on CUDA)", "loss": "cross_entropy",
                    "cudnn_benchmark": torch.backends.cudnn.benchmark},
    }

    def done() -> None:
        if on_section is not None:
            on_section(record)

    # cheapest and most wanted first: a run stopped by its budget loses the compile section
    record["methods"], measured = methods_section(opts, deadline)
    main = measured.get(MAIN)
    record["ratios"] = ratios(measured)
    done()
    record["hf"] = guarded("hf", lambda: hf_section(opts, main), opts.device, deadline)
    record["goals"] = [g.check(record) for g in GOALS]
    done()
    record["activations"] = guarded("activations", lambda: activations_section(opts),
                                    opts.device, deadline)
    record["ratios"]["adaptmlp_vs_full_saved_activations"] = (
        record["activations"].get("vs_full", {}).get(MAIN))
    record["checkpointing"] = guarded("checkpointing", lambda: checkpointing_section(opts, main),
                                      opts.device, deadline)
    done()
    if opts.profile:
        record["profile"] = guarded("profile", lambda: write_profile(
            videopeft_step(opts, MAIN)(), opts.device, stem.parent / f"{stem.name}-{MAIN}"),
            opts.device, deadline)
    record["frames"] = frames_section(opts, deadline)
    done()
    record["compile"] = guarded("compile", lambda: compile_section(opts, main), opts.device,
                                deadline)
    record["goals"] = [g.check(record) for g in GOALS]
    done()
    return record


# ----------------------------------------------------------------------------- markdown

def _num(value: float | None, fmt: str, none: str = "n/a") -> str:
    return none if value is None else format(value, fmt)


def _x(value: float | None) -> str:
    return _num(value, ".2f") + ("x" if value is not None else "")


def _gib(mib: float | None) -> str:
    return _num(None if mib is None else mib / 1024, ".2f")


def _row(label: str, m: dict) -> str:
    if "error" in m:
        return f"| {label} | failed: `{m['error']}` | | | | | |"
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
             f"({o['tokens']} tokens), batch {s['batch']} ({o['batch_source']}), amp {o['amp']}",
             "",
             f"Step = forward + backward + AdamW; median of {o['timing']['repeats']} timings of "
             f"{o['timing']['inner']} steps after {o['timing']['warmup']} warm-up. FLOPs = "
             f"model FLOPs of forward + backward for the method's trainable set "
             f"(videopeft.models.flops.training_flops; multiply-add = 2 FLOPs); MFU against "
             + (f"{o['peak_tflops']:g} TFLOP/s ({o['peak_source']})." if o["peak_tflops"]
                else f"no peak: {o['peak_source']}."), "",
             "### Methods", "", *HEADER]
    lines += [_row(name, m) for name, m in record["methods"].items()]
    r = record["ratios"]
    lines += ["", "vs full fine-tune at the same batch: " + "; ".join(
        f"{name} {_x(r[f'{name}_vs_full_throughput'])} clips/s, "
        f"{_x(r[f'{name}_vs_full_memory'])} peak memory" for name in record["methods"]
        if name != "full") + "."]
    act, title = record["activations"], "Saved activations per clip (autograd, saved_tensors_hooks)"
    lines += _failed(title, act) if "error" in act else [
        "", f"### {title}", "", "| method | MiB per clip | vs full |", "|---|---:|---:|",
        *(f"| {name} | {mib:.4g} | {_x(act['vs_full'][name])} |"
          for name, mib in act["saved_mib_per_clip"].items())]
    hf, title = record["hf"], "AdaptMLP-64: videopeft vs HF VideoMAE + the same adapter"
    lines += _failed(title, hf) if "error" in hf else [
        "", f"### {title}", "", *HEADER, _row("videopeft adaptmlp", record["methods"][MAIN]),
        _row("HF eager + adapter", hf["hf_eager"]), _row("HF sdpa + adapter", hf["hf_sdpa"]),
        "", f"videopeft speed-up: {_x(hf['speedup_vs_hf_eager'])} over HF eager, "
        f"{_x(hf['speedup_vs_hf_sdpa'])} over HF sdpa (same trainable parameters: "
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
