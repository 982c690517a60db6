"""Data-pipeline throughput on one CPU core: train clips/s and decode-once multi-view eval.

    python benchmarks/data_throughput.py [--videos 24 --size 128 --repeats 2]

Train: the full pipeline (open + count + decode + clip-consistent augmentation, VideoMAE recipe)
against a plain decord loop that decodes the same frame indices and does nothing else, plus two
intermediate rows to show where the time goes. Eval: `EvalVideoDataset` (decode the union of all
temporal views once, resize once, cut every view) against decoding and transforming each of the
T x S views separately, as VideoMAE's per-view dataset items do. Everything runs in this process
with torch.set_num_threads(1). Results go to benchmarks/results/<date>-<device>-data_throughput.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works uninstalled too

from videopeft.config import DataConfig  # noqa: E402
from videopeft.data import (  # noqa: E402
    EvalVideoDataset,
    Manifest,
    TrainClipDataset,
    build_eval_transform,
    build_train_transform,
    clip_indices,
    decode,
    open_video,
    read_annotations,
)
from videopeft.data.synthetic import write_synthetic  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
RECIPE = dict(num_frames=16, img_size=112, sampling="dense", stride=2, flip=True,
              rand_augment="rand-m7-n4-mstd0.5-inc1", random_erasing=0.25, backend="auto")


class _PlannedClips(TrainClipDataset):
    """The train dataset with frame indices fixed in advance, so every row decodes the same."""

    def __init__(self, records, cfg, plan, transform) -> None:
        super().__init__(records, cfg, Manifest(), transform=transform)
        self.plan = plan

    def load(self, index: int) -> torch.Tensor:
        with open_video(self.records[index].path, self.cfg.backend) as video:
            frames = video.get(self.plan[index])
        return self.transform(frames)


def _best_rates(runs: dict[str, Callable[[], int]], repeats: int) -> dict[str, float]:
    """Items per second of each run (a run returns how many items it made): the best of
    `repeats` rounds, rounds interleaved so that load from other processes hits every row alike."""
    best = dict.fromkeys(runs, 0.0)
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            items = run()
            best[name] = max(best[name], items / (time.perf_counter() - start))
    return best


def _train_rows(records, cfg: DataConfig, repeats: int) -> dict[str, float]:
    import decord

    gen = torch.Generator().manual_seed(0)
    plan = [clip_indices(cfg, len(decord.VideoReader(r.path)), train=True, generator=gen)
            for r in records]

    def reference() -> int:
        for record, indices in zip(records, plan):
            reader = decord.VideoReader(record.path, ctx=decord.cpu(0), num_threads=1)
            reader.get_batch(indices).asnumpy()
            del reader
        return len(records)

    def dataset_loop(transform) -> Callable[[], int]:
        dataset = _PlannedClips(records, cfg, plan, transform)
        return lambda: sum(1 for i in range(len(dataset)) if dataset[i] is not None)

    light = DataConfig(**{**RECIPE, "rand_augment": "", "random_erasing": 0.0})
    return _best_rates({
        "decord reference (decode only)": reference,
        "pipeline: decode only": dataset_loop(lambda frames: frames),
        "pipeline: + crop, flip, normalise": dataset_loop(build_train_transform(light)),
        "pipeline: full VideoMAE recipe (+ RandAugment, erasing)":
            dataset_loop(build_train_transform(cfg)),
    }, repeats)


def _eval_rows(records, cfg: DataConfig, temporal: int, spatial: int,
               repeats: int) -> dict[str, float]:
    once = EvalVideoDataset(records, cfg, temporal, spatial, short_side=128)
    transform = build_eval_transform(cfg, spatial, short_side=128)

    def decode_once() -> int:
        return sum(1 for i in range(len(once)) if once[i][3])

    def per_view() -> int:
        for record in records:
            with open_video(record.path) as video:
                n = video.num_frames
            for view in range(temporal):
                indices = clip_indices(cfg, n, train=False, view=view, num_views=temporal)
                for crop in range(spatial):
                    transform(decode(record.path, indices))[crop]
        return len(records)

    return _best_rates({"decode once (videos/s)": decode_once,
                        "each view separately (videos/s)": per_view}, repeats)


def _device() -> str:
    return f"cpu-{os.cpu_count()}core"


def _cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where there is one."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _markdown(result: dict) -> str:
    lines = [f"# Data throughput — {result['date']} — {result['device']}", "",
             f"One core (`torch.set_num_threads(1)`, no workers). {result['videos']} synthetic "
             f"H.264 videos, {result['size']} px tall, {result['frames']} frames; clips of "
             f"{RECIPE['num_frames']} frames at {RECIPE['img_size']} px, dense stride "
             f"{RECIPE['stride']}. CPU: {result['cpu']}. Load average when it started: "
             f"{result['load_average']} (other processes share the machine; rows are measured "
             f"in interleaved rounds and the best round is kept).", "",
             "## Train clips/s", "", "| pipeline | clips/s | vs decord reference |",
             "|---|---:|---:|"]
    ref = result["train"]["decord reference (decode only)"]
    for name, rate in result["train"].items():
        lines.append(f"| {name} | {rate:.1f} | {rate / ref:.2f}x |")
    lines += ["", "## Multi-view eval videos/s", "",
              "| views | decode once | each view separately | speed-up |", "|---|---:|---:|---:|"]
    for name, rows in result["eval"].items():
        once, sep = rows["decode once (videos/s)"], rows["each view separately (videos/s)"]
        lines.append(f"| {name} | {once:.2f} | {sep:.2f} | {once / sep:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--frames", type=int, nargs=2, default=(48, 72))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    load = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        info = write_synthetic(tmp, "kinetics", videos=args.videos, size=args.size,
                               frames_range=tuple(args.frames), progress=False)
        records, _ = read_annotations("kinetics", info.root, info.annotation, "train")
        records += read_annotations("kinetics", info.root, info.annotation, "val")[0]
        cfg = DataConfig(layout="kinetics", root=info.root, annotation=info.annotation, **RECIPE)
        train = _train_rows(records, cfg, args.repeats)
        segment = DataConfig(**{**RECIPE, "sampling": "segment"})
        eval_rows = {"2x3 (segment, SSv2 protocol)": _eval_rows(records, segment, 2, 3, 2),
                     "5x3 (dense, Kinetics protocol)": _eval_rows(records, cfg, 5, 3, 2)}
    result = {"date": dt.date.today().isoformat(), "device": _device(),
              "cpu": _cpu_name(), "load_average": load, "torch": torch.__version__,
              "videos": len(records), "size": args.size, "frames": list(args.frames),
              "recipe": RECIPE, "train": train, "eval": eval_rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{result['date']}-{result['device']}-data_throughput"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(_markdown(result))
    print(_markdown(result))
    print(f"results: {stem}.json, {stem}.md")


if __name__ == "__main__":
    main()
