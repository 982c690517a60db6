"""Frame samplers: pure functions from a video length to the frame indices of a clip.

Two schemes, as in VideoMAE (MCG-NJU/VideoMAE:ssv2.py segments, kinetics.py dense):

* **Segment (TSN)** — `sample_segments`: the video is cut into `clip_len` equal segments and one
  frame is taken from each. Train: a random offset per segment. Test: view `v` of `V` takes the
  fixed offset `int(tick*k + tick*v/V)` with `tick = num_frames/clip_len`, which for `V = 2` is
  VideoMAE's SSv2 protocol (view 0 at `int(tick*k)`, view 1 at `int(tick*k + tick/2)`). A video
  shorter than `clip_len` repeats frames (VideoMAE would instead return all zeros).
* **Dense** — `sample_dense`: `clip_len` frames about `stride` apart. Test: the every-`stride`-th
  frames of the video are cut into `V` windows, evenly spaced, the first and last included (view
  `v` starts at `int(v*(n_sub - clip_len)/(V - 1))`; one view takes the centre). Train, by one of
  two rules (`DENSE_TRAIN_RULES`):

  - `linspace` (VideoMAE fine-tuning, MCG-NJU/VideoMAE:kinetics.py `VideoClsDataset`): with
    `span = clip_len*stride`, `end = randint(span, n)` (exclusive), `start = end - span`, indices
    `linspace(start, end, clip_len)` clipped to `end - 1` and truncated to int. A video of at
    most `span` frames gives `linspace(0, n, n // stride)` padded with the last frame.
  - `stride` (VideoMAE pre-training and AdaptFormer's training set, MCG-NJU/VideoMAE:kinetics.py
    `VideoMAE._sample_train_indices` / `_video_TSN_decord_batch_loader`): a start uniform in
    `[0, n - span]` (0 when shorter), then every `stride`-th frame while the next one stays below
    frame `n - 1`; after that the last frame taken repeats.

Short videos follow a stated policy:

* `repeat_last`: the frames that exist, then the last one repeated (VideoMAE's padding; with it the
  dense train rules are exactly VideoMAE's).
* `loop`: the frames that exist, again from the start, until the clip is full.

Every function checks its arguments and raises ValueError saying which one is wrong.
"""
from __future__ import annotations

import torch

from videopeft.constants import DENSE_TRAIN_RULES, SHORT_VIDEO_POLICIES, STUDY_POLICIES

__all__ = ["sample_segments", "sample_dense", "dense_train_linspace", "dense_train_stride",
           "frames_for_study", "STUDY_POLICIES"]


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_view(view: int, num_views: int, train: bool) -> None:
    _check_positive("num_views", num_views)
    if isinstance(view, bool) or not isinstance(view, int) or not 0 <= view < num_views:
        raise ValueError(f"view must be an integer in [0, {num_views}), got {view!r}")
    if train and num_views != 1:
        raise ValueError(f"views are a test-time notion: train sampling takes num_views=1, "
                         f"got num_views={num_views}")


def sample_segments(num_frames: int, clip_len: int, *, train: bool,
                    generator: torch.Generator | None = None, view: int = 0,
                    num_views: int = 1) -> list[int]:
    """Pick one frame index from each of `clip_len` equal segments of the video."""
    _check_positive("num_frames", num_frames)
    _check_positive("clip_len", clip_len)
    _check_view(view, num_views, train)
    tick = num_frames / clip_len
    starts = torch.arange(clip_len, dtype=torch.float64) * tick
    if train:
        picks = starts + torch.rand(clip_len, generator=generator, dtype=torch.float64) * tick
    else:
        picks = starts + tick * view / num_views  # VideoMAE SSv2: int(tick*k + tick*view/V)
    return picks.floor().clamp(max=num_frames - 1).long().tolist()  # repeats when short


def _pad(frames: list[int], clip_len: int, policy: str) -> list[int]:
    """Fill a too-short index list up to `clip_len` by the short-video policy."""
    if policy == "repeat_last":
        return frames + [frames[-1]] * (clip_len - len(frames))
    return [frames[k % len(frames)] for k in range(clip_len)]  # loop


def _linspace(start: float, stop: float, num: int) -> torch.Tensor:
    """numpy.linspace's values in float64 (`start + k * step`, the last exactly `stop`);
    torch.linspace computes the upper half from `stop`, which can differ in the last bit."""
    k = torch.arange(num, dtype=torch.float64)
    values = start + k * ((stop - start) / (num - 1)) if num > 1 else start + k * (stop - start)
    if num > 1:
        values[-1] = stop
    return values


def dense_train_linspace(num_frames: int, clip_len: int, stride: int, end: int | None = None,
                         short_video: str = "repeat_last") -> list[int]:
    """VideoMAE's fine-tuning clip (kinetics.py `loadvideo_decord`, one segment): `clip_len`
    indices by linspace over the `clip_len * stride` frames before `end` (the random draw, in
    `[span, num_frames)`); a video of at most `span` frames is spread whole and padded."""
    span = clip_len * stride
    if num_frames <= span:
        spread = _linspace(0, num_frames, num_frames // stride).clamp(max=num_frames - 1)
        spread = spread.long().tolist()
        if short_video == "loop" and spread:
            return _pad(spread, clip_len, "loop")
        return spread + [num_frames - 1] * (clip_len - len(spread))  # padded with the last frame
    if end is None or not span <= end < num_frames:
        raise ValueError(f"end must be in [{span}, {num_frames}) for {num_frames} frames, "
                         f"got {end}")
    return _linspace(end - span, end, clip_len).clamp(max=end - 1).long().tolist()


def dense_train_stride(num_frames: int, clip_len: int, stride: int, start: int = 0,
                       short_video: str = "repeat_last") -> list[int]:
    """VideoMAE's pre-training clip (kinetics.py `VideoMAE`, one segment, no jitter): frames
    `start, start + stride, ...` while the next one stays below frame `num_frames - 1`; the last
    frame taken repeats after that. `start` is the random draw, in `[0, num_frames - span]`."""
    frames, offset = [], start + 1  # the reference counts frames from 1
    for _ in range(clip_len):
        frames.append(offset - 1)
        if offset + stride < num_frames:
            offset += stride
    if short_video == "loop" and num_frames < clip_len * stride:
        distinct = list(dict.fromkeys(frames))
        return [distinct[k % len(distinct)] for k in range(clip_len)]
    return frames


def sample_dense(num_frames: int, clip_len: int, stride: int, *, train: bool,
                 generator: torch.Generator | None = None, view: int = 0, num_views: int = 1,
                 short_video: str = "repeat_last", train_rule: str = "linspace") -> list[int]:
    """Take `clip_len` frames about `stride` apart from one window of the video (train: by
    `train_rule`, see the module docstring)."""
    _check_positive("num_frames", num_frames)
    _check_positive("clip_len", clip_len)
    _check_positive("stride", stride)
    _check_view(view, num_views, train)
    if short_video not in SHORT_VIDEO_POLICIES:
        raise ValueError(f"short_video must be one of {list(SHORT_VIDEO_POLICIES)}, "
                         f"got {short_video!r}")
    if train_rule not in DENSE_TRAIN_RULES:
        raise ValueError(f"train_rule must be one of {list(DENSE_TRAIN_RULES)}, got {train_rule!r}")
    span = clip_len * stride
    if train and train_rule == "linspace":
        end = None
        if num_frames > span:
            end = span + int(torch.randint(num_frames - span, (1,), generator=generator))
        return dense_train_linspace(num_frames, clip_len, stride, end, short_video)
    if train:
        start = 0
        if num_frames >= span:
            start = int(torch.randint(num_frames - span + 1, (1,), generator=generator))
        return dense_train_stride(num_frames, clip_len, stride, start, short_video)
    sub = list(range(0, num_frames, stride))  # every stride-th frame, from the first
    if len(sub) < clip_len:
        return _pad(sub, clip_len, short_video)
    slack = len(sub) - clip_len  # how far the window can slide, in sub-sampled frames
    first = slack // 2 if num_views == 1 else int(view * slack / (num_views - 1))
    return sub[first:first + clip_len]


def frames_for_study(num_frames: int, policy: str = "coverage", *, base_coverage: int = 64,
                     stride: int = 4) -> tuple[int, int]:
    """(clip_len, stride) for a frame-count study of dense sampling.

    `coverage` keeps the span of a clip constant (stride = base_coverage // num_frames, so 16
    frames at stride 4 and 4 frames at stride 16 both see 64 frames of video); `fixed` keeps the
    stride and lets the span shrink with fewer frames. Segment sampling always covers the whole
    video, so it needs no study policy.
    """
    _check_positive("num_frames", num_frames)
    _check_positive("base_coverage", base_coverage)
    _check_positive("stride", stride)
    if policy not in STUDY_POLICIES:
        raise ValueError(f"policy must be one of {list(STUDY_POLICIES)}, got {policy!r}")
    if policy == "fixed":
        return num_frames, stride
    if base_coverage < num_frames:
        raise ValueError(f"coverage policy: base_coverage={base_coverage} is shorter than "
                         f"num_frames={num_frames}, so no stride >= 1 keeps it")
    return num_frames, base_coverage // num_frames
