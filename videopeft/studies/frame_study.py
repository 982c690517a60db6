"""Frame study: how accuracy, cost and memory change with the number of input frames, per method.

A grid of cells (frames x methods x seeds); each cell is one full run (train + multi-view eval)
of the base config with ``data.num_frames`` and ``method`` replaced, in its own folder
``<study>/<method>-f<frames>-s<seed>/`` (``-f<frames>x<stride>-`` with dense sampling). A cell
whose ``results.json`` exists is skipped, and an unfinished cell resumes from its checkpoints, so
re-running the same command completes a study. Both only when the cell's saved config.yaml equals
the cell's config now (`videopeft.run_folder.changed_settings`: resume, folder and run length
aside): a study re-run with other settings is refused before any cell runs, naming the changed
keys (``overwrite`` moves the old study aside first).

With dense sampling the `policy` says what fewer frames give up: ``coverage`` (the default) keeps
the clip's span, the base config's ``num_frames * stride`` frames of video, and stretches the stride
(`videopeft.data.sampling.frames_for_study`: 16 x 4, 8 x 8, 4 x 16 all span 64); ``fixed`` keeps the
stride, so the span shrinks with the frames. Segment sampling always spans the whole video.

Per cell the table records the sampling, stride and span, video/clip top-1/top-5, trainable
parameters, GFLOPs per view, training throughput (clips/s) and peak memory (CUDA peak allocation,
or the process's peak RSS on CPU, which only grows across the cells of one process). Outputs in the
study folder: ``frame_study.csv``, ``frame_study.md`` and ``frame_study.png`` (video top-1 vs
frames per method, each dense point labelled with its stride).
"""
from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import Sequence

import torch

from videopeft.config import RunConfig
from videopeft.engine import distributed as dist
from videopeft.engine.logging import read_jsonl
from videopeft.engine.report import markdown_table, plot_frame_study
from videopeft.engine.train import train
from videopeft.errors import ConfigError
from videopeft.io import atomic_write_text
from videopeft.run_folder import move_aside

from .cells import cell_config, cell_name, cell_sampling, finished_cells, study_cells

__all__ = ["cell_name", "cell_config", "cell_sampling", "study_cells", "run_frame_study",
           "finished_cells", "collect_row", "write_study_outputs", "COLUMNS"]

_log = logging.getLogger(__name__)

COLUMNS = ("method", "frames", "seed", "sampling", "stride", "span", "video_top1", "video_top5",
           "clip_top1", "clip_top5", "params_trainable", "gflops_per_view", "clips_per_s",
           "peak_memory_mb", "run")


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
                    seeds: Sequence[int] = (0,), *, out_dir: str | Path,
                    policy: str = "coverage", overwrite: bool = False) -> list[dict]:
    """Run (or finish) every cell of the grid, then write the table and the plot; returns rows.

    `policy` (coverage | fixed) sets each dense cell's stride; see the module docstring.
    `overwrite` first moves an existing study folder aside (`videopeft.run_folder.move_aside`)."""
    out_dir = Path(out_dir)
    configs = study_cells(base, frames, methods, seeds, out_dir, policy)  # all checked first
    cells = list(configs)
    dirs = {c: Path(cfg.output_dir) for c, cfg in configs.items()}
    owns_group = not torch.distributed.is_initialized()
    dist.init_distributed(base.device)  # one process group for every cell
    try:
        verdict = None  # the main rank decides for every rank: (skipped cells, problems)
        if dist.is_main():
            try:
                if overwrite and out_dir.is_dir() and any(out_dir.iterdir()):
                    move_aside(out_dir)
                verdict = (finished_cells(configs, out_dir), None)
            except ConfigError as err:
                verdict = (set(), err.problems)
        skipped, problems = dist.broadcast_object(verdict)
        if problems:
            raise ConfigError(*problems)
        for i, cell in enumerate(cells, 1):
            cell_dir = dirs[cell]
            if cell in skipped:
                _log.info("[%d/%d] %s: done, skipped", i, len(cells), cell_dir.name)
                continue
            _log.info("[%d/%d] %s: running", i, len(cells), cell_dir.name)
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
            train(configs[cell], run_name=cell_dir.name)
        dist.barrier()
        rows = [{**collect_row(dirs[c], *c), **cell_sampling(configs[c])} for c in cells]
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
