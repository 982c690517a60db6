"""The CPU suite: backbone vs HF, AdaptMLP vs full, data path, multi-view eval, eval end to end.

Sections, each from its own module:
    backbone   videopeft vs HF VideoMAE forward+backward, same weights (backbone.py)
    methods    AdaptMLP-64 vs full fine-tune step time and peak RSS, child processes (methods.py)
    data       train clips/s per core on realistic 240p / 320p videos, per recipe and augmentation
               mode, vs a plain decord loop (data.py; also `--suite data` alone)
    multiview  decode-once multi-view eval vs per-view decoding, same videos (data.py)
    eval       videos/s through videopeft.engine.evaluate, vs the model alone (evaluation.py)
Default size takes several minutes on 2 cores; --quick is a smoke test of about a minute.
"""
from __future__ import annotations

import time
from typing import Any, Callable, TypeVar

import torch

T = TypeVar("T")


def run(quick: bool, threads: int) -> dict:
    """Every section in order, with how long each took."""
    from . import backbone, data, evaluation, methods

    torch.set_num_threads(threads)
    record: dict = {"seconds": {}}

    def timed(name: str, fn: Callable[..., T], *args: Any) -> T:
        print(f"[cpu suite] {name} ...", flush=True)
        start = time.perf_counter()
        out = fn(*args)
        record["seconds"][name] = time.perf_counter() - start
        return out

    record["backbone"] = timed("backbone", backbone.run, quick)
    record["methods"] = timed("methods", methods.run, quick, threads)
    record.update(timed("data", data.run, "quick" if quick else "full"))
    record["eval"] = timed("eval", evaluation.run, quick)
    return record


def markdown(record: dict) -> list[str]:
    from . import backbone, data, evaluation, methods

    return [*backbone.markdown(record["backbone"]), "", *methods.markdown(record["methods"]), "",
            *data.markdown(record), "",
            *evaluation.markdown(record["eval"])]
