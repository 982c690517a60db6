"""Evaluation throughput end to end: videos/s through `videopeft.engine.evaluate.evaluate`.

Synthetic videos (`write_synthetic`, list layout) go through three nested paths, timed in
interleaved rounds after one untimed warm-up round (median over rounds):
    end_to_end    the whole `evaluate(cfg, model=...)` call: dataset build, FLOP count,
                  decode-once multi-view items (2 temporal x 3 spatial views), the model, fusion,
                  metrics, results.json, predictions.csv, confusion-matrix plot, manifest;
    scoring_loop  `evaluate_model` on a built dataset: loader + decode + transform + model + fusion;
    model_only    the same model's forward on random clips in the same batches (no_grad, eval).
end_to_end / model_only is the share of model speed the whole call keeps (1.0 = data and
bookkeeping cost nothing); scoring_loop / model_only the share the decode + model loop keeps.
The model is videomae_* + AdaptMLP-64 with random weights (speed does not depend on them).
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .common import Stat, ratio

if TYPE_CHECKING:
    from videopeft.config import RunConfig

VIEWS = (2, 3)  # temporal, spatial


@dataclass(frozen=True)
class Size:
    """The evaluated model and clip, the synthetic set and how many timed calls."""

    arch: str = "videomae_small"
    frames: int = 8
    img_size: int = 112
    video_px: int = 128
    videos: int = 6  # 4 of them in the train split that is evaluated
    classes: int = 2
    batch: int = 2  # videos per batch, each with all its views
    workers: int = 0
    rounds: int = 2


DEFAULT = Size()
QUICK = Size(arch="videomae_tiny", frames=4, img_size=32, video_px=64, videos=4, rounds=1)


def _config(size: Size, root: str, annotation: str, out: Path) -> RunConfig:
    """A validated run config evaluating the synthetic set's train split on the CPU."""
    from videopeft.config import load_config

    return load_config(None, {
        "data": {"layout": "list", "root": root, "annotation": annotation,
                 "num_frames": size.frames, "img_size": size.img_size, "sampling": "segment",
                 "workers": size.workers},
        "model": {"name": size.arch},
        "method": {"name": "adaptmlp", "bottleneck": 64},
        "eval": {"split": "train", "views_temporal": VIEWS[0], "views_spatial": VIEWS[1],
                 "batch_size": size.batch},
        "output_dir": str(out), "device": "cpu", "seed": 0})


def model_only(model: torch.nn.Module, size: Size, videos: int, clips: torch.Tensor) -> None:
    """The model's forward alone over `videos` videos' views, batched like the evaluation;
    `clips` is one full batch of random views, made outside the timed region."""
    views = VIEWS[0] * VIEWS[1]
    model.eval()
    with torch.no_grad():
        for start in range(0, videos, size.batch):
            model(clips[:min(size.batch, videos - start) * views])


def run(quick: bool) -> dict:
    """The eval section: videos/s of the three paths and their ratios."""
    from videopeft.data import Manifest, build_dataset
    from videopeft.data.synthetic import write_synthetic
    from videopeft.engine.builder import build_model, resolve_precision
    from videopeft.engine.evaluate import evaluate, evaluate_model

    size = QUICK if quick else DEFAULT
    cpu = torch.device("cpu")
    rates: dict[str, list[float]] = {"end_to_end": [], "scoring_loop": [], "model_only": []}
    with tempfile.TemporaryDirectory() as tmp:
        info = write_synthetic(Path(tmp) / "set", "list", videos=size.videos,
                               num_classes=size.classes, size=size.video_px, progress=False)
        cfg = _config(size, info.root, info.annotation, Path(tmp) / "out")
        torch.manual_seed(0)
        model, _ = build_model(cfg, size.classes)
        dataset, classes = build_dataset(cfg.data, cfg.eval.split, train=False,
                                         manifest=Manifest(), views_temporal=VIEWS[0],
                                         views_spatial=VIEWS[1], short_side=cfg.eval.short_side)
        videos = len(dataset)

        def end_to_end(i: int) -> None:
            record = evaluate(cfg, model=model, output_dir=Path(tmp) / f"out{i}", progress=False)
            assert record["num_videos"] == videos and record["num_failed"] == 0, record

        def scoring_loop(i: int) -> None:
            evaluate_model(model, dataset, classes, batch_size=size.batch, workers=size.workers,
                           device=cpu, precision=resolve_precision("off", cpu),
                           fusion=cfg.eval.fusion)

        clips = torch.randn(size.batch * VIEWS[0] * VIEWS[1], 3, size.frames, size.img_size,
                            size.img_size)
        paths = {"end_to_end": end_to_end, "scoring_loop": scoring_loop,
                 "model_only": lambda i: model_only(model, size, videos, clips)}
        for i in range(1 + size.rounds):  # round 0 warms up
            for name, fn in paths.items():
                start = time.perf_counter()
                fn(i)
                if i > 0:
                    rates[name].append(videos / (time.perf_counter() - start))
    stats = {k: Stat.of(v) for k, v in rates.items()}
    model_rate = stats["model_only"].median
    return {"size": asdict(size), "views": {"temporal": VIEWS[0], "spatial": VIEWS[1]},
            "videos": videos, "threads": torch.get_num_threads(),
            "videos_per_s": {k: s.to_dict() for k, s in stats.items()},
            "end_to_end_vs_model_only": ratio(stats["end_to_end"].median, model_rate),
            "scoring_loop_vs_model_only": ratio(stats["scoring_loop"].median, model_rate)}


def markdown(section: dict) -> list[str]:
    s, v, r = section["size"], section["views"], section["videos_per_s"]
    return ["## Evaluation end to end (videopeft.engine.evaluate)", "",
            f"{s['arch']} + AdaptMLP-64, {s['frames']} frames at {s['img_size']} px, "
            f"{v['temporal']}x{v['spatial']} views decoded once per video, {section['videos']} "
            f"synthetic videos ({s['video_px']} px), batch {s['batch']} videos, "
            f"{s['workers']} workers, {section['threads']} threads; median of {s['rounds']} "
            f"interleaved rounds.", "",
            "| videos/s: evaluate() end to end | scoring loop | model forward only "
            "| end to end / model | loop / model |", "|---:|---:|---:|---:|---:|",
            f"| {r['end_to_end']['median']:.2f} | {r['scoring_loop']['median']:.2f} "
            f"| {r['model_only']['median']:.2f} | {section['end_to_end_vs_model_only']:.2f}x "
            f"| {section['scoring_loop_vs_model_only']:.2f}x |"]
