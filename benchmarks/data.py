"""The data suite: how many training clips one CPU core makes on realistic videos, per recipe.

Videos: one synthetic set per realistic profile (`videopeft.data.synthetic.profiles`), written to
a temporary folder in its dataset's layout: SSv2-like VP9 WebM (427x240, 12 fps, 4 s) and
Kinetics-like H.264 MP4 (568x320, 30 fps, 10 s, a keyframe every 250 frames), real encodes at
real sizes, so every decode costs what it costs on the dataset.

Everything runs in this process on one core: `torch.set_num_threads(1)`, decoders on one thread,
no DataLoader, so a rate is what one loader worker delivers. Rows (`ROWS`, one table for both
sets; each row's DataConfig is the shipped recipe's `data` section plus the row's fields):

    a  plain decord loop: open, decode the planned frame indices, nothing else (the floor)
    b  worker mode, VideoMAE's fine-tuning recipe (configs/<dataset>/full.yaml: 16 frames at 224,
       segment sampling on SSv2 / dense linspace 16x4 on Kinetics, random-resized crop
       (0.08, 1), RandAugment rand-m7-n4-mstd0.5-inc1, erasing 0.25, flip on Kinetics only)
    c  device mode's worker side (data.augment: device): decode, draw the choices, cut the crop
    d  c with data.num_sample 2: two clips cut from each decode
    e  AdaptFormer's recipe (configs/<dataset>/adaptmlp.yaml: 8 frames, dense stride 4 with
       dense_train stride, multi-scale crop, no RandAugment, erasing or flip), worker mode

Every dataset row decodes the frames the decord loop decodes: the frame indices are planned up
front by seeding torch's generator before each item (the dataset's first draw is the clip's
indices), and an untimed first pass checks that the dataset decoded those frames
(`planned_frames`). Row e samples 8 frames, so it gets its own decord loop on its own indices
(`a-e`); its `vs_own_decode` compares with that. A row whose DataConfig fields this version
does not have yet is recorded as skipped, with the reason.

Rows are interleaved item by item (every row makes item j before any makes item j + 1, so other
jobs' load hits every row alike; the row order turns at each item), in rounds; each rate is the
median over rounds.

The multiview section: `EvalVideoDataset` (decode the union of all temporal views once, cut every
view) vs decoding and transforming each view separately, as VideoMAE's per-view items do, for
2x3 views on the SSv2-like set and 5x3 on the Kinetics-like set.
"""
from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from .common import Stat, cpu_cores, ratio

PROFILE_DATASETS = {"ssv2-240p": "ssv2", "kinetics-320p": "kinetics400"}  # configs/<folder>/
FEED_TARGETS = (100, 300, 600)  # clips/s a GPU may ask for (ViT-B 16x224 AdaptMLP: ~600)
DEVICE_BATCH = 32  # clips of 16 x 224 x 224 in the device-side augmentation timing
SEED = 20260  # an item of every row is drawn after seeding the CPU generator with its seed


@dataclass(frozen=True)
class Row:
    """A measured dataset row: the recipe it starts from (configs/<dataset>/<recipe>.yaml's data
    section), the DataConfig fields it needs (`overrides`: skipped where DataConfig lacks one),
    and fields that only pin today's behaviour (`implicit`: set where DataConfig has them)."""

    key: str
    name: str
    recipe: str  # "full" (VideoMAE fine-tuning) | "adaptmlp" (AdaptFormer)
    overrides: dict[str, Any] = field(default_factory=dict)
    implicit: dict[str, Any] = field(default_factory=dict)
    clips_per_item: int = 1
    compare_to: str = ""  # another row's key: the ratio of clips/s is recorded


REFERENCE = "a"
ROWS: tuple[Row, ...] = (
    Row("b", "worker mode, full VideoMAE recipe", "full",
        implicit={"augment": "worker", "num_sample": 1}),
    Row("c", "device mode, worker side", "full", {"augment": "device"},
        implicit={"num_sample": 1}),
    Row("d", "device mode, worker side, num_sample 2", "full",
        {"augment": "device", "num_sample": 2}, clips_per_item=2, compare_to="c"),
    Row("e", "AdaptFormer recipe (8x4 dense, multi-scale crop), worker mode", "adaptmlp",
        implicit={"augment": "worker", "num_sample": 1}),
)


@dataclass(frozen=True)
class Size:
    """Videos per profile and their length (None = the profile's), clips drawn per video in a
    round (each its own seed: RandAugment's cost varies with the ops drawn, so more draws give a
    steadier mean), rounds, multiview videos per set (0 = none), processes writing videos
    (0 = one per core)."""

    ssv2_videos: int = 16
    kinetics_videos: int = 6
    clips_per_video: int = 2
    seconds: float | None = None
    rounds: int = 3
    multiview_videos: int = 3
    write_workers: int = 0

    def videos(self, profile: str) -> int:
        return self.ssv2_videos if profile == "ssv2-240p" else self.kinetics_videos


SIZES = {
    "full": Size(),  # a few minutes on 2 cores
    "kit": Size(ssv2_videos=8, kinetics_videos=3, clips_per_video=1, rounds=2,
                multiview_videos=0),  # the GPU kit's slice: see benchmarks/README.md
    "quick": Size(ssv2_videos=1, kinetics_videos=1, clips_per_video=1, seconds=1.0, rounds=1,
                  multiview_videos=1, write_workers=1),  # tests: seconds
}


# ----------------------------------------------------------------------------- videos

@dataclass
class VideoSet:
    """One profile's written set: its records (train and val), frame counts, facts."""

    profile: str
    layout: str
    root: str
    annotation: str
    records: list
    frames: list[int]
    facts: dict


def write_set(profile: str, folder: Path, size: Size) -> VideoSet:
    """Write one profile's videos (`size.write_workers` processes) and read them back as
    records, with their frame counts as decord reports them."""
    from videopeft.data import read_annotations
    from videopeft.data.synthetic import PROFILES, write_synthetic

    spec = PROFILES[profile]
    videos = size.videos(profile)
    start = time.perf_counter()
    workers = size.write_workers or cpu_cores()
    info = write_synthetic(folder, spec.layout, videos=videos, num_classes=2, profile=profile,
                           seconds=size.seconds, workers=workers, progress=False)
    seconds = time.perf_counter() - start
    records = [r for split in ("train", "val")
               for r in read_annotations(spec.layout, info.root, info.annotation, split)[0]]
    import decord  # after PyAV has loaded (run imports av first)

    frames = [len(decord.VideoReader(r.path, num_threads=1)) for r in records]
    total_bytes = sum(Path(r.path).stat().st_size for r in records)
    duration = sum(frames) / spec.fps
    facts = {"videos": len(records), "frames_per_video": spec.num_frames(size.seconds),
             "size": f"{spec.width}x{spec.height}", "fps": spec.fps,
             "container": spec.container, "encoding": info.encoding,
             "mean_kbps": total_bytes * 8 / duration / 1000, "write_s": seconds,
             "write_s_per_video": seconds / videos, "write_workers": workers}
    return VideoSet(profile, spec.layout, info.root, info.annotation, records, frames, facts)


# ----------------------------------------------------------------------------- configs

def recipe_config(profile: str, recipe: str, videos: VideoSet | None) -> Any:
    """The shipped recipe's DataConfig, pointed at the written set (if any)."""
    from videopeft.cli.parsing import find_config
    from videopeft.config import load_config

    data = load_config(find_config(f"{PROFILE_DATASETS[profile]}/{recipe}"),
                       check_paths=False).data
    if videos is None:
        return data
    return dataclasses.replace(data, root=videos.root, annotation=videos.annotation)


def row_config(base: Any, row: Row) -> tuple[Any | None, str]:
    """(the row's DataConfig, "") or (None, why it cannot be built in this version)."""
    from videopeft.config import DataConfig
    from videopeft.errors import ConfigError

    known = {f.name for f in dataclasses.fields(DataConfig)}
    pinned = {k: v for k, v in row.implicit.items() if k in known}
    try:
        return dataclasses.replace(base, **pinned, **row.overrides), ""
    except (TypeError, ConfigError) as err:
        missing = sorted(set(row.overrides) - known)
        reason = (f"DataConfig has no field {', '.join(missing)} yet" if missing
                  else f"DataConfig refuses {row.overrides}: {err}")
        return None, reason


def sampling_key(cfg: Any) -> tuple:
    """What decides a training clip's frame indices."""
    return (cfg.num_frames, cfg.sampling, cfg.stride, cfg.dense_train, cfg.short_video)


# ----------------------------------------------------------------------------- rows

def items_of(videos: VideoSet, size: Size) -> list[tuple[int, int]]:
    """(video, seed) of every item of a round: each video `clips_per_video` times."""
    n = len(videos.records)
    return [(i, SEED + k * n + i) for k in range(size.clips_per_video) for i in range(n)]


def plan_indices(cfg: Any, videos: VideoSet, items: list[tuple[int, int]]) -> list[list[int]]:
    """Each item's frame indices, drawn as the dataset draws them from its seed."""
    from videopeft.data import clip_indices

    plan = []
    for video, seed in items:
        torch.default_generator.manual_seed(seed)
        plan.append(clip_indices(cfg, videos.frames[video], train=True))
    return plan


def decord_loop(videos: VideoSet, items: list[tuple[int, int]], plan: list[list[int]]
                ) -> Callable[[int], int]:
    """Row a, item j: open the video with decord (one thread), decode its planned frames."""
    import decord

    paths = [videos.records[video].path for video, _ in items]

    def run(j: int) -> int:
        reader = decord.VideoReader(paths[j], ctx=decord.cpu(0), num_threads=1)
        reader.get_batch(plan[j]).asnumpy()
        del reader
        return 1
    return run


def clips_in(item: Any) -> int:
    """Clips in a dataset item's sample: a clip, k stacked clips, or device mode's k cuts."""
    if isinstance(item, dict):
        return len(item["frames"])
    return item.shape[0] if item.dim() == 5 else 1


def dataset_loop(dataset: Any, items: list[tuple[int, int]]) -> Callable[[int], int]:
    """A dataset row, item j: seed the CPU generator as `SeededDataset` does, then the dataset's
    item; returns its clips."""
    def run(j: int) -> int:
        video, seed = items[j]
        torch.default_generator.manual_seed(seed)
        return clips_in(dataset[video][0])
    return run


def check_pass(dataset: Any, items: list[tuple[int, int]], plan: list[list[int]]) -> dict:
    """The untimed first pass: which frames each item decoded (recorded at `Video.get`) and how
    many clips it holds. Also pays the one-time costs (probing each video, building ops)."""
    from videopeft.data.decoders import Video

    seen: list[list[int]] = []
    original = Video.get

    def recording(self: Any, indices: Any) -> torch.Tensor:
        seen.append([int(i) for i in indices])
        return original(self, indices)

    clips = []
    Video.get = recording  # type: ignore[method-assign]
    try:
        for (video, seed), planned in zip(items, plan):
            seen.clear()
            torch.default_generator.manual_seed(seed)
            clips.append(clips_in(dataset[video][0]))
            decoded = {f for call in seen for f in call}
            if not set(planned) <= decoded:
                return {"planned_frames": False, "clips_per_item": clips[-1],
                        "note": f"video {video} decoded {sorted(decoded)}, planned {planned}"}
    finally:
        Video.get = original  # type: ignore[method-assign]
    return {"planned_frames": True, "clips_per_item": max(clips)}


def rates(runs: dict[str, Callable[[int], int]], items: int, rounds: int) -> dict[str, Stat]:
    """Clips per second of each run over `items` items (a run makes item j and returns its
    clips), `rounds` times. Interleaved item by item: every row makes item j before any makes
    item j + 1, so other jobs' load on a shared machine hits every row alike; the order of the
    rows turns by one at each item, so no row is always the first to touch a video."""
    values: dict[str, list[float]] = {k: [] for k in runs}
    names = list(runs)
    for r in range(rounds):
        seconds = dict.fromkeys(runs, 0.0)
        clips = dict.fromkeys(runs, 0)
        for j in range(items):
            turn = (j + r * items) % len(names)
            for name in names[turn:] + names[:turn]:
                run = runs[name]
                start = time.perf_counter()
                clips[name] += run(j)
                seconds[name] += time.perf_counter() - start
        for name in runs:
            values[name].append(clips[name] / seconds[name])
    return {k: Stat.of(v) for k, v in values.items()}


def cores_needed(clips_per_s: float) -> dict[str, int]:
    """Loader cores to feed each target rate: N / per-core rate, rounded up."""
    return {str(n): math.ceil(n / clips_per_s) for n in FEED_TARGETS}


def prepare_rows(videos: VideoSet, items: list[tuple[int, int]], bases: dict[str, Any]
                 ) -> tuple[dict[str, Callable[[int], int]], dict[str, dict], dict[str, str]]:
    """Each row's item maker and record entry (after its check pass), plus the decord loop
    each dataset row compares with (row a, or one on the row's own frames)."""
    from videopeft.data import Manifest, TrainClipDataset

    full = bases["full"]
    plans = {sampling_key(full): plan_indices(full, videos, items)}
    loops = {sampling_key(full): REFERENCE}
    runs: dict[str, Callable[[int], int]] = {
        REFERENCE: decord_loop(videos, items, plans[sampling_key(full)])}
    out: dict[str, dict] = {REFERENCE: {"name": "plain decord loop, same frames", "recipe": "full",
                                        "config": {"frames": full.num_frames,
                                                   "sampling": full.sampling}}}
    own_loop: dict[str, str] = {}
    for row in ROWS:
        cfg, reason = row_config(bases[row.recipe], row)
        entry = out[row.key] = {"name": row.name, "recipe": row.recipe,
                                "overrides": row.overrides,
                                "clips_per_item_expected": row.clips_per_item}
        if cfg is None:
            entry["skipped"] = reason
            continue
        key = sampling_key(cfg)
        if key not in plans:  # other frames than row a's: a decord loop of its own
            plans[key] = plan_indices(cfg, videos, items)
            loops[key] = f"{REFERENCE}-{row.key}"
            runs[loops[key]] = decord_loop(videos, items, plans[key])
            out[loops[key]] = {"name": f"plain decord loop, row {row.key}'s frames",
                               "recipe": row.recipe,
                               "config": {"frames": cfg.num_frames, "sampling": cfg.sampling}}
        own_loop[row.key] = loops[key]
        dataset = TrainClipDataset(videos.records, cfg, Manifest())
        entry.update(check_pass(dataset, items, plans[key]))
        entry["config"] = {k: getattr(cfg, k) for k in (
            "num_frames", "sampling", "stride", "dense_train", "crop", "flip", "rand_augment",
            "random_erasing", *sorted(set(row.implicit) | set(row.overrides)))
            if hasattr(cfg, k)}
        runs[row.key] = dataset_loop(dataset, items)
    return runs, out, own_loop


def profile_rows(videos: VideoSet, size: Size) -> dict:
    """Every row on one set: rates, ratios, cores needed, or why a row was skipped."""
    bases = {recipe: recipe_config(videos.profile, recipe, videos)
             for recipe in dict.fromkeys(r.recipe for r in ROWS)}
    items = items_of(videos, size)
    runs, out, own_loop = prepare_rows(videos, items, bases)
    measured = rates(runs, len(items), size.rounds)
    for key, stat in measured.items():
        entry = out[key]
        entry["clips_per_s"] = stat.to_dict()
        entry["vs_a"] = ratio(stat.median, measured[REFERENCE].median)
        if key in own_loop:
            entry["vs_own_decode"] = ratio(stat.median, measured[own_loop[key]].median)
            entry["cores_needed"] = cores_needed(stat.median)
    for row in ROWS:
        if row.compare_to and row.key in measured and row.compare_to in measured:
            out[row.key][f"vs_{row.compare_to}"] = ratio(
                measured[row.key].median, measured[row.compare_to].median)
    return out


# ----------------------------------------------------------------------------- device side

def device_augmentation_time(device: torch.device, quick: bool) -> dict:
    """Seconds the device half of augmentation (resize, flip, RandAugment, normalise, erasing:
    `videopeft.data.device_augment.DeviceAugment`) takes for a batch of `DEVICE_BATCH` 16x224
    clips on `device`, with the VideoMAE fine-tuning recipe's choices drawn as the workers draw
    them from crops of 240x427 frames; the batch arrives packed in host memory, as a loader
    gives it (pinned on CUDA), and the copy to the device is timed with it. `quick`: 4 clips of
    4 x 32 px (a smoke test, not a result)."""
    from videopeft.data.datasets import collate_train
    from videopeft.data.device_augment import build_device_augment
    from videopeft.data.transfer import unpack_crops
    from videopeft.data.transforms import build_train_transform

    from .common import repeat_timed

    batch, frames, size = (4, 4, 32) if quick else (DEVICE_BATCH, 16, 224)
    cfg = dataclasses.replace(recipe_config("kinetics-320p", "full", None), num_frames=frames,
                              img_size=size, augment="device", num_sample=1)
    cutter = build_train_transform(cfg, device_side=True)
    height, width = (48, 64) if quick else (240, 427)
    source = torch.randint(0, 256, (frames, height, width, 3), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    torch.manual_seed(SEED)
    items = [({k: [v] if k == "frames" else v[None] for k, v in cutter.cut(source).items()}, 0, i)
             for i in range(batch)]
    packed, _, _ = collate_train(items)
    if device.type == "cuda":
        packed["frames"] = packed["frames"].pin_memory()
    augment = build_device_augment(cfg)
    ops = int((packed["rand_augment"][..., 0] >= 0).sum())

    def step() -> torch.Tensor:
        return augment(unpack_crops(packed, device), packed)

    # a CPU takes seconds per batch: two timings are enough to show it is not where to do this
    stat = repeat_timed(step, device, warmup=int(device.type == "cuda"),
                        repeats=5 if device.type == "cuda" and not quick else 2)
    return {"seconds": stat.to_dict(), "device": str(device), "batch": batch, "frames": frames,
            "img_size": size, "rand_augment_ops_applied": ops,
            "clips_per_s": batch / stat.median}


# ----------------------------------------------------------------------------- multiview

PROTOCOLS = {"ssv2-240p": ("2x3 (segment, SSv2 protocol)", 2, 3),
             "kinetics-320p": ("5x3 (dense, Kinetics protocol)", 5, 3)}


def multiview_rows(videos: VideoSet, size: Size) -> dict:
    """Videos/s of decode-once multi-view items vs decoding every view separately."""
    from videopeft.data import (EvalVideoDataset, build_eval_transform, clip_indices, decode,
                                open_video)

    name, temporal, spatial = PROTOCOLS[videos.profile]
    cfg = recipe_config(videos.profile, "full", videos)
    records = videos.records[:size.multiview_videos]
    once = EvalVideoDataset(records, cfg, temporal, spatial)
    transform = build_eval_transform(cfg, spatial)

    def decode_once(j: int) -> int:
        return int(once[j][3])

    def per_view(j: int) -> int:
        with open_video(records[j].path) as video:
            n = video.num_frames
        for view in range(temporal):
            indices = clip_indices(cfg, n, train=False, view=view, num_views=temporal)
            for crop in range(spatial):
                transform(decode(records[j].path, indices))[crop]
        return 1

    for j in range(len(records)):  # warm-up: probes each video, as the dataset does once
        decode_once(j)
    measured = rates({"decode_once": decode_once, "per_view": per_view}, len(records),
                     size.rounds)
    return {"protocol": name, "videos": len(records),
            "decode_once_videos_per_s": measured["decode_once"].to_dict(),
            "per_view_videos_per_s": measured["per_view"].to_dict(),
            "speedup": ratio(measured["decode_once"].median, measured["per_view"].median)}


# ----------------------------------------------------------------------------- suite

def run(size_name: str, device: torch.device | None = None,
        on_section: Callable[[dict], Any] | None = None) -> dict[str, dict]:
    """The data and multiview sections (one written set per profile for both); `on_section`
    gets the record so far after each profile (the suite keeps a partial JSON with it)."""
    import av  # noqa: F401  (before decord: decord's bundled libvpx must not shadow PyAV's)

    from videopeft.data.synthetic import PROFILES

    size = SIZES[size_name]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    data: dict[str, Any] = {"size": {"name": size_name, **asdict(size)},
                            "rows": [asdict(r) for r in ROWS], "feed_targets": FEED_TARGETS,
                            "profiles": {}}
    multiview: dict[str, Any] = {"size": data["size"], "protocols": {}}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for profile in PROFILES:
                print(f"[data] {profile}: writing videos ...", flush=True)
                videos = write_set(profile, Path(tmp) / profile, size)
                print(f"[data] {profile}: rows ...", flush=True)
                data["profiles"][profile] = {
                    **videos.facts, "items_per_round": len(items_of(videos, size)),
                    "rows": profile_rows(videos, size)}
                if size.multiview_videos:
                    print(f"[data] {profile}: multiview ...", flush=True)
                    multiview["protocols"][profile] = multiview_rows(videos, size)
                if on_section is not None:
                    on_section({"data": data, "multiview": multiview})
    finally:
        torch.set_num_threads(threads)
    data["device_augmentation"] = device_augmentation_time(device or torch.device("cpu"),
                                                           size_name == "quick")
    return {"data": data, "multiview": multiview}


# ----------------------------------------------------------------------------- markdown

def _rate(row: dict) -> str:
    return f"{row['clips_per_s']['median']:.2f}" if "clips_per_s" in row else "skipped"


def _x(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def markdown_data(section: dict) -> list[str]:
    s = section["size"]
    lines = ["## Data path: training clips/s on one core, realistic videos", "",
             f"Size `{s['name']}`: median of {s['rounds']} rounds, rows interleaved item by item; "
             "one torch thread, decoders on one thread, no DataLoader. `vs a`: clips/s over "
             "the plain decord loop's (same frames); `vs own decode`: over the decord loop on "
             "the row's own frames (differs for row e, 8 frames).", ""]
    for profile, p in section["profiles"].items():
        lines += [f"### {profile}: {p['videos']} videos, {p['size']}, {p['fps']} fps, "
                  f"{p['frames_per_video']} frames, {p['container']} ({p['encoding']}), "
                  f"{p['mean_kbps']:.0f} kb/s; {p['items_per_round']} items per round", "",
                  "| row | clips/s | vs a | vs own decode | frames decoded as planned |",
                  "|---|---:|---:|---:|---|"]
        for key, row in p["rows"].items():
            note = row.get("skipped", "")
            planned = {True: "yes", False: "NO: " + row.get("note", "")}.get(
                row.get("planned_frames"), "")
            extra = "".join(f", {k.replace('_', ' ')} {_x(v)}" for k, v in row.items()
                            if k.startswith("vs_") and k not in ("vs_a", "vs_own_decode"))
            lines.append(f"| {key}: {row['name']}{extra} | {_rate(row)} | {_x(row.get('vs_a'))} "
                         f"| {_x(row.get('vs_own_decode'))} | {planned or note} |")
        lines += ["", "Cores needed to feed N clips/s (N / one core's clips/s, rounded up):", "",
                  "| row | " + " | ".join(f"N = {n}" for n in section["feed_targets"]) + " |",
                  "|---|" + "---:|" * len(section["feed_targets"])]
        for key, row in p["rows"].items():
            if "cores_needed" in row and key != REFERENCE:
                lines.append(f"| {key} | " + " | ".join(
                    str(row["cores_needed"][str(n)]) for n in section["feed_targets"]) + " |")
        lines.append("")
    dev = section["device_augmentation"]
    lines.append(f"Device-side augmentation, batch of {dev['batch']} 16x224 clips on "
                 f"{dev['device']}: " + (dev["skipped"] if "skipped" in dev else
                                         f"{dev['seconds']['median'] * 1e3:.1f} ms"))
    return lines


def markdown_multiview(section: dict) -> list[str]:
    lines = ["## Multi-view eval: decode once vs each view separately (videos/s, one core)", "",
             "| set | views | videos | decode once | each view separately | speed-up |",
             "|---|---|---:|---:|---:|---:|"]
    for profile, p in section["protocols"].items():
        lines.append(f"| {profile} | {p['protocol']} | {p['videos']} "
                     f"| {p['decode_once_videos_per_s']['median']:.2f} "
                     f"| {p['per_view_videos_per_s']['median']:.2f} | {p['speedup']:.2f}x |")
    return lines


def markdown(sections: dict) -> list[str]:
    multiview = sections["multiview"]
    return [*markdown_data(sections["data"]),
            *(["", *markdown_multiview(multiview)] if multiview["protocols"] else [])]
