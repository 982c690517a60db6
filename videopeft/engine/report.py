"""Plots and tables for runs: training curves, confusion matrix, frame-study chart, markdown.

Matplotlib runs on the non-interactive Agg backend, so plotting works on headless machines. Every
function writes its file and returns the path; none of them needs a display or a running process
group.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from videopeft.io import atomic_path  # noqa: E402

from .logging import read_jsonl  # noqa: E402

__all__ = ["plot_training_curves", "plot_losses", "plot_confusion_matrix", "plot_frame_study",
           "markdown_table"]

_log = logging.getLogger(__name__)


def _series(events: list[dict], event: str, key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for e in events:
        if e.get("event") == event and isinstance(e.get(key), (int, float)):
            xs.append(e["step"])
            ys.append(float(e[key]))
    return xs, ys


def plot_training_curves(log_path: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """loss.png, lr.png and accuracy.png (validation top-1/top-5) from a log.jsonl.

    A curve with no points (e.g. no validation yet) is skipped.
    """
    events = read_jsonl(log_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, event, keys, ylabel in (
            ("loss.png", "train", ("loss",), "training loss"),
            ("lr.png", "train", ("lr",), "learning rate"),
            ("accuracy.png", "val", ("video_top1", "video_top5"), "validation accuracy (%)")):
        curves = [(k, *_series(events, event, k)) for k in keys]
        curves = [c for c in curves if c[1]]
        if not curves:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        for key, xs, ys in curves:
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, label=key)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if len(curves) > 1:
            ax.legend()
        written.append(_save(fig, out_dir / name))
    return written


def plot_losses(logs: Mapping[str, str | os.PathLike], path: str | os.PathLike) -> Path:
    """The training loss of several runs on one chart: `logs` maps a label to a log.jsonl."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, log_path in logs.items():
        ax.plot(*_series(read_jsonl(log_path), "train", "loss"), label=label)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, Path(path))


def plot_confusion_matrix(matrix: Any, class_names: Sequence[str], path: str | os.PathLike,
                          title: str = "") -> Path:
    """Row-normalised confusion matrix (rows = true class) as a PNG; counts annotated when small."""
    counts = np.asarray(matrix, dtype=np.float64)
    rows = counts.sum(axis=1, keepdims=True)
    norm = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    k = len(class_names)
    size = min(4 + 0.35 * k, 30)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if k <= 50:
        ax.set_xticks(range(k), labels=list(class_names), rotation=90, fontsize=7)
        ax.set_yticks(range(k), labels=list(class_names), fontsize=7)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if counts[i, j]:
                    ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix (row-normalised)")
    return _save(fig, Path(path))


def plot_frame_study(rows: list[dict], path: str | os.PathLike, metric: str = "video_top1") -> Path:
    """Accuracy vs frames, one line per method (mean over seeds, min-max band when > 1 seed).

    Rows of dense cells (a `stride`) label each tick with the stride and span, e.g. "4 (x16, 64)"."""
    by_method: dict[str, dict[int, list[float]]] = {}
    for r in rows:
        if isinstance(r.get(metric), (int, float)):
            by_method.setdefault(r["method"], {}).setdefault(int(r["frames"]), []).append(r[metric])
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, cells in sorted(by_method.items()):
        frames = sorted(cells)
        mean = [sum(cells[f]) / len(cells[f]) for f in frames]
        ax.plot(frames, mean, marker="o", label=method)
        if any(len(cells[f]) > 1 for f in frames):
            ax.fill_between(frames, [min(cells[f]) for f in frames],
                            [max(cells[f]) for f in frames], alpha=0.2)
    ax.set_xscale("log", base=2)
    all_frames = sorted({int(r["frames"]) for r in rows})
    clips = {int(r["frames"]): (r["stride"], r["span"]) for r in rows if r.get("stride")}
    if all_frames:
        ax.set_xticks(all_frames, labels=[f"{f} (x{clips[f][0]}, {clips[f][1]})" if f in clips
                                          else str(f) for f in all_frames])
    ax.set_xlabel("frames per clip (stride, span in frames)" if clips else "frames per clip")
    ax.set_ylabel(f"{metric} (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, Path(path))


def markdown_table(rows: list[dict], columns: Sequence[str] | None = None,
                   floatfmt: str = ".2f") -> str:
    """A GitHub markdown table of `rows` (dicts); floats formatted with `floatfmt`."""
    if not rows:
        return ""
    columns = list(columns or rows[0].keys())

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return format(v, floatfmt)
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)
    return path
