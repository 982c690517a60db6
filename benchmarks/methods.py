"""AdaptMLP (bottleneck 64) vs full fine-tuning on CPU: train-step time and peak memory.

Each (method, round) runs in its own child process (`python -m benchmarks.methods --child ...`),
so one method's allocations never count in the other's peak RSS; rounds alternate the methods
(adaptmlp, full, adaptmlp, full, ...) so load from other jobs hits both alike. A child builds the
model, the optimizer and a random batch, reads its RSS, runs warm-up and timed `TrainStep`s
(forward, backward, AdamW, zero_grad) and reports its step times and peak RSS
(VmHWM from /proc/self/status; `ru_maxrss` would carry the parent's peak into the child). Peak RSS includes the Python + torch baseline (~hundreds of MiB), which
dilutes the ratio, so the growth over the RSS before the first step (gradients, optimizer state,
activations) is reported too.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass

from .common import Stat, current_rss_mb, peak_rss_mb, ratio, run_child

COMPARED = ("adaptmlp", "full")


@dataclass(frozen=True)
class Size:
    """What each child trains: model and input shape, and how many steps it times."""

    arch: str = "videomae_small"
    frames: int = 8
    img_size: int = 112
    batch: int = 2
    warmup: int = 2
    steps: int = 8
    rounds: int = 2


DEFAULT = Size()
QUICK = Size(arch="videomae_tiny", frames=8, img_size=32, batch=2, warmup=1, steps=3, rounds=1)


def child(method: str, size: Size, threads: int) -> dict:
    """Runs in the child process: time `size.steps` train steps of `method`, report memory."""
    import torch

    from .common import repeat_timed
    from .training import Shape, build_videopeft, make_step

    torch.set_num_threads(threads)
    shape = Shape(size.arch, size.frames, size.img_size, size.batch)
    step = make_step(build_videopeft(shape, method), shape, torch.device("cpu"), None)
    rss_before = current_rss_mb()
    stat = repeat_timed(step, torch.device("cpu"), warmup=size.warmup, repeats=size.steps)
    params = list(step.model.parameters())
    return {"method": method, "step_s": stat.values, "rss_before_mb": rss_before,
            "peak_rss_mb": peak_rss_mb(),
            "params_total": sum(p.numel() for p in params),
            "params_trainable": sum(p.numel() for p in params if p.requires_grad)}


def run(quick: bool, threads: int) -> dict:
    """The methods section: alternate child runs, pool their step times, compare."""
    size = QUICK if quick else DEFAULT
    runs: dict[str, list[dict]] = {m: [] for m in COMPARED}
    args = ["--size", json.dumps(asdict(size)), "--threads", str(threads)]
    for _ in range(size.rounds):
        for method in COMPARED:
            runs[method].append(run_child("benchmarks.methods", ["--method", method, *args],
                                          threads=threads))
    per: dict[str, dict] = {}
    for method, rs in runs.items():
        step = Stat.of([t for r in rs for t in r["step_s"]])
        peak = Stat.of([r["peak_rss_mb"] for r in rs])
        growth = Stat.of([r["peak_rss_mb"] - r["rss_before_mb"] for r in rs])
        per[method] = {"step_s": step.to_dict(), "clips_per_s": size.batch / step.median,
                       "peak_rss_mb": peak.to_dict(), "rss_growth_mb": growth.to_dict(),
                       "params_total": rs[0]["params_total"],
                       "params_trainable": rs[0]["params_trainable"], "children": len(rs)}
    a, f = per["adaptmlp"], per["full"]
    return {
        "size": asdict(size), "threads": threads, "methods": per,
        "speedup_adaptmlp_vs_full": ratio(f["step_s"]["median"], a["step_s"]["median"]),
        "peak_rss_ratio_adaptmlp_vs_full": ratio(a["peak_rss_mb"]["median"],
                                                 f["peak_rss_mb"]["median"]),
        "rss_growth_ratio_adaptmlp_vs_full": ratio(a["rss_growth_mb"]["median"],
                                                   f["rss_growth_mb"]["median"]),
    }


def markdown(section: dict) -> list[str]:
    s = section["size"]
    lines = ["## AdaptMLP-64 vs full fine-tuning (CPU train step, one child process each)", "",
             f"{s['arch']}, batch {s['batch']} x {s['frames']} frames x {s['img_size']} px, "
             f"{section['threads']} threads; forward + backward + AdamW; {s['rounds']} "
             f"alternating child runs per method, {s['steps']} timed steps each.", "",
             "| method | trainable params | step ms | clips/s | peak RSS MiB "
             "| RSS growth in training MiB |", "|---|---:|---:|---:|---:|---:|"]
    for name, m in section["methods"].items():
        lines.append(f"| {name} | {m['params_trainable']:,} | {m['step_s']['median'] * 1e3:.1f} "
                     f"| {m['clips_per_s']:.2f} | {m['peak_rss_mb']['median']:.0f} "
                     f"| {m['rss_growth_mb']['median']:.0f} |")
    lines += ["", f"AdaptMLP speed-up over full: {section['speedup_adaptmlp_vs_full']:.2f}x; "
              f"peak RSS ratio {section['peak_rss_ratio_adaptmlp_vs_full']:.2f}x; RSS growth "
              f"ratio {section['rss_growth_ratio_adaptmlp_vs_full']:.2f}x."]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="child process of the methods benchmark")
    parser.add_argument("--child", action="store_true", required=True)
    parser.add_argument("--method", choices=COMPARED, required=True)
    parser.add_argument("--size", type=json.loads, required=True, help="a Size as JSON")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    result = child(args.method, Size(**args.size), args.threads)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
