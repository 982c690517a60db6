"""Frame samplers: pure functions from a video length to the frame indices of a clip.

Two schemes, as in VideoMAE (MCG-NJU/VideoMAE:ssv2.py segments, kinetics.py dense):

* **Segment (TSN)** — `sample_segments`: the video is cut into `clip_len` equal segments and one
  frame is taken from each. Train: a random offset per segment. Test: view `v` of `V` takes the
  fixed offset `int(tick*k + tick*v/V)` with `tick = num_frames/clip_len`, which for `V = 2` is
  VideoMAE's SSv2 protocol (view 0 at `int(tick*k)`, view 1 at `int(tick*k + tick/2)`). A video
  shorter than `clip_len` repeats frames (VideoMAE would instead return all zeros).
* **Dense** — `sample_dense`: `clip_len` frames `stride` apart. Train: a random window. Test: the
  every-`stride`-th frames of the video are cut into `V` windows, evenly spaced, the first and last
  included (view `v` starts at `int(v*(n_sub - clip_len)/(V - 1))`; one view takes the centre).

Short videos (fewer than `clip_len` frames at `stride`) follow a stated policy:

* `repeat_last`: the frames that exist, then the last one repeated (VideoMAE's padding).
* `loop`: the frames that exist, again from the start, until the clip is full.

Every function checks its arguments and raises ValueError saying which one is wrong.
"""
from __future__ import annotations

import torch

from videopeft.constants import SHORT_VIDEO_POLICIES

__all__ = ["sample_segments", "sample_dense", "frames_for_study",
           "STUDY_POLICIES"]

STUDY_POLICIES = ("coverage", "fixed")


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


def sample_dense(num_frames: int, clip_len: int, stride: int, *, train: bool,
                 generator: torch.Generator | None = None, view: int = 0, num_views: int = 1,
                 short_video: str = "repeat_last") -> list[int]:
    """Take `clip_len` frames `stride` apart from one window of the video."""
    _check_positive("num_frames", num_frames)
    _check_positive("clip_len", clip_len)
    _check_positive("stride", stride)
    _check_view(view, num_views, train)
    if short_video not in SHORT_VIDEO_POLICIES:
        raise ValueError(f"short_video must be one of {list(SHORT_VIDEO_POLICIES)}, "
                         f"got {short_video!r}")
    sub = list(range(0, num_frames, stride))  # every stride-th frame, from the first
    if len(sub) < clip_len:
        return _pad(sub, clip_len, short_video)
    slack = len(sub) - clip_len  # how far the window can slide, in sub-sampled frames
    if train:
        last_start = num_frames - (clip_len - 1) * stride - 1  # window must end inside the video
        start = int(torch.randint(last_start + 1, (1,), generator=generator))
        return [start + k * stride for k in range(clip_len)]
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
