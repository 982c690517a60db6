"""Device augmentation and repeated augmentation: workers that only decode and cut give the
clips the worker pipeline gives, a decoded video yields `num_sample` clips, and the decode size
and threads are what the config says.

Parity is checked clip by clip under one seed: `TrainTransform.cut` must draw the crop, flip and
erasing box that `TrainTransform.__call__` draws, and `DeviceAugment` must then compute the same
pixels (within the rounding of a uint8 resize); RandAugment's ops are checked op by op in
test_data_randaugment.py.
"""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from timm.data.random_erasing import RandomErasing

from engine_fixtures import tiny_config, tiny_set  # noqa: F401
from videopeft.config import DataConfig, RunConfig
from videopeft.data import datasets as datasets_module
from videopeft.data import decode, open_video
from videopeft.data.annotations import read_annotations
from videopeft.data.datasets import EvalVideoDataset, TrainClipDataset, collate_train
from videopeft.data.decoders import DecodeOptions, available_backends, reduced_size
from videopeft.data.device_augment import (DeviceAugment, build_device_augment, normalize_clips,
                                           resolve_augment)
from videopeft.data.transfer import unpack_crops
from videopeft.data.transforms import TrainTransform, decode_short_side, erase_box
from videopeft.engine.evaluate import evaluate_model
from videopeft.engine.builder import resolve_precision
from videopeft.engine.loaders import data_levers
from videopeft.engine.train import train
from videopeft.errors import ConfigError
from videopeft.engine.tasks import build_criterion

STD = (0.229, 0.224, 0.225)
ONE_LEVEL = 1.0 / (255 * min(STD)) + 1e-5  # one grey level, in normalised units


def frames(t: int = 4, h: int = 36, w: int = 52, seed: int = 0) -> torch.Tensor:
    """Smooth gradients plus noise: uint8 (T, H, W, 3)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    base = torch.stack([xx * 4, yy * 6, (xx + yy) * 2], -1).float()
    noise = torch.randint(0, 40, (t, h, w, 3), generator=g).float()
    return (base + noise + torch.arange(t).view(-1, 1, 1, 1) * 9).clamp(0, 255).to(torch.uint8)


def seeded(fn, seed: int):
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    return fn()


@pytest.mark.parametrize("crop", ["random_resized", "multi_scale"])
def test_device_mode_draws_and_computes_what_the_worker_pipeline_does(crop):
    """Per seed: the same crop box, flip and erased box, and equal pixels elsewhere."""
    kw = dict(scale=(0.2, 1.0), crop=crop, flip=True, random_erasing=0.5)
    worker = TrainTransform(24, **kw)
    cutter = TrainTransform(24, device_side=True, **kw)
    device = DeviceAugment(24, crop=crop)
    clip = frames()
    flips = erased = 0
    for seed in range(24):
        expected = seeded(lambda: worker(clip), seed)
        cut = seeded(lambda: cutter.cut(clip), seed)
        batch = {k: np.stack([v]) for k, v in cut.items() if k != "frames"}
        got = device([cut["frames"]], batch)[0]
        top, left, h, w = cut["erase"]
        outside = torch.ones(24, 24, dtype=torch.bool)
        if h:
            outside[top:top + h, left:left + w] = False
            erased += 1
            # the worker erased the very same box: its noise is nowhere near the image there
            assert not torch.allclose(expected[..., ~outside], got[..., ~outside])
        diff = (expected - got).abs()[..., outside]
        assert diff.max() <= ONE_LEVEL, (seed, diff.max())
        flips += bool(cut["flip"])
    assert 0 < flips < 24 and 0 < erased < 24  # both branches were taken


def test_with_rand_augment_both_modes_consume_every_generator_alike():
    """RandAugment in the worker (PIL, before the crop) or planned for the device: the crop box,
    flip, plan and erasing box come from the same draws, so the generators end in step (torch's
    too, unless the worker drew erasing noise from it: the device draws that noise itself)."""
    kw = dict(scale=(0.2, 1.0), flip=True, random_erasing=0.5,
              rand_augment="rand-m9-n4-mstd0.5-inc1")
    worker = TrainTransform(24, **kw)
    cutter = TrainTransform(24, device_side=True, **kw)
    clip = frames()
    for seed in range(12):
        def states():
            return random.getstate(), np.random.get_state()[1].tolist(), torch.get_rng_state()
        after_worker = seeded(lambda: (worker(clip), states())[1], seed)
        cut = seeded(lambda: (cutter.cut(clip), states()), seed)
        assert cut[1][0] == after_worker[0] and cut[1][1] == after_worker[1]
        assert cut[0]["rand_augment"].shape == (4, 3)
        if not cut[0]["erase"][2]:  # worker-mode erasing draws its noise from torch's generator
            assert torch.equal(cut[1][2], after_worker[2])


def test_a_cut_is_the_crop_at_its_native_size_and_the_choices_on_the_host():
    cut = seeded(lambda: TrainTransform(16, scale=(0.3, 0.6), device_side=True).cut(frames()),
                 3)
    assert cut["frames"].dtype == torch.uint8 and cut["frames"].shape[0] == 4
    h, w = cut["frames"].shape[1:3]
    assert (h, w) != (16, 16) and 0.25 <= h * w / (36 * 52) <= 0.65
    assert isinstance(cut["flip"], np.bool_) and not cut["flip"]  # flip off
    assert cut["rand_augment"].shape == (0, 3) and cut["erase"].tolist() == [0, 0, 0, 0]


def test_erase_box_is_the_region_timms_random_erasing_blanks():
    erasing = RandomErasing(0.7, mode="pixel", max_count=1, device="cpu")
    hits = 0
    for seed in range(40):
        random.seed(seed)
        image = torch.zeros(6, 20, 28)
        erasing(image)
        after_timm = random.getstate()
        random.seed(seed)
        box = erase_box(0.7, 20, 28)
        assert random.getstate() == after_timm  # the same draws, not just the same result
        changed = (image != 0).any(0).nonzero()
        if box is None:
            assert changed.numel() == 0
            continue
        hits += 1
        top, left, h, w = box
        assert changed[:, 0].min() == top and changed[:, 0].max() == top + h - 1
        assert changed[:, 1].min() == left and changed[:, 1].max() == left + w - 1
    assert 10 < hits < 40


def test_device_normalisation_is_the_worker_normalisation():
    clip = frames()
    worker = TrainTransform(36, scale=(1.0, 1.0))
    # a full-frame crop of a square image is the image: compare the normalisations alone
    square = clip[:, :36, :36]
    expected = seeded(lambda: worker(square), 0)
    got = normalize_clips(square.permute(3, 0, 1, 2))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------- repeated clips

def _counting_open(monkeypatch) -> list[str]:
    opened: list[str] = []
    real = datasets_module.open_video
    monkeypatch.setattr(datasets_module, "open_video",
                        lambda path, *args: opened.append(path) or real(path, *args))
    return opened


@pytest.mark.parametrize("augment", ["worker", "device"])
def test_num_sample_cuts_k_differently_augmented_clips_from_one_decode(tiny_set, tmp_path,
                                                                       augment, monkeypatch):
    cfg = tiny_config(tiny_set, tmp_path, data={"num_sample": 3, "augment": augment,
                                                "flip": True, "scale": [0.2, 1.0]})
    dataset = datasets_module.build_dataset(cfg.data, "train", train=True,
                                            manifest=datasets_module.Manifest())[0]
    opened = _counting_open(monkeypatch)
    item, label, index = seeded(lambda: dataset[0], 0)
    assert len(opened) == 1
    if augment == "worker":
        assert item.shape == (3, 3, 4, 32, 32)
        clips = list(item)
    else:
        assert len(item["frames"]) == 3 and item["erase"].shape == (3, 4)
        clips = list(DeviceAugment(32)(item["frames"], item).unbind(0))
    for a in range(3):
        for b in range(a + 1, 3):
            assert not torch.allclose(clips[a], clips[b])


def test_collate_gives_one_row_per_clip_and_repeats_labels(tiny_set, tmp_path):
    for augment in ("worker", "device"):
        cfg = tiny_config(tiny_set, tmp_path, data={"num_sample": 2, "augment": augment})
        dataset = datasets_module.build_dataset(cfg.data, "train", train=True,
                                                manifest=datasets_module.Manifest())[0]
        items = [seeded(lambda i=i: dataset[i], i) for i in (0, 4, 7)]
        clips, labels, indices = collate_train(items)
        assert indices.tolist() == [0, 0, 4, 4, 7, 7]
        assert labels.tolist() == [label for _, label, _ in items for _ in range(2)]
        if augment == "worker":
            assert clips.shape == (6, 3, 4, 32, 32)
            torch.testing.assert_close(clips[2:4], items[1][0])
        else:
            assert clips["flip"].shape == (6,) and clips["shapes"].shape == (6, 4)
            crops = unpack_crops(clips, torch.device("cpu"))  # one buffer, six views
            assert [tuple(c.shape) for c in crops] == [tuple(s) for s in clips["shapes"]]
            assert all(c.untyped_storage().data_ptr() == clips["frames"].data_ptr()
                       for c in crops)
            assert torch.equal(crops[3], items[1][0]["frames"][1])


def test_mixup_counts_the_clips_of_a_micro_batch(tiny_set, tmp_path):
    odd = tiny_config(tiny_set, tmp_path, train={"batch_size": 3, "mixup": 0.8})
    with pytest.raises(ConfigError, match=r"batch_size x data.num_sample\), got 3"):
        build_criterion(odd, 3)
    even = tiny_config(tiny_set, tmp_path, train={"batch_size": 3, "mixup": 0.8},
                       data={"num_sample": 2})
    assert build_criterion(even, 3)[0] is not None


# ----------------------------------------------------------------------------- training, eval

def _losses(run) -> list[float]:
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if r.get("event") == "train"]


@pytest.mark.slow
def test_device_mode_trains_like_worker_mode(tiny_set, tmp_path):
    """Same seed, same draws: the loss curves of the two modes agree, and both fall; the lr and
    the global batch count videos while each step sees num_sample clips per video."""
    runs = {}
    for augment in ("worker", "device"):
        cfg = tiny_config(tiny_set, tmp_path / augment, method={"name": "full"},
                          data={"augment": augment, "num_sample": 2, "flip": True},
                          train={"epochs": 4, "lr": 0.0, "blr": 0.256, "eval_every": 0},
                          eval={"views_temporal": 1, "views_spatial": 1})
        runs[augment] = train(cfg)
        losses = _losses(tmp_path / augment)
        assert len(losses) == 12
        assert sum(losses[-3:]) < 0.85 * sum(losses[:3]), losses
    worker, device = (_losses(tmp_path / m) for m in ("worker", "device"))
    assert worker[0] == pytest.approx(device[0], abs=1e-4)  # one step: the same clips
    assert max(abs(a - b) for a, b in zip(worker, device)) < 0.05
    facts = runs["device"]["training"]
    assert (facts["augment"], facts["num_sample"]) == ("device", 2)
    assert facts["clips_per_step"] == 2 * facts["global_batch"] == 6
    # lr = blr x global batch / 256 with the batch in videos (3), not clips (6), as VideoMAE
    assert runs["worker"]["training"]["lr"] == facts["lr"] == pytest.approx(0.256 * 3 / 256)


def test_device_mode_evaluation_scores_exactly_as_worker_mode(tiny_set, tmp_path):
    import videopeft

    model = videopeft.create_model("videomae_tiny", num_classes=3, num_frames=4, img_size=32)
    model.eval()
    results = {}
    for augment in ("worker", "device"):
        cfg: RunConfig = tiny_config(tiny_set, tmp_path, data={"augment": augment})
        dataset = EvalVideoDataset(read_annotations(
            "list", cfg.data.root, cfg.data.annotation, "val")[0], cfg.data, 2, 3)
        assert dataset[0][0].dtype == (torch.uint8 if augment == "device" else torch.float32)
        _, scores = evaluate_model(model, dataset, ["a", "b", "c"], batch_size=2, workers=0,
                                   device=torch.device("cpu"),
                                   precision=resolve_precision("off", torch.device("cpu")),
                                   fusion="softmax_mean")
        results[augment] = scores.logits
    torch.testing.assert_close(results["device"], results["worker"], rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------- decoding

def test_auto_resolves_to_the_device_on_cuda_only():
    assert resolve_augment("auto", torch.device("cuda")) == "device"
    assert resolve_augment("auto", torch.device("cpu")) == "worker"
    assert resolve_augment("device", torch.device("cpu")) == "device"


def test_the_auto_decode_size_keeps_every_pixel_a_crop_can_use():
    # random-resized (0.08, 1): the smallest crop, sqrt(0.08) of the side, must still fill 224
    assert decode_short_side(DataConfig(img_size=224), train=True) == 792
    # multi-scale: the smallest of GroupMultiScaleCrop's scales, 0.66 of the short side
    assert decode_short_side(DataConfig(img_size=224, crop="multi_scale"), train=True) == 340
    assert decode_short_side(DataConfig(img_size=224), train=False) == 448
    assert decode_short_side(DataConfig(img_size=224), train=False, eval_short_side=256) == 512
    # a set value holds for training; evaluation never goes below its resize target
    assert decode_short_side(DataConfig(img_size=224, decode_short_side=160), train=True) == 160
    assert decode_short_side(DataConfig(img_size=224, decode_short_side=160), train=False) == 224


def test_reduced_size_keeps_the_aspect_and_never_scales_up():
    assert reduced_size(427, 240, 120) == (214, 120)
    assert reduced_size(240, 427, 120) == (120, 214)
    assert reduced_size(427, 240, 240) is None and reduced_size(427, 240, 0) is None


@pytest.mark.parametrize("backend", [b for b in ("decord", "pyav") if b in available_backends()])
def test_a_backend_decodes_at_the_reduced_size(tiny_set, backend):
    path = tiny_set.root + "/" + open(tiny_set.annotation + "/train.txt").readline().split()[0]
    full = decode(path, [0, 2], backend)
    h, w = full.shape[1:3]
    short = min(h, w) // 2
    with open_video(path, backend, DecodeOptions(short_side=short)) as video:
        small = video.get([0, 2])
        assert video.num_frames >= 3
    assert small.shape[1:3] == reduced_size(w, h, short)[::-1]
    # the same picture, smaller: close to an area average of the full frames
    pooled = torch.nn.functional.interpolate(full.permute(0, 3, 1, 2).float(),
                                             size=small.shape[1:3], mode="area")
    assert (pooled - small.permute(0, 3, 1, 2).float()).abs().mean() < 12


def test_decoders_get_the_thread_count_of_the_config(tiny_set, monkeypatch):
    from videopeft.data import decoders

    seen = []
    real = decoders._module("decord").VideoReader
    monkeypatch.setattr(decoders._module("decord"), "VideoReader",
                        lambda *a, **kw: seen.append(kw["num_threads"]) or real(*a, **kw))
    path = tiny_set.root + "/" + open(tiny_set.annotation + "/train.txt").readline().split()[0]
    with open_video(path, "decord", DecodeOptions(threads=3)) as video:
        video.get([0])
    assert seen == [3]
    cfg = DataConfig(layout="list", root=tiny_set.root, annotation=tiny_set.annotation)
    assert TrainClipDataset(read_annotations(
        "list", cfg.root, cfg.annotation, "train")[0], cfg).decode.threads == 1


def test_the_data_warning_names_the_levers_that_apply():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    worker = " | ".join(data_levers(DataConfig(workers=2, augment="worker"), cuda, 16))
    assert "data.workers: 2" in worker and "data.augment: device" in worker
    assert "data.num_sample: 2" in worker and "data.decode_short_side" in worker
    tuned = " | ".join(data_levers(DataConfig(workers=15, augment="device", num_sample=2),
                                   cuda, 16))
    assert "workers" not in tuned and "augment" not in tuned and "num_sample" not in tuned
    assert "meant for a GPU" in " ".join(data_levers(DataConfig(augment="worker"), cpu, 2))


def test_device_augment_follows_the_data_config():
    aug = build_device_augment(DataConfig(img_size=48, crop="multi_scale",
                                          rand_augment="rand-m7-n4-mstd0.5-inc1"))
    assert (aug.img_size, aug.antialias, aug.rand_augment) == (48, True, True)
    assert build_device_augment(DataConfig()).antialias is False


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_augment_on_cuda_gives_what_it_gives_on_the_cpu():
    """A batch of cuts (RandAugment, flips; erasing off: its noise is the device's own) from
    pinned host memory: the clips on CUDA equal those on the CPU within one grey level."""
    cutter = TrainTransform(48, scale=(0.2, 1.0), flip=True, device_side=True,
                            rand_augment="rand-m9-n4-mstd0.5-inc1")
    source = frames(t=4, h=60, w=90)
    items = [({k: [v] if k == "frames" else v[None] for k, v in
               seeded(lambda: cutter.cut(source), s).items()}, 0, s) for s in range(8)]
    batch = collate_train(items)[0]
    batch["frames"] = batch["frames"].pin_memory()
    augment = DeviceAugment(48, rand_augment=True)
    on_cpu = augment(unpack_crops(batch, torch.device("cpu")), batch)
    on_cuda = augment(unpack_crops(batch, torch.device("cuda")), batch).cpu()
    assert (on_cuda - on_cpu).abs().max() <= 2 * ONE_LEVEL  # two ops may each round once
