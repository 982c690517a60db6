"""Device RandAugment: plans drawn by timm's own RandAugment, each PIL op redone in torch."""
from __future__ import annotations

import inspect
import pickle
import random

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import default_collate

from videopeft.constants import RAND_AUGMENT_FILL
from videopeft.data.randaugment import (OPS, ClipRandAugment, RandAugmentPlanner,
                                        apply_rand_augment, decode_plan, encode_plan)

CONFIG = "rand-m7-n4-mstd0.5-inc1"  # VideoMAE's
H, W = 40, 56
GEOMETRIC = ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
ENHANCE_FACTORS = [(0.1,), (0.55,), (1.0,), (1.37,), (1.9,)]
CASES = {  # fixed arguments per op, the extremes of timm's ranges included
    "AutoContrast": [()], "Equalize": [()], "Invert": [()],
    "Rotate": [(30.0,), (-30.0,), (12.7,), (0.0,)],
    "PosterizeIncreasing": [(1,), (2,), (3,), (4,)],
    "SolarizeIncreasing": [(0,), (77,), (128,), (256,)],
    "SolarizeAdd": [(0,), (55,), (110,)],
    "ColorIncreasing": ENHANCE_FACTORS, "ContrastIncreasing": ENHANCE_FACTORS,
    "BrightnessIncreasing": ENHANCE_FACTORS, "SharpnessIncreasing": ENHANCE_FACTORS,
    "ShearX": [(0.3,), (-0.3,), (0.13,)], "ShearY": [(0.3,), (-0.3,), (0.13,)],
    "TranslateXRel": [(0.45,), (-0.45,), (0.137,)], "TranslateYRel": [(0.45,), (-0.45,), (0.2,)],
}
RANGES = {  # what timm's level functions give for magnitudes in [0, 10] (auto_augment.py)
    "Rotate": (-30, 30), "PosterizeIncreasing": (0, 4), "SolarizeIncreasing": (0, 256),
    "SolarizeAdd": (0, 110), "ColorIncreasing": (0.1, 1.9), "ContrastIncreasing": (0.1, 1.9),
    "BrightnessIncreasing": (0.1, 1.9), "SharpnessIncreasing": (0.1, 1.9), "ShearX": (-0.3, 0.3),
    "ShearY": (-0.3, 0.3), "TranslateXRel": (-0.45, 0.45), "TranslateYRel": (-0.45, 0.45),
}


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)


def _natural_clip(seed: int, t: int = 3, h: int = H, w: int = W) -> np.ndarray:
    """uint8 (T, H, W, 3): colour gradients reaching 0 and 255, a moving box and disc, noise."""
    gen = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    frames = []
    for i in range(t):
        f = np.stack([xx * 270 / w - 5, yy * 270 / h - 5, 110 + 70 * np.sin((xx + yy + 3 * i) / 6)],
                     -1)
        f[h // 4 + i:h // 2 + i, w // 5:w // 2] = (200, 40, 90)
        f[(yy - 2 * h / 3) ** 2 + (xx - 2 * w / 3 - i) ** 2 < (h / 6) ** 2] = (30, 220, 120)
        frames.append(f + gen.normal(0, 5, f.shape))
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


def _degenerate_clip() -> np.ndarray:
    """Frames with few values: flat (a one-value histogram); two-valued (equalize's lut passes
    255 and is clipped); three-valued with 1275 = 5 * 255 pixels below the top value (equalize's
    step divides by 255: 5, not 4); and a natural frame."""
    flat = np.broadcast_to(np.array([90, 140, 200], np.uint8), (H, W, 3))
    two = np.where((np.arange(W) < 2 * W // 3)[None, :, None], np.array([20, 20, 20], np.uint8),
                   np.array([230, 180, 60], np.uint8)).repeat(H, 0)
    three = np.empty((H * W, 3), np.uint8)
    three[:600], three[600:1275], three[1275:] = (10, 30, 50), (100, 120, 140), (200, 210, 220)
    return np.stack([flat, two, three.reshape(H, W, 3), _natural_clip(5, t=1)[0]])


def _device(clips: np.ndarray, plans: torch.Tensor) -> np.ndarray:
    """uint8 (B, T, H, W, 3) through apply_rand_augment, back to the same layout."""
    x = torch.from_numpy(clips).permute(0, 1, 4, 2, 3)
    return apply_rand_augment(x, plans).permute(0, 1, 3, 4, 2).numpy()


def _timm_op(name: str):
    """timm's PIL function for `name` with the kwargs ClipRandAugment gives it."""
    op = next(op for op in ClipRandAugment(CONFIG, W).ops.ops if op.name == name)
    return lambda frame, args: np.asarray(op.aug_fn(Image.fromarray(frame), *args, **op.kwargs))


@pytest.mark.parametrize("name", OPS)
def test_each_op_matches_timms_pil_op_frame_by_frame(name):
    """A batch of clips, one argument per clip, against timm's PIL op on every frame: equal, or
    for the bicubic affine ops within one grey level on a few pixels (the weighted sum is float32
    where PIL's is float64)."""
    pil = _timm_op(name)
    sets = [np.stack([_natural_clip(1, t=4), _degenerate_clip()]),
            _natural_clip(2, t=2, h=52, w=36)[None]]
    for clips in sets:
        cases = CASES[name]
        batch = np.concatenate([clips] * len(cases))
        plans = torch.stack([encode_plan([(name, args)]) for args in cases
                             for _ in range(len(clips))])
        out = _device(batch, plans)
        for clip, plan, got in zip(batch, plans, out):
            args = decode_plan(plan)[0][1]
            want = np.stack([pil(frame, args) for frame in clip])
            diff = np.abs(got.astype(np.int16) - want)
            if name in GEOMETRIC:
                assert diff.max() <= 1, (name, args)
                assert (diff > 0).mean() < 0.01, (name, args)
            else:
                assert diff.max() == 0, (name, args)


def test_posterize_to_zero_bits_gives_black():
    """timm's level 10 keeps 0 bits: the bit mask keeps nothing (Pillow 13's posterize refuses
    bits < 1; older Pillow returned black)."""
    clips = _natural_clip(3)[None]
    out = _device(clips, encode_plan([("PosterizeIncreasing", (0,))])[None])
    assert out.max() == 0


def _mixed_plans() -> torch.Tensor:
    """Six clips' plans: different ops per clip and layer, some shared with other arguments,
    skipped layers."""
    steps = [
        [("Rotate", (25.0,)), ("Equalize", ()), None, ("ColorIncreasing", (1.6,))],
        [("Rotate", (-14.0,)), ("SolarizeAdd", (60,)), ("ShearY", (0.2,)), None],
        [None, ("Equalize", ()), ("SharpnessIncreasing", (1.9,)), ("TranslateXRel", (0.3,))],
        [("AutoContrast", ()), ("PosterizeIncreasing", (2,)), ("ShearY", (-0.25,)), None],
        [("ContrastIncreasing", (0.4,)), ("Invert", ()), ("SolarizeIncreasing", (100,)),
         ("TranslateYRel", (-0.2,))],
        [None, None, None, None],
    ]
    return torch.stack([encode_plan(s) for s in steps])


def test_a_batch_gives_each_clip_what_its_own_plan_gives_alone():
    clips = np.stack([_natural_clip(10 + i) for i in range(6)])
    plans = _mixed_plans()
    batched = _device(clips, plans)
    for i in range(len(clips)):
        assert np.array_equal(batched[i], _device(clips[i:i + 1], plans[i:i + 1])[0]), i
    assert np.array_equal(batched[5], clips[5])  # all layers skipped: unchanged
    x = torch.from_numpy(clips).permute(0, 1, 4, 2, 3)
    assert torch.equal(apply_rand_augment(x.float(), plans), apply_rand_augment(x, plans))


def test_every_frame_of_a_clip_gets_the_same_ops():
    """Identical frames stay identical through every op: nothing is drawn per frame."""
    frame = _natural_clip(4, t=1)
    clips = np.stack([np.concatenate([frame] * 3)] * 6)
    out = _device(clips, _mixed_plans())
    assert np.array_equal(out, np.broadcast_to(out[:, :1], out.shape))
    assert not np.array_equal(out[0], clips[0])


def test_collated_plans_are_what_apply_takes():
    planner = RandAugmentPlanner(CONFIG, W)
    _seed(0)
    plans = default_collate([planner.draw() for _ in range(3)])
    assert plans.shape == (3, planner.num_layers, 3) and plans.dtype == torch.float64
    out = apply_rand_augment(torch.from_numpy(np.stack([_natural_clip(i) for i in range(3)]))
                             .permute(0, 1, 4, 2, 3), plans)
    assert out.shape == (3, 3, 3, H, W) and out.dtype == torch.float32
    assert torch.equal(out, out.round()) and 0 <= out.min() and out.max() <= 255


def test_apply_refuses_clips_and_plans_of_the_wrong_shape():
    plans = _mixed_plans()
    with pytest.raises(ValueError, match="RGB clips"):
        apply_rand_augment(torch.zeros(6, 3, H, W), plans)
    with pytest.raises(ValueError, match="plans"):
        apply_rand_augment(torch.zeros(5, 2, 3, H, W), plans)


@pytest.mark.parametrize("config", [CONFIG, "rand-m9-n3-mstd0.5"])
def test_a_replayed_plan_is_the_worker_modes_output_and_leaves_the_generators_alike(config):
    """Same seed: the plan replayed through timm's PIL functions equals ClipRandAugment's clip
    bit for bit, and python's and numpy's generators end in the same state. The non-inc set's
    ops (Posterize, Solarize, Color...) plan onto the device ops that share their PIL function."""
    planner, worker = RandAugmentPlanner(config, W), ClipRandAugment(config, W)
    clip = _natural_clip(6)
    applied = 0
    for seed in range(30):
        _seed(seed)
        plan = planner.draw()
        after_plan = (random.getstate(), np.random.get_state())
        _seed(seed)
        want = worker(torch.from_numpy(clip)).numpy()
        after_call = (random.getstate(), np.random.get_state())
        got = np.stack([np.asarray(planner.apply_pil(plan, Image.fromarray(f))) for f in clip])
        assert np.array_equal(got, want), seed
        assert after_plan[0] == after_call[0]
        assert all(np.array_equal(a, b) for a, b in zip(after_plan[1], after_call[1]))
        applied += int((plan[:, 0] >= 0).sum())
    assert applied > 0


def test_plans_draw_the_inc1_ops_within_timms_ranges():
    planner = RandAugmentPlanner(CONFIG, W)
    _seed(1)
    steps = [s for _ in range(1500) for s in decode_plan(planner.draw())]
    applied = [s for s in steps if s is not None]
    assert {name for name, _ in applied} == set(OPS)
    assert 0.3 < len(applied) / len(steps) < 0.7  # each layer applies with probability 0.5
    for name, args in applied:
        if name in RANGES:
            low, high = RANGES[name]
            assert low <= args[0] <= high, (name, args)
        if name in ("PosterizeIncreasing", "SolarizeIncreasing", "SolarizeAdd"):
            assert all(isinstance(a, int) for a in args), (name, args)
    assert {args[1] for name, args in applied if name == "SolarizeAdd"} == {128}
    rotations = [args[0] for name, args in applied if name == "Rotate"]
    assert min(rotations) < 0 < max(rotations)  # timm negates half of the levels


def test_plans_round_trip_and_the_fill_is_the_workers():
    steps = [("SolarizeAdd", (40,)), None, ("Rotate", (-12.25,)), ("PosterizeIncreasing", (3,))]
    assert decode_plan(encode_plan(steps)) == [("SolarizeAdd", (40, 128)), None,
                                               ("Rotate", (-12.25,)), ("PosterizeIncreasing", (3,))]
    fill = inspect.signature(apply_rand_augment).parameters["fill"].default
    assert RandAugmentPlanner(CONFIG, W).fill == tuple(fill) == RAND_AUGMENT_FILL


def test_ops_without_a_device_version_are_refused():
    with pytest.raises(ValueError, match="no device version"):
        RandAugmentPlanner("rand-m9-n2-t3a", W)  # Desaturate, GaussianBlur


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gives_what_the_cpu_gives():
    """Every op on CUDA against the CPU: equal, the affine ops within one level on a few pixels
    (a fused multiply-add may round their float32 sum differently)."""
    clips = np.stack([_natural_clip(20 + i) for i in range(len(OPS))])
    plans = torch.stack([encode_plan([(name, CASES[name][0])]) for name in OPS])
    x = torch.from_numpy(clips).permute(0, 1, 4, 2, 3)
    cpu = apply_rand_augment(x, plans)
    cuda = apply_rand_augment(x.cuda(), plans.cuda()).cpu()
    for i, name in enumerate(OPS):
        diff = (cuda[i] - cpu[i]).abs()
        if name in GEOMETRIC:
            assert diff.max() <= 1 and (diff > 0).float().mean() < 0.01, name
        else:
            assert diff.max() == 0, name
    mixed, x6 = _mixed_plans().cuda(), x[:6].cuda()
    batched = apply_rand_augment(x6, mixed)
    for i in range(6):
        assert torch.equal(batched[i], apply_rand_augment(x6[i:i + 1], mixed[i:i + 1])[0]), i


def test_a_pickled_planner_draws_the_same_plans():
    """Spawned loader workers get the planner by pickle."""
    planner = RandAugmentPlanner(CONFIG, W)
    copy = pickle.loads(pickle.dumps(planner))
    _seed(2)
    want = [planner.draw() for _ in range(20)]
    _seed(2)
    assert all(torch.equal(copy.draw(), plan) for plan in want)
