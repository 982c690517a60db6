"""The synthetic benchmark: deterministic, varied, written as real files, and it needs motion."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from data_fixtures import LAYOUTS, run_tool, synthetic_sets  # noqa: F401  (a fixture)
from videopeft.data import count_frames
from videopeft.data.annotations import (HMDB_SPLITS, KINETICS_SPLIT_FILES, LIST_CLASSES_FILE,
                                        LIST_SPLIT_FILES, SSV2_LABELS_FILE, SSV2_SPLIT_FILES,
                                        hmdb_split_suffix)
from videopeft.data.synthetic import (CLASSES, LAYOUT_CONTAINERS, STRIPE_CLASSES, render,
                                      render_frames, sample_specs, write_synthetic)

REPO = Path(__file__).resolve().parents[1]
NUM_CLASSES = 10
CHANCE = 1 / NUM_CLASSES


def test_rendering_is_a_pure_function_of_the_seed():
    a, b = sample_specs(5, seed=3), sample_specs(5, seed=3)
    assert a == b
    assert all(np.array_equal(render(x), render(y)) for x, y in zip(a, b))
    assert not np.array_equal(render(a[0]), render(sample_specs(5, seed=4)[0]))


@pytest.mark.parametrize("benchmark", ["motion", "stripes"])
def test_frames_streamed_one_at_a_time_are_the_rendered_ones(benchmark):
    spec = sample_specs(1, 4, seed=5, size=40, frames_range=(6, 6), benchmark=benchmark)[0]
    streamed = render_frames(spec)
    assert not isinstance(streamed, (list, np.ndarray))  # drawn as they are asked for
    assert np.array_equal(np.stack(list(streamed)), render(spec))


def test_same_arguments_write_the_same_annotations(tmp_path):
    for out in ("a", "b"):
        write_synthetic(tmp_path / out, "ssv2", videos=6, seed=1, size=32, frames_range=(4, 6),
                        progress=False)
    for name in ("something-something-v2-train.json", "something-something-v2-validation.json",
                 "something-something-v2-labels.json"):
        assert (tmp_path / "a/annotations" / name).read_text() == \
               (tmp_path / "b/annotations" / name).read_text()


def test_videos_vary_in_length_frame_rate_and_resolution(synthetic_sets):
    info = synthetic_sets["kinetics"]
    lengths, rates, sizes = [], set(), set()
    for video in info.videos:
        lengths.append(count_frames(video.path))
        with av.open(video.path) as container:
            stream = container.streams.video[0]
            rates.add(stream.average_rate)
            sizes.add((stream.height, stream.width))
    assert min(lengths) < 16 <= max(lengths)
    assert len(set(lengths)) >= 5 and len(rates) >= 3 and len(sizes) >= 3
    assert all(24 <= h <= 32 for h, _ in sizes)


@pytest.mark.parametrize("layout, suffix, codec", [
    ("ssv2", ".webm", "vp9"), ("hmdb51", ".avi", "mpeg4"), ("kinetics", ".mp4", "h264"),
    ("list", ".mp4", "h264")])
def test_each_layout_uses_its_container_and_codec(synthetic_sets, layout, suffix, codec):
    video = synthetic_sets[layout].videos[0]
    assert video.path.endswith(suffix)
    with av.open(video.path) as container:
        assert container.streams.video[0].codec_context.name == codec


def test_ssv2_entries_carry_templates_with_placeholders(synthetic_sets):
    info = synthetic_sets["ssv2"]
    entries = json.loads((Path(info.annotation) / "something-something-v2-train.json").read_text())
    assert all("[something]" in e["template"] for e in entries)
    assert all(e["label"] == e["template"].replace("[something]", e["placeholders"][0])
               for e in entries)


def test_bad_zoo_lists_every_kind_for_both_splits(synthetic_sets):
    for layout in LAYOUTS:
        zoo = synthetic_sets[layout].zoo
        kinds = {"zero_byte", "truncated", "garbage", "missing", "one_frame", "audio_only",
                 "wrong_extension", "no_permission"}
        for split in ("train", "val"):
            assert {z["kind"] for z in zoo if z["split"] == split} == kinds
        missing = [z for z in zoo if z["kind"] == "missing"]
        assert missing and not any(os.path.exists(z["path"]) for z in missing)
        assert {z["expect"] for z in zoo} == {"fail", "warn"}
        assert all(bool(z["warning"]) == (z["expect"] == "warn") for z in zoo)
        assert json.loads((Path(synthetic_sets[layout].root).parent / "bad_zoo.json")
                          .read_text()) == zoo


def test_class_count_is_configurable_and_checked(tmp_path):
    info = write_synthetic(tmp_path, "list", videos=8, num_classes=4, size=32,
                           frames_range=(4, 5), progress=False)
    assert info.class_names == [c.name for c in CLASSES[:4]]
    with pytest.raises(ValueError, match="num_classes must be in"):
        sample_specs(4, num_classes=len(CLASSES) + 1)


# ----------------------------------------------------------------------------- needs motion


def _videos(n: int = 400, seed: int = 1):
    specs = sample_specs(n, NUM_CLASSES, seed=seed, size=32, frames_range=(16, 24))
    return [render(s) for s in specs], np.array([s.label for s in specs])


def _nearest_centroid_accuracy(features: list[np.ndarray], labels: np.ndarray) -> float:
    """Fit class means on 2/3 of the videos; classify the rest by the nearest standardised mean."""
    x = np.stack(features)
    train = np.arange(len(x)) % 3 != 0
    x = (x - x[train].mean(0)) / (x[train].std(0) + 1e-8)
    centroids = np.stack([x[train & (labels == c)].mean(0) for c in range(NUM_CLASSES)])
    pred = ((x[~train, None] - centroids[None]) ** 2).sum(-1).argmin(1)
    return float((pred == labels[~train]).mean())


def _small(frames: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    return F.interpolate(x, size=(16, 16), mode="area").numpy()


def _motion_features(frames: np.ndarray) -> np.ndarray:
    """Hand-made motion cues: drift of the frame-difference centroid, trend of edge energy and of
    the spread of change, speed, and how long anything moves."""
    grey = frames.astype(np.float32).mean(-1)
    t, h, w = grey.shape
    yy, xx = np.mgrid[0:h, 0:w]
    diff = np.abs(np.diff(grey, axis=0))
    mass = diff.sum((1, 2)) + 1e-6
    cx, cy = (diff * xx / w).sum((1, 2)) / mass, (diff * yy / h).sum((1, 2)) / mass
    weight = np.minimum(mass[1:], mass[:-1])
    vx, vy = np.diff(cx), np.diff(cy)
    ramp = np.linspace(-1, 1, t)
    edges = np.abs(np.diff(grey, axis=2)).mean((1, 2)) + np.abs(np.diff(grey, axis=1)).mean((1, 2))
    spread = np.sqrt((diff * ((xx / w - cx[:, None, None]) ** 2 + (yy / h - cy[:, None, None]) ** 2)
                      ).sum((1, 2)) / mass)
    return np.array([(vx * weight).sum() / weight.sum(), (vy * weight).sum() / weight.sum(),
                     (edges * ramp).mean() / (edges.mean() + 1e-6),
                     (spread * ramp[1:]).mean() / (spread.mean() + 1e-6),
                     np.median(np.hypot(vx, vy)), (mass > 0.3 * mass.max()).mean()])


def test_the_task_needs_motion_single_frame_statistics_are_near_chance():
    """A model that sees no motion cannot beat chance by much on this benchmark.

    Nearest-centroid classifiers on appearance alone — the time-averaged frame, or the middle
    frame, at 16x16 — reach about chance (10 % for 10 classes; 6-13 % measured over seeds 1-5),
    because every class draws position, orientation, size, opacity, colour and background from
    the same ranges. As a contrast, the same classifier on six hand-made motion cues
    (frame-difference centroid drift, edge-energy trend, ...) reaches 30-34 %: the information
    is in the motion (and the task is far from solved by such cues).
    """
    videos, labels = _videos()
    mean_frame = _nearest_centroid_accuracy([_small(v).mean(0).ravel() for v in videos], labels)
    middle_frame = _nearest_centroid_accuracy([_small(v[len(v) // 2:][:1]).ravel() for v in videos],
                                              labels)
    motion = _nearest_centroid_accuracy([_motion_features(v) for v in videos], labels)
    assert mean_frame < CHANCE + 0.08, f"time-averaged frame: {mean_frame:.1%}"
    assert middle_frame < CHANCE + 0.08, f"middle frame: {middle_frame:.1%}"
    assert motion > 2 * max(mean_frame, middle_frame, CHANCE), f"motion cues: {motion:.1%}"


def test_make_synthetic_cli_writes_a_layout(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "make_synthetic.py"),
                           "--layout", "hmdb51", "--out", str(tmp_path / "h"), "--videos", "4",
                           "--size", "32", "--frames-range", "4", "6", "--bad-zoo",
                           "--no-progress"], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"data.root={tmp_path / 'h' / 'videos'}" in proc.stdout
    assert (tmp_path / "h" / "annotations" / "c00_move_right_test_split1.txt").is_file()


def test_layout_files_are_the_names_the_readers_look_for(synthetic_sets):
    """The writer takes each layout's file names from the readers' module, so it writes exactly
    those files: the reader of every layout finds them without being told a file name."""
    hmdb_classes = synthetic_sets["hmdb51"].class_names
    expected = {"ssv2": {SSV2_LABELS_FILE, *SSV2_SPLIT_FILES.values()},
                "hmdb51": {f"{c}{hmdb_split_suffix(k)}" for c in hmdb_classes for k in HMDB_SPLITS},
                "kinetics": set(KINETICS_SPLIT_FILES.values()),
                "list": {LIST_CLASSES_FILE, *(names[0] for names in LIST_SPLIT_FILES.values())}}
    assert set(expected) == set(LAYOUTS) == set(LAYOUT_CONTAINERS)
    for layout, names in expected.items():
        assert {p.name for p in Path(synthetic_sets[layout].annotation).iterdir()} == names


@pytest.mark.parametrize("args, message", [
    (["--num-classes", "99"], "num_classes must be in [2, 14] for the motion benchmark, got 99"),
    (["--benchmark", "stripes", "--num-classes", "5"],
     "num_classes must be in [2, 4] for the stripes benchmark, got 5"),
    (["--frames-range", "9", "3"],
     "frames_range must be (min, max) with 1 <= min <= max, got (9, 3)"),
    (["--size", "8"], "size must be >= 16 px, got 8"),
    (["--profile", "ssv2-240p"],
     "profile ssv2-240p writes webm files, which the list layout does not read (use ssv2)"),
    (["--profile", "kinetics-320p", "--size", "64"],
     "profile kinetics-320p fixes the frame size and length: drop size and frames_range "
     "(seconds= shortens the videos)"),
    (["--seconds", "2"], "seconds sets the length of a profile's videos: give a profile too"),
    (["--workers", "0"], "workers must be >= 1, got 0"),
])
def test_make_synthetic_bad_arguments_are_one_error_line_before_anything_is_written(
        tmp_path, capsys, args, message):
    out = tmp_path / "out"
    status, errors = run_tool("make_synthetic", ["--layout", "list", "--out", str(out), *args],
                              capsys)
    assert (status, errors) == (2, [f"error: {message}"])
    assert not out.exists()


def test_make_synthetic_needs_a_layout_or_a_profile(tmp_path, capsys):
    status, errors = run_tool("make_synthetic", ["--out", str(tmp_path / "out")], capsys)
    assert (status, errors) == (
        2, ["error: command line: expected --layout (or --profile, which names its layout)"])
    assert not (tmp_path / "out").exists()


def test_worker_processes_write_the_same_files(tmp_path):
    infos = [write_synthetic(tmp_path / f"w{workers}", "list", videos=4, num_classes=2, size=32,
                             frames_range=(4, 6), progress=False, workers=workers)
             for workers in (1, 2)]
    for one, two in zip(infos[0].videos, infos[1].videos):
        assert Path(one.path).read_bytes() == Path(two.path).read_bytes()
    for name in ("train.txt", "val.txt", "classes.txt"):
        assert (tmp_path / "w1/annotations" / name).read_text() == \
               (tmp_path / "w2/annotations" / name).read_text()


def test_make_synthetic_output_folder_that_cannot_be_made_is_one_error_line(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "out"
    status, errors = run_tool("make_synthetic", ["--layout", "list", "--out", str(out),
                                                 "--videos", "2", "--num-classes", "2"], capsys)
    assert status == 2 and len(errors) == 1
    assert errors[0].startswith(f"error: {out / 'videos'}: cannot create the output folder: "
                                f"NotADirectoryError: ")


# ----------------------------------------------------------------------------- stripes


def _frame_orientations(frames: np.ndarray) -> np.ndarray:
    """Each frame's stripe orientation (0-3, wave angle in 45-degree steps), from the peak of its
    power spectrum: an estimate independent of the renderer's code."""
    grey = frames.astype(np.float64).mean(-1)
    grey -= grey.mean((1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(grey)) ** 2
    fy = np.fft.fftfreq(grey.shape[1])[:, None] * np.ones(grey.shape[1:])
    fx = np.fft.fftfreq(grey.shape[2])[None, :] * np.ones(grey.shape[1:])
    peak = power.reshape(len(grey), -1).argmax(1)
    angle = np.arctan2(fy.ravel()[peak], fx.ravel()[peak]) % np.pi
    return np.round(angle / (np.pi / 4)).astype(int) % 4


def test_stripes_class_is_the_orientation_that_dominates_over_time():
    """About 5/8 of the frames show the class's orientation; a vote over all frames recovers the
    class of nearly every video, while one frame alone is right only about 5/8 of the time and
    the time-averaged frame (random phase washes the stripes out) is near chance."""
    specs = sample_specs(120, 4, seed=1, size=32, frames_range=(16, 24), benchmark="stripes")
    videos = [render(s) for s in specs]
    labels = np.array([s.label for s in specs])
    per_frame = [_frame_orientations(v) for v in videos]
    share = np.mean(np.concatenate([o == y for o, y in zip(per_frame, labels)]))
    assert 0.55 < share < 0.70, f"frames showing the class orientation: {share:.1%}"
    vote = np.mean([np.bincount(o, minlength=4).argmax() == y for o, y in zip(per_frame, labels)])
    assert vote > 0.9, f"majority vote over frames: {vote:.1%}"
    first = np.mean([o[0] == y for o, y in zip(per_frame, labels)])
    assert first < 0.75, f"first frame alone: {first:.1%}"
    mean_frame = [_small(v).mean(0).ravel() for v in videos]
    x = np.stack(mean_frame)
    train = np.arange(len(x)) % 3 != 0
    x = (x - x[train].mean(0)) / (x[train].std(0) + 1e-8)
    centroids = np.stack([x[train & (labels == c)].mean(0) for c in range(4)])
    pred = ((x[~train, None] - centroids[None]) ** 2).sum(-1).argmin(1)
    assert np.mean(pred == labels[~train]) < 0.25 + 0.15


def test_stripes_benchmark_writes_its_own_classes_and_checks_its_class_count(tmp_path):
    info = write_synthetic(tmp_path, "ssv2", videos=8, num_classes=4, size=32,
                           frames_range=(4, 5), progress=False, benchmark="stripes")
    assert info.class_names == [c.template for c in STRIPE_CLASSES]
    entry = json.loads((tmp_path / "annotations/something-something-v2-train.json")
                       .read_text())[0]
    assert entry["label"] == entry["template"] and entry["placeholders"] == []
    with pytest.raises(ValueError, match=r"num_classes must be in \[2, 4\] for the stripes "):
        sample_specs(4, num_classes=5, benchmark="stripes")
    with pytest.raises(ValueError, match="benchmark must be one of"):
        sample_specs(4, num_classes=2, benchmark="stripe")
