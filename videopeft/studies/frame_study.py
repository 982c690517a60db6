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

import copy
import csv
import io
import json
import logging
from pathlib import Path
from typing import Sequence

import torch

from videopeft.config import RunConfig, method_config
from videopeft.constants import STUDY_POLICIES
from videopeft.data.sampling import frames_for_study
from videopeft.engine import distributed as dist
from videopeft.engine.logging import read_jsonl
from videopeft.engine.report import markdown_table, plot_frame_study
from videopeft.engine.train import train
from videopeft.errors import ConfigError, check, one_of
from videopeft.io import atomic_write_text
from videopeft.run_folder import changed_settings, inspect_folder, move_aside

__all__ = ["cell_name", "cell_config", "cell_sampling", "run_frame_study", "finished_cells",
           "collect_row", "write_study_outputs", "COLUMNS"]

_log = logging.getLogger(__name__)

COLUMNS = ("method", "frames", "seed", "sampling", "stride", "span", "video_top1", "video_top5",
           "clip_top1", "clip_top5", "params_trainable", "gflops_per_view", "clips_per_s",
           "peak_memory_mb", "run")


def cell_name(method: str, frames: int, seed: int, stride: int | None = None) -> str:
    """The folder name of one cell: ``<method>-f<frames>-s<seed>``, with dense sampling
    ``<method>-f<frames>x<stride>-s<seed>`` (VideoMAE's "16x4")."""
    clip = f"f{frames}" if stride is None else f"f{frames}x{stride}"
    return f"{method}-{clip}-s{seed}"


def cell_config(base: RunConfig, method: str, frames: int, seed: int, out_dir: Path,
                policy: str = "coverage") -> RunConfig:
    """The base config with this cell's frames, method, seed and folder (resume: auto), and with
    dense sampling the stride of `policy` (coverage: the base clip's span over `frames`).

    The base method's options are kept when its name is `method`; other methods get their
    defaults plus the base method's `head_bn`, so every cell has the same head.
    """
    check(one_of("policy", policy, STUDY_POLICIES))
    cfg = copy.deepcopy(base)
    cfg.data.num_frames = frames
    if base.method.name != method:
        cfg.method = method_config({"name": method, "head_bn": base.method.head_bn})
    if frames % cfg.model.tubelet_size:
        raise ConfigError(f"{frames} is not a multiple of model.tubelet_size "
                          f"{cfg.model.tubelet_size}", key="frames")
    if base.data.sampling == "dense":
        coverage = base.data.num_frames * base.data.stride
        try:
            _, cfg.data.stride = frames_for_study(frames, policy, base_coverage=coverage,
                                                  stride=base.data.stride)
        except ValueError:
            raise ConfigError(f"policy=coverage cannot spread {frames} frames over the base "
                              f"clip's {coverage} ({base.data.num_frames} x stride "
                              f"{base.data.stride}); use fewer frames or policy=fixed",
                              key="frames") from None
    cfg.seed = seed
    cfg.output_dir = str(out_dir)
    cfg.train.resume = "auto"
    return cfg


def cell_sampling(cfg: RunConfig) -> dict:
    """A cell's sampling columns: scheme, stride and span (frames of video one clip covers:
    num_frames * stride, VideoMAE's window; the whole video for segment sampling)."""
    d = cfg.data
    if d.sampling == "dense":
        return {"sampling": "dense", "stride": d.stride, "span": d.num_frames * d.stride}
    return {"sampling": d.sampling, "stride": None, "span": "whole video"}


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


def finished_cells(configs: dict[tuple, RunConfig], out_dir: Path) -> set[tuple]:
    """The cells whose folder holds a finished run of the same config (to skip); ConfigError,
    one line naming the cells and the changed keys, when a folder holds a run of other settings
    (`videopeft.run_folder.folder_verdict`: a cell that stopped early is simply run again)."""
    done, stale, changed = set(), [], set()
    for cell, cfg in configs.items():
        state = inspect_folder(cfg.output_dir)
        if state.empty or state.stopped_early:
            continue
        keys = changed_settings(state.config, cfg) if state.config is not None else ["(all)"]
        if keys:
            stale.append(state.path.name)
            changed.update(keys)
        elif (state.path / "results.json").is_file():
            done.add(cell)
    if stale:
        raise ConfigError(f"{out_dir}: cells {', '.join(stale)} were run with other settings "
                          f"({', '.join(sorted(changed))} changed); choose another output_dir, "
                          f"or pass --overwrite to move the study aside (nothing is deleted)")
    return done


def run_frame_study(base: RunConfig, frames: Sequence[int], methods: Sequence[str],
                    seeds: Sequence[int] = (0,), *, out_dir: str | Path,
                    policy: str = "coverage", overwrite: bool = False) -> list[dict]:
    """Run (or finish) every cell of the grid, then write the table and the plot; returns rows.

    `policy` (coverage | fixed) sets each dense cell's stride; see the module docstring.
    `overwrite` first moves an existing study folder aside (`videopeft.run_folder.move_aside`)."""
    out_dir = Path(out_dir)
    cells = [(m, int(f), int(s)) for m in methods for f in frames for s in seeds]
    configs = {c: cell_config(base, *c, out_dir, policy) for c in cells}  # all checked first
    dirs = {c: out_dir / cell_name(*c, stride=cell_sampling(configs[c])["stride"]) for c in cells}
    for cell, cfg in configs.items():
        cfg.output_dir = str(dirs[cell])
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
