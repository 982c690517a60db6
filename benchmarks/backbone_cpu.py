"""Forward+backward time of videopeft's VideoViT vs transformers VideoMAE (eager and sdpa) on CPU.

Same sizes, same weights (copied with videopeft's HF converter and checked for equal logits), same
process; repeats are interleaved (ours, HF eager, HF sdpa, ours, ...) after a warm-up, and the
median is reported. Goal: ratio ours / HF <= 1.0. Results go to
`benchmarks/results/<YYYY-MM-DD>-cpu-<cores>core-backbone_cpu.{json,md}`.

    python benchmarks/backbone_cpu.py [--repeats N] [--warmup 3] [--threads N]   # package installed
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Callable

import torch
import transformers

import videopeft
from videopeft.models.checkpoints import convert_state_dict

CASES = {  # name: (videopeft arch, HF config overrides, frames, size, batch, repeats, steps/sample)
    "tiny": ("videomae_tiny", dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=3,
                                   intermediate_size=192), 16, 64, 4, 20, 10),
    "small": ("videomae_small", dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                                     intermediate_size=1536), 8, 112, 2, 16, 1),
}
NUM_CLASSES = 10


def cpu_name() -> str:
    """The CPU model from lscpu, falling back to platform.processor()."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or platform.machine()
    for line in out.splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def build_pair(case: str) -> tuple[torch.nn.Module, dict[str, torch.nn.Module], torch.Tensor]:
    """videopeft model and HF models (eager, sdpa) with identical weights, plus an input."""
    arch, hf_kw, frames, size, batch, _, _ = CASES[case]
    torch.manual_seed(0)
    hf = {}
    for impl in ("eager", "sdpa"):
        cfg = transformers.VideoMAEConfig(image_size=size, patch_size=16, num_frames=frames,
                                          num_labels=NUM_CLASSES, layer_norm_eps=1e-6,
                                          attn_implementation=impl, **hf_kw)
        hf[impl] = transformers.VideoMAEForVideoClassification(cfg)
        hf[impl].fc_norm.eps = 1e-6
    hf["sdpa"].load_state_dict(hf["eager"].state_dict())
    ours = videopeft.create_model(arch, num_classes=NUM_CLASSES, num_frames=frames, img_size=size)
    sd, _ = convert_state_dict(hf["eager"].state_dict(), ours)
    missing, unexpected = ours.load_state_dict(sd, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    x = torch.randn(batch, 3, frames, size, size)
    with torch.no_grad():
        ref = ours.eval()(x)
        for impl, model in hf.items():
            delta = (model.eval()(pixel_values=x.permute(0, 2, 1, 3, 4)).logits - ref).abs().max()
            assert delta < 1e-3, f"{case} {impl}: logits differ by {delta:.2e}"
    return ours, hf, x


def step_fn(model: torch.nn.Module, x: torch.Tensor, hf_input: bool,
            inner: int = 1) -> Callable[[], tuple[float, float]]:
    """Timed forward+backward (train mode, grads cleared first), mean over `inner` steps:
    (wall s, process CPU s).

    CPU time is the steadier number on a shared machine: it does not grow while the process
    waits for a core (it does count OpenMP spinning when threads > 1).
    """
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


def clean_rounds(times: dict[str, list[float]], slack: float = 1.3) -> list[int]:
    """Rounds (one step of every model) not disturbed by other jobs: total wall time within
    `slack` x the best round's. On a shared CPU a disturbed round can take 10x longer."""
    totals = [sum(v[i] for v in times.values()) for i in range(len(next(iter(times.values()))))]
    best = min(totals)
    return [i for i, t in enumerate(totals) if t <= slack * best]


def run_case(case: str, repeats: int | None, warmup: int) -> dict:
    ours, hf, x = build_pair(case)
    *_, default_repeats, inner = CASES[case]
    repeats = repeats or default_repeats
    steps = {"videopeft": step_fn(ours, x, False, inner),
             "hf_eager": step_fn(hf["eager"], x, True, inner),
             "hf_sdpa": step_fn(hf["sdpa"], x, True, inner)}
    times: dict[str, list[float]] = {k: [] for k in steps}
    cpu: dict[str, list[float]] = {k: [] for k in steps}
    names = list(steps)
    for i in range(warmup + repeats):
        # interleaved, so drift hits every model alike; the order rotates so none always goes first
        for name in names[i % len(names):] + names[:i % len(names)]:
            wall, used = steps[name]()
            if i >= warmup:
                times[name].append(wall)
                cpu[name].append(used)
    clean = clean_rounds(times)
    med = {k: statistics.median(v[i] for i in clean) for k, v in times.items()}
    med_cpu = {k: statistics.median(v[i] for i in clean) for k, v in cpu.items()}
    arch, _, frames, size, batch, _, _ = CASES[case]
    return {"case": case, "arch": arch, "frames": frames, "img_size": size, "batch": batch,
            "tokens": (frames // 2) * (size // 16) ** 2,
            "params": sum(p.numel() for p in ours.parameters()),
            "repeats": repeats, "steps_per_sample": inner, "clean_rounds": len(clean),
            "median_s": med,
            "median_all_rounds_s": {k: statistics.median(v) for k, v in times.items()},
            "min_s": {k: min(v) for k, v in times.items()}, "all_s": times,
            "median_cpu_s": med_cpu, "all_cpu_s": cpu,
            "cpu_ratio_vs_hf_eager": med_cpu["videopeft"] / med_cpu["hf_eager"],
            "cpu_ratio_vs_hf_sdpa": med_cpu["videopeft"] / med_cpu["hf_sdpa"],
            "ratio_vs_hf_eager": med["videopeft"] / med["hf_eager"],
            "ratio_vs_hf_sdpa": med["videopeft"] / med["hf_sdpa"],
            "ratio_of_min_vs_hf_eager": min(times["videopeft"]) / min(times["hf_eager"]),
            "ratio_of_min_vs_hf_sdpa": min(times["videopeft"]) / min(times["hf_sdpa"])}


def write_results(results: list[dict], meta: dict, out_dir: Path) -> tuple[Path, Path]:
    """JSON with every timing, and a Markdown table of medians and ratios."""
    stem = f"{meta['date']}-cpu-{meta['threads']}core-backbone_cpu"
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    lines = [f"# backbone_cpu: videopeft vs HF VideoMAE, forward+backward ({meta['date']})", "",
             f"Device: {meta['device']}, torch threads: {meta['threads']}; torch {meta['torch']}, "
             f"transformers {meta['transformers']}; wall-clock median (and min) and median "
             f"process CPU time over the undisturbed rounds (total within 1.3x of the best "
             f"round) of interleaved repeats "
             f"after {meta['warmup']} warm-up; load average {meta['load_average_at_start']:.2f} "
             f"at start, {meta['load_average_at_end']:.2f} at end (other jobs share the CPU when "
             f"it exceeds the thread count: trust CPU time and min then).", "",
             "| case | input (B, T, px) | tokens | videopeft ms (min) | HF eager ms (min) "
             "| HF sdpa ms (min) "
             "| ours / eager (min) | ours / sdpa (min) | CPU-time ours / eager | ours / sdpa "
             "| clean / repeats |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        m, lo = r["median_s"], r["min_s"]
        cells = [f"{m[k] * 1e3:.1f} ({lo[k] * 1e3:.1f})"
                 for k in ("videopeft", "hf_eager", "hf_sdpa")]
        lines.append(f"| {r['case']} ({r['arch']}) | {r['batch']}, {r['frames']}, {r['img_size']} "
                     f"| {r['tokens']} | {' | '.join(cells)} "
                     f"| {r['ratio_vs_hf_eager']:.2f}x ({r['ratio_of_min_vs_hf_eager']:.2f}x) "
                     f"| {r['ratio_vs_hf_sdpa']:.2f}x ({r['ratio_of_min_vs_hf_sdpa']:.2f}x) "
                     f"| {r['cpu_ratio_vs_hf_eager']:.2f}x | {r['cpu_ratio_vs_hf_sdpa']:.2f}x "
                     f"| {r['clean_rounds']} / {r['repeats']} |")
    md_path.write_text("\n".join(lines) + "\n")
    return json_path, md_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None, help="per case (default: 20 / 16)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    meta = {"date": datetime.date.today().isoformat(), "device": cpu_name(),
            "threads": args.threads, "torch": torch.__version__,
            "transformers": transformers.__version__, "repeats": args.repeats,
            "warmup": args.warmup, "python": platform.python_version(),
            "load_average_at_start": os.getloadavg()[0]}
    results = []
    for case in args.cases:
        r = run_case(case, args.repeats, args.warmup)
        results.append(r)
        m = r["median_s"]
        print(f"{case:6s} ({r['clean_rounds']}/{r['repeats']} clean rounds) median: videopeft "
              f"{m['videopeft'] * 1e3:8.1f} ms | HF eager "
              f"{m['hf_eager'] * 1e3:8.1f} ms ({r['ratio_vs_hf_eager']:.2f}x) | HF sdpa "
              f"{m['hf_sdpa'] * 1e3:8.1f} ms ({r['ratio_vs_hf_sdpa']:.2f}x); ratios of min "
              f"{r['ratio_of_min_vs_hf_eager']:.2f}x / {r['ratio_of_min_vs_hf_sdpa']:.2f}x; "
              f"CPU-time ratios {r['cpu_ratio_vs_hf_eager']:.2f}x / "
              f"{r['cpu_ratio_vs_hf_sdpa']:.2f}x")
    meta["load_average_at_end"] = os.getloadavg()[0]
    json_path, md_path = write_results(results, meta, args.out)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
