"""Data pipeline on one core: train clips/s vs a plain decord loop, and decode-once multi-view eval.

Everything runs in this process with `torch.set_num_threads(1)` and no DataLoader workers, so a
rate is per core. Videos are synthetic H.264 files (`videopeft.data.synthetic.write_synthetic`,
Kinetics layout) in a temporary folder.

Train ("pipeline" section): the dataset's item path (open + count + decode + clip-consistent
augmentation, VideoMAE recipe) against a plain decord loop that decodes the same frame indices and
does nothing else, plus two intermediate rows to show where the time goes.
Eval ("multiview" section): `EvalVideoDataset` (decode the union of all temporal views once, resize
once, cut every view) against decoding and transforming each of the T x S views separately, as
VideoMAE's per-view dataset items do.
Rows are measured in interleaved rounds (so other jobs' load hits every row alike); each rate is
the median over rounds.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch

from .common import Stat, ratio

RECIPE = dict(num_frames=16, img_size=112, sampling="dense", stride=2, flip=True,
              rand_augment="rand-m7-n4-mstd0.5-inc1", random_erasing=0.25, backend="auto")
REFERENCE = "decord reference (decode only)"
PROTOCOLS = {"2x3 (segment, SSv2 protocol)": ("segment", 2, 3),
             "5x3 (dense, Kinetics protocol)": ("dense", 5, 3)}


@dataclass(frozen=True)
class Size:
    """The synthetic set (videos, px tall, frame-count range) and interleaved rounds per row."""

    videos: int = 24
    size: int = 128
    frames: tuple[int, int] = (48, 72)
    rounds: int = 3


DEFAULT = Size()
QUICK = Size(videos=4, size=128, frames=(36, 44), rounds=1)


def _rates(runs: dict[str, Callable[[], int]], rounds: int) -> dict[str, Stat]:
    """Items per second of each run (a run returns how many items it made), `rounds`
    interleaved rounds."""
    rates: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            items = run()
            rates[name].append(items / (time.perf_counter() - start))
    return {k: Stat.of(v) for k, v in rates.items()}


def _planned_dataset(records: list, cfg: Any, plan: list[list[int]], transform: Callable) -> Any:
    """The train dataset with frame indices fixed in advance, so every row decodes the same."""
    from videopeft.data import Manifest, TrainClipDataset, open_video

    class PlannedClips(TrainClipDataset):
        def load(self, index: int) -> torch.Tensor:
            with open_video(self.records[index].path, self.cfg.backend) as video:
                frames = video.get(plan[index])
            return self.transform(frames)

    return PlannedClips(records, cfg, Manifest(), transform=transform)


def train_rows(records: list, cfg: Any, rounds: int) -> dict[str, Stat]:
    """Clips/s of the plain decord loop and of the pipeline at three depths."""
    import decord

    from videopeft.config import DataConfig
    from videopeft.data import build_train_transform, clip_indices

    gen = torch.Generator().manual_seed(0)
    plan = [clip_indices(cfg, len(decord.VideoReader(r.path)), train=True, generator=gen)
            for r in records]

    def reference() -> int:
        for record, indices in zip(records, plan):
            reader = decord.VideoReader(record.path, ctx=decord.cpu(0), num_threads=1)
            reader.get_batch(indices).asnumpy()
            del reader
        return len(records)

    def dataset_loop(transform: Callable) -> Callable[[], int]:
        dataset = _planned_dataset(records, cfg, plan, transform)
        return lambda: sum(1 for i in range(len(dataset)) if dataset[i] is not None)

    light = DataConfig(**{**RECIPE, "rand_augment": "", "random_erasing": 0.0})
    return _rates({
        REFERENCE: reference,
        "pipeline: decode only": dataset_loop(lambda frames: frames),
        "pipeline: + crop, flip, normalise": dataset_loop(build_train_transform(light)),
        "pipeline: full VideoMAE recipe (+ RandAugment, erasing)":
            dataset_loop(build_train_transform(cfg)),
    }, rounds)


def eval_rows(records: list, cfg: Any, temporal: int, spatial: int, rounds: int
              ) -> dict[str, Stat]:
    """Videos/s of decode-once multi-view items vs decoding every view separately."""
    from videopeft.data import (EvalVideoDataset, build_eval_transform, clip_indices, decode,
                                open_video)

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

    return _rates({"decode_once": decode_once, "per_view": per_view}, rounds)


def run(quick: bool) -> tuple[dict, dict]:
    """The pipeline and multiview sections (one synthetic set for both)."""
    from videopeft.config import DataConfig
    from videopeft.data import read_annotations
    from videopeft.data.synthetic import write_synthetic

    size = QUICK if quick else DEFAULT
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            info = write_synthetic(tmp, "kinetics", videos=size.videos, size=size.size,
                                   frames_range=size.frames, progress=False)
            records = (read_annotations("kinetics", info.root, info.annotation, "train")[0]
                       + read_annotations("kinetics", info.root, info.annotation, "val")[0])
            cfg = DataConfig(layout="kinetics", root=info.root, annotation=info.annotation,
                             **RECIPE)
            train = train_rows(records, cfg, size.rounds)
            views = {}
            for name, (sampling, temporal, spatial) in PROTOCOLS.items():
                proto = DataConfig(**{**RECIPE, "sampling": sampling})
                views[name] = eval_rows(records, proto, temporal, spatial, size.rounds)
    finally:
        torch.set_num_threads(threads)
    ref = train[REFERENCE].median
    pipeline = {"size": asdict(size), "videos": len(records), "recipe": RECIPE,
                "rows": {k: {"clips_per_s": s.to_dict(), "vs_decord": ratio(s.median, ref)}
                         for k, s in train.items()}}
    multiview = {"size": asdict(size), "videos": len(records), "protocols": {
        name: {"decode_once_videos_per_s": rows["decode_once"].to_dict(),
               "per_view_videos_per_s": rows["per_view"].to_dict(),
               "speedup": ratio(rows["decode_once"].median, rows["per_view"].median)}
        for name, rows in views.items()}}
    return pipeline, multiview


def markdown_pipeline(section: dict) -> list[str]:
    s = section["size"]
    lines = ["## Data pipeline, train clips/s on one core", "",
             f"{section['videos']} synthetic H.264 videos, {s['size']} px tall, {s['frames']} "
             f"frames; clips of {RECIPE['num_frames']} frames at {RECIPE['img_size']} px, dense "
             f"stride {RECIPE['stride']}; median of {s['rounds']} interleaved rounds.", "",
             "| pipeline | clips/s | vs plain decord loop |", "|---|---:|---:|"]
    for name, row in section["rows"].items():
        lines.append(f"| {name} | {row['clips_per_s']['median']:.1f} | {row['vs_decord']:.2f}x |")
    return lines


def markdown_multiview(section: dict) -> list[str]:
    lines = ["## Multi-view eval: decode once vs each view separately (videos/s, one core)", "",
             "| views | decode once | each view separately | speed-up |", "|---|---:|---:|---:|"]
    for name, p in section["protocols"].items():
        lines.append(f"| {name} | {p['decode_once_videos_per_s']['median']:.2f} "
                     f"| {p['per_view_videos_per_s']['median']:.2f} | {p['speedup']:.2f}x |")
    return lines
