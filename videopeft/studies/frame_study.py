"""Frame study: how accuracy, cost and memory change with the number of input frames, per method.

A grid of cells (frames x methods x seeds); each cell is one full run (train + multi-view eval)
of the base config with ``data.num_frames`` and ``method`` replaced, in its own folder
``<study>/<method>-f<frames>-s<seed>/``. A cell whose ``results.json`` exists is skipped, and an
unfinished cell resumes from its checkpoints, so re-running the same command completes a study.

Per cell the table records video/clip top-1/top-5, trainable parameters, GFLOPs per view, training
throughput (clips/s) and peak memory (CUDA peak allocation, or the process's peak RSS on CPU,
which only grows across the cells of one process). Outputs in the study folder:
``frame_study.csv``, ``frame_study.md`` and ``frame_study.png`` (video top-1 vs frames per method).
"""
from __future__ import annotations

import copy
import csv
import io
import json
import logging
from pathlib import Path
from typing import Sequence

import torch

from videopeft.config import RunConfig, method_config
from videopeft.engine import distributed as dist
from videopeft.engine.logging import read_jsonl
from videopeft.engine.report import markdown_table, plot_frame_study
from videopeft.engine.train import train
from videopeft.errors import ConfigError
from videopeft.io import atomic_write_text

__all__ = ["cell_name", "cell_config", "run_frame_study", "collect_row", "write_study_outputs",
           "COLUMNS"]

_log = logging.getLogger(__name__)

COLUMNS = ("method", "frames", "seed", "video_top1", "video_top5", "clip_top1", "clip_top5",
           "params_trainable", "gflops_per_view", "clips_per_s", "peak_memory_mb", "run")


def cell_name(method: str, frames: int, seed: int) -> str:
    """The folder name of one cell: ``<method>-f<frames>-s<seed>``."""
    return f"{method}-f{frames}-s{seed}"


def cell_config(base: RunConfig, method: str, frames: int, seed: int, out_dir: Path) -> RunConfig:
    """The base config with this cell's frames, method, seed and folder (resume: auto).

    The base method's options are kept when its name is `method`; other methods get their
    defaults plus the base method's `head_bn`, so every cell has the same head.
    """
    cfg = copy.deepcopy(base)
    cfg.data.num_frames = frames
    if base.method.name != method:
        cfg.method = method_config({"name": method, "head_bn": base.method.head_bn})
    if frames % cfg.model.tubelet_size:
        raise ConfigError(f"{frames} is not a multiple of model.tubelet_size "
                          f"{cfg.model.tubelet_size}", key="frames")
    cfg.seed = seed
    cfg.output_dir = str(out_dir)
    cfg.train.resume = "auto"
    return cfg


def collect_row(cell_dir: Path, method: str, frames: int, seed: int) -> dict:
    """One table row from a finished cell's results.json and log.jsonl."""
    results = json.loads((cell_dir / "results.json").read_text())
    events = read_jsonl(cell_dir / "log.jsonl")
    eff = next((e for e in reversed(events) if e.get("event") == "efficiency"), {})
    return {
        "method": method, "frames": frames, "seed": seed,
        "video_top1": results["video_top1"], "video_top5": results["video_top5"],
        "clip_top1": results["clip_top1"], "clip_top5": results["clip_top5"],
        "params_trainable": results["params"]["trainable"],
        "gflops_per_view": results["gflops_per_view"],
        "clips_per_s": eff.get("clips_per_s"), "peak_memory_mb": eff.get("peak_memory_mb"),
        "run": cell_dir.name,
    }


def run_frame_study(base: RunConfig, frames: Sequence[int], methods: Sequence[str],
                    seeds: Sequence[int] = (0,), *, out_dir: str | Path) -> list[dict]:
    """Run (or finish) every cell of the grid, then write the table and the plot; returns rows."""
    out_dir = Path(out_dir)
    cells = [(m, int(f), int(s)) for m in methods for f in frames for s in seeds]
    configs = {c: cell_config(base, *c, out_dir / cell_name(*c)) for c in cells}  # all checked first
    owns_group = not torch.distributed.is_initialized()
    dist.init_distributed(base.device)  # one process group for every cell
    try:
        for i, cell in enumerate(cells, 1):
            cell_dir = out_dir / cell_name(*cell)
            if (cell_dir / "results.json").is_file():
                _log.info("[%d/%d] %s: done, skipped", i, len(cells), cell_dir.name)
                continue
            _log.info("[%d/%d] %s: running", i, len(cells), cell_dir.name)
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
            train(configs[cell], run_name=cell_dir.name)
        dist.barrier()
        rows = [collect_row(out_dir / cell_name(*c), *c) for c in cells]
        if dist.is_main():
            write_study_outputs(rows, out_dir)
        return rows
    finally:
        if owns_group:
            dist.cleanup()


def write_study_outputs(rows: list[dict], out_dir: Path) -> None:
    """frame_study.csv, frame_study.md and frame_study.png in `out_dir`."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out_dir / "frame_study.csv", buf.getvalue())
    atomic_write_text(out_dir / "frame_study.md",
                      "# Frame study\n\n" + markdown_table(rows, COLUMNS, floatfmt=".4g"))
    plot_frame_study(rows, out_dir / "frame_study.png")
