"""Transforms: one random draw per clip, normalisation once, the eval crop geometry."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from videopeft.config import DataConfig
from videopeft.data import build_eval_transform, build_train_transform
from videopeft.data.randaugment import ClipRandAugment
from videopeft.data.transforms import random_resized_crop_box, spatial_crop_offsets

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
FULL_AUG = dict(flip=True, rand_augment="rand-m9-n4-mstd0.5-inc1", random_erasing=1.0)


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def _textured_frame(h: int = 40, w: int = 56) -> torch.Tensor:
    """One uint8 (H, W, 3) frame with structure in every direction and colour."""
    gen = torch.Generator().manual_seed(0)
    frame = torch.randint(0, 256, (h // 8, w // 8, 3), generator=gen, dtype=torch.uint8)
    return frame.repeat_interleave(8, 0).repeat_interleave(8, 1)


def test_train_output_is_float_c_t_h_w():
    cfg = DataConfig(img_size=32, **FULL_AUG)
    clip = build_train_transform(cfg)(_textured_frame().expand(5, -1, -1, -1).contiguous())
    assert clip.dtype == torch.float32 and tuple(clip.shape) == (3, 5, 32, 32)


@pytest.mark.parametrize("seed", range(8))
def test_every_augmentation_is_drawn_once_per_clip(seed):
    """Identical input frames stay identical through RandAugment, crop and flip, and random
    erasing hits the same region in every frame (its fill is per-pixel noise)."""
    frames = _textured_frame().expand(6, -1, -1, -1).contiguous()
    _seed(seed)
    no_erase = DataConfig(img_size=32, **{**FULL_AUG, "random_erasing": 0.0})
    plain = build_train_transform(no_erase)(frames)
    _seed(seed)
    erased = build_train_transform(DataConfig(img_size=32, **FULL_AUG))(frames)
    assert torch.equal(plain, plain[:, :1].expand_as(plain))
    region = (erased != plain).any(0)  # (T, H, W)
    assert region[0].any() and torch.equal(region, region[:1].expand_as(region))


@pytest.mark.parametrize("seed", range(5))
def test_rand_augment_applies_the_same_ops_and_magnitudes_to_every_frame(seed):
    ra = ClipRandAugment("rand-m9-n3-mstd0.5", 32)
    base = _textured_frame()
    frames = torch.stack([base, base, base])
    _seed(seed)
    out = ra(frames)
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])


def test_rand_augment_leaves_the_generators_as_one_call_would():
    ra = ClipRandAugment("rand-m9-n3-mstd0.5", 32)
    _seed(3)
    ra(_textured_frame()[None])
    after_one = (random.random(), np.random.rand())
    _seed(3)
    ra(_textured_frame().expand(7, -1, -1, -1).contiguous())
    assert (random.random(), np.random.rand()) == after_one


def test_rand_augment_changes_the_clip_across_draws():
    ra = ClipRandAugment("rand-m9-n3-mstd0.5", 32)
    frames = _textured_frame()[None]
    outs = []
    for seed in range(6):
        _seed(seed)
        outs.append(ra(frames))
    assert sum(not torch.equal(o, frames) for o in outs) >= 4


def _left_dark_right_bright(t: int = 3) -> torch.Tensor:
    frames = torch.zeros(t, 32, 32, 3, dtype=torch.uint8)
    frames[:, :, 16:] = 255
    return frames


@pytest.mark.parametrize("flip", [False, True])
def test_horizontal_flip_happens_only_when_enabled(flip):
    cfg = DataConfig(img_size=32, flip=flip, scale=(1.0, 1.0))
    transform = build_train_transform(cfg)
    flipped = []
    for seed in range(20):
        _seed(seed)
        clip = transform(_left_dark_right_bright())
        left, right = clip[..., :16].mean(), clip[..., 16:].mean()
        flipped.append(bool(left > right))
        assert torch.equal(clip[:, 0], clip[:, 1])  # the whole clip flips, or none of it
    assert any(flipped) == flip and not all(flipped)


def test_normalisation_is_applied_exactly_once():
    cfg = DataConfig(img_size=16, scale=(1.0, 1.0))
    white = torch.full((2, 16, 16, 3), 255, dtype=torch.uint8)
    expected = torch.tensor([(1 - m) / s for m, s in zip(MEAN, STD)]).view(3, 1, 1, 1)
    torch.testing.assert_close(build_train_transform(cfg)(white), expected.expand(3, 2, 16, 16))
    torch.testing.assert_close(build_eval_transform(cfg)(white)[0], expected.expand(3, 2, 16, 16))


def test_random_resized_crop_box_respects_scale_and_bounds():
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        top, left, h, w = random_resized_crop_box(40, 60, (0.3, 0.6), generator=gen)
        assert 0 <= top and top + h <= 40 and 0 <= left and left + w <= 60
        assert 0.2 <= h * w / 2400 <= 0.7  # rounding aside, within the asked area range


def test_multi_scale_crop_gives_the_right_shape():
    cfg = DataConfig(img_size=24, crop="multi_scale")
    frames = _textured_frame()[None].expand(4, -1, -1, -1)
    clip = build_train_transform(cfg)(frames)
    assert tuple(clip.shape) == (3, 4, 24, 24)


def _column_ramp(h: int, w: int) -> torch.Tensor:
    """One uint8 frame whose red value is 2 * column (so a crop's left edge can be read back)."""
    frame = torch.zeros(h, w, 3, dtype=torch.uint8)
    frame[..., 0] = (torch.arange(w) * 2).to(torch.uint8)
    return frame[None].expand(2, -1, -1, -1).contiguous()


def _red_column(crop: torch.Tensor, col: int) -> int:
    return round(float(crop[0, 0, 0, col] * STD[0] + MEAN[0]) * 255 / 2)


def test_eval_three_crops_sit_at_start_middle_and_end_of_the_long_side():
    cfg = DataConfig(img_size=32)
    views = build_eval_transform(cfg, views_spatial=3)(_column_ramp(32, 96))
    assert tuple(views.shape) == (3, 3, 2, 32, 32)
    assert [_red_column(v, 0) for v in views] == [0, 32, 64]  # int(i * (96 - 32) / 2)


def test_eval_three_crops_of_a_portrait_video_run_down_the_height():
    assert spatial_crop_offsets(96, 32, 32, 3) == [(0, 0), (32, 0), (64, 0)]
    assert spatial_crop_offsets(33, 101, 32, 3) == [(0, 0), (0, 34), (0, 69)]


def test_eval_centre_crop_after_short_side_resize():
    cfg = DataConfig(img_size=32)
    views = build_eval_transform(cfg, views_spatial=1, short_side=48)(_column_ramp(64, 128))
    # 64x128 -> 48x96; the centre crop's first column is column 32 of the resized frame, which
    # samples original column (32 + 0.5) * 128/96 - 0.5 = 42.8
    assert tuple(views.shape) == (1, 3, 2, 32, 32)
    assert abs(_red_column(views[0], 0) - 42.8) <= 1


@pytest.mark.parametrize("kwargs, message", [
    (dict(views_spatial=2), "views_spatial must be 1 or 3, got 2"),
    (dict(short_side=16), "short_side=16 is smaller than the crop img_size=32"),
])
def test_bad_eval_settings_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_eval_transform(DataConfig(img_size=32), **kwargs)


def test_non_uint8_frames_are_rejected():
    with pytest.raises(ValueError, match="expected uint8 frames"):
        build_train_transform(DataConfig(img_size=16))(torch.zeros(2, 16, 16, 3))


def test_posterize_to_zero_bits_is_black_and_timms_otherwise():
    """Pillow 13 refuses 0 bits, which timm asks for at magnitude 10 (rand-m9-mstd0.5 reaches it
    in about 2% of posterize draws): the worker mode gives black, as the bit mask does."""
    from PIL import Image, ImageOps

    from videopeft.data.randaugment import ClipRandAugment, posterize_to_black

    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    assert not np.asarray(posterize_to_black(image, 0)).any()
    assert np.array_equal(np.asarray(posterize_to_black(image, 3)),
                          np.asarray(ImageOps.posterize(image, 3)))
    ops = ClipRandAugment("rand-m10-n4-mstd0-inc1", 8)  # magnitude 10: posterize keeps 0 bits
    frames = torch.from_numpy(np.asarray(image)).expand(2, 8, 8, 3).contiguous()
    for seed in range(40):
        random.seed(seed)
        np.random.seed(seed)
        assert ops(frames).shape == (2, 8, 8, 3)
