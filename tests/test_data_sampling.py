"""Samplers follow the VideoMAE formulas (MCG-NJU/VideoMAE:ssv2.py, kinetics.py) and always
return in-range indices."""
from __future__ import annotations

import random

import pytest
import torch

from videopeft.data import frames_for_study, sample_dense, sample_segments


def test_segment_test_views_match_videomae_ssv2_two_view_offsets():
    # tick = 50/16 = 3.125; view 0 = int(tick*k), view 1 = int(tick*k + tick/2), by hand:
    view0 = [0, 3, 6, 9, 12, 15, 18, 21, 25, 28, 31, 34, 37, 40, 43, 46]
    view1 = [1, 4, 7, 10, 14, 17, 20, 23, 26, 29, 32, 35, 39, 42, 45, 48]
    assert sample_segments(50, 16, train=False, view=0, num_views=2) == view0
    assert sample_segments(50, 16, train=False, view=1, num_views=2) == view1


def test_segment_test_views_on_an_integer_tick():
    assert sample_segments(48, 16, train=False, view=0, num_views=2) == list(range(0, 48, 3))
    assert sample_segments(48, 16, train=False, view=1, num_views=2) == list(range(1, 48, 3))
    assert sample_segments(48, 16, train=False, view=2, num_views=3) == list(range(2, 48, 3))


def test_segment_train_takes_one_frame_inside_each_segment():
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        picks = sample_segments(64, 16, train=True, generator=gen)
        assert all(4 * k <= p < 4 * k + 4 for k, p in enumerate(picks))


def test_segment_train_offsets_are_random_per_segment():
    gen = torch.Generator().manual_seed(0)
    draws = {tuple(sample_segments(64, 16, train=True, generator=gen)) for _ in range(20)}
    assert len(draws) == 20


def test_segment_short_video_repeats_frames_in_order():
    # tick = 5/16: int(0.3125*k) for k = 0..15
    expected = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert sample_segments(5, 16, train=False) == expected
    gen = torch.Generator().manual_seed(1)
    picks = sample_segments(5, 16, train=True, generator=gen)
    assert picks == sorted(picks) and set(picks) <= set(range(5))


def test_dense_test_views_match_videomae_five_view_starts():
    # every 4th of 300 frames -> 75 sub-sampled; view c starts at int(c*(75-16)/4)
    starts = [0, 14, 29, 44, 59]
    for view, start in enumerate(starts):
        picks = sample_dense(300, 16, 4, train=False, view=view, num_views=5)
        assert picks == [4 * (start + k) for k in range(16)]
    assert sample_dense(300, 16, 4, train=False, view=4, num_views=5)[-1] == 296  # last window


def test_dense_single_test_view_takes_the_centre_window():
    assert sample_dense(100, 8, 2, train=False) == [2 * (21 + k) for k in range(8)]  # slack 42


def test_dense_stride_rule_has_exact_stride_and_a_start_in_0_to_n_minus_span():
    gen = torch.Generator().manual_seed(0)
    starts = set()
    for _ in range(200):
        picks = sample_dense(100, 16, 4, train=True, generator=gen, train_rule="stride")
        assert all(b - a == 4 for a, b in zip(picks, picks[1:]))
        starts.add(picks[0])
    assert starts == set(range(0, 100 - 64 + 1))  # VideoMAE: randint(n - span + 1)


def test_dense_linspace_rule_spreads_the_clip_over_a_window_of_span_frames():
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        picks = sample_dense(100, 16, 4, train=True, generator=gen)
        assert picks[-1] - picks[0] == 63  # linspace(start, start + 64, 16), last clipped to end-1
        assert all(b - a in (4, 5) for a, b in zip(picks, picks[1:]))  # steps of 64/15


@pytest.mark.parametrize("train, rule", [(False, "linspace"), (True, "stride")])
def test_dense_short_video_policies(train, rule):
    # 10 frames at stride 4 give frames 0, 4, 8; a clip of 8 needs padding
    repeat = sample_dense(10, 8, 4, train=train, short_video="repeat_last", train_rule=rule)
    loop = sample_dense(10, 8, 4, train=train, short_video="loop", train_rule=rule)
    assert repeat == [0, 4, 8, 8, 8, 8, 8, 8]
    assert loop == [0, 4, 8, 0, 4, 8, 0, 4]


def test_dense_linspace_rule_spreads_a_short_video_whole():
    # VideoMAE: linspace(0, 10, 10 // 4) = [0, 10], clipped to 9, padded with 9
    assert sample_dense(10, 8, 4, train=True) == [0, 9, 9, 9, 9, 9, 9, 9]
    assert sample_dense(10, 8, 4, train=True, short_video="loop") == [0, 9] * 4
    assert sample_dense(3, 4, 4, train=True) == [2, 2, 2, 2]  # fewer frames than the stride


def test_dense_window_that_exactly_fits():
    assert sample_dense(13, 4, 4, train=False) == [0, 4, 8, 12]
    # the pre-training loader steps only while the next frame stays below frame n - 1
    assert sample_dense(13, 4, 4, train=True, train_rule="stride") == [0, 4, 8, 8]
    assert sample_dense(16, 4, 4, train=True, train_rule="stride") == [0, 4, 8, 12]


def test_generator_makes_train_sampling_reproducible():
    a = sample_dense(500, 16, 4, train=True, generator=torch.Generator().manual_seed(7))
    b = sample_dense(500, 16, 4, train=True, generator=torch.Generator().manual_seed(7))
    assert a == b
    c = sample_segments(500, 16, train=True, generator=torch.Generator().manual_seed(7))
    d = sample_segments(500, 16, train=True, generator=torch.Generator().manual_seed(7))
    assert c == d


def test_fuzz_indices_are_in_range_and_exactly_clip_len():
    rng = random.Random(0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(2000):
        n, clip, stride = rng.randint(1, 400), rng.randint(1, 32), rng.randint(1, 8)
        views = rng.randint(1, 6)
        view = rng.randrange(views)
        policy = rng.choice(["repeat_last", "loop"])
        rule = rng.choice(["linspace", "stride"])
        for train in (True, False):
            v, nv = (0, 1) if train else (view, views)
            seg = sample_segments(n, clip, train=train, generator=gen, view=v, num_views=nv)
            dense = sample_dense(n, clip, stride, train=train, generator=gen, view=v,
                                 num_views=nv, short_video=policy, train_rule=rule)
            for picks in (seg, dense):
                assert len(picks) == clip
                assert all(isinstance(p, int) and 0 <= p < n for p in picks), (n, clip, stride)
            assert seg == sorted(seg)
            strided = n > (clip - 1) * stride if not train else (
                rule == "stride" and n >= clip * stride and stride > 1)
            if strided:  # long enough: a clean strided window
                assert all(b - a == stride for a, b in zip(dense, dense[1:]))


@pytest.mark.parametrize("frames, stride", [(16, 4), (8, 8), (4, 16), (2, 32), (1, 64), (5, 12)])
def test_coverage_policy_keeps_the_span_constant(frames, stride):
    assert frames_for_study(frames, "coverage") == (frames, stride)


def test_fixed_policy_keeps_the_stride():
    assert frames_for_study(8, "fixed", stride=4) == (8, 4)
    assert frames_for_study(2, "fixed", stride=3) == (2, 3)


@pytest.mark.parametrize("call, message", [
    (lambda: sample_segments(0, 16, train=True), "num_frames must be a positive integer, got 0"),
    (lambda: sample_segments(10, 0, train=True), "clip_len must be a positive integer, got 0"),
    (lambda: sample_segments(10.0, 4, train=True), "num_frames must be a positive integer"),
    (lambda: sample_segments(10, 4, train=False, view=2, num_views=2),
     r"view must be an integer in \[0, 2\), got 2"),
    (lambda: sample_segments(10, 4, train=True, num_views=2), "train sampling takes num_views=1"),
    (lambda: sample_dense(10, 4, 0, train=True), "stride must be a positive integer, got 0"),
    (lambda: sample_dense(10, 4, 2, train=True, short_video="pad"),
     r"short_video must be one of \['repeat_last', 'loop'\], got 'pad'"),
    (lambda: sample_dense(10, 4, 2, train=False, num_views=0), "num_views must be a positive"),
    (lambda: frames_for_study(8, "auto"), r"policy must be one of \['coverage', 'fixed'\]"),
    (lambda: frames_for_study(128, "coverage"), "base_coverage=64 is shorter than num_frames=128"),
    (lambda: frames_for_study(0), "num_frames must be a positive integer"),
])
def test_bad_arguments_raise_a_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()
