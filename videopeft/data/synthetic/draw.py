"""Drawing: `render` turns a `VideoSpec` into uint8 frames (T, H, W, 3), a pure function of it.

`render_frames` yields the same frames one at a time, so a long video can go to the encoder
without being held in memory (a 10 s 568x320 video is 164 MB of uint8).
Everything is drawn from a numpy Generator seeded from the spec's seed, with numpy masks (no
OpenCV): the same spec gives the same frames. What the benchmarks show is described in
`videopeft.data.synthetic.specs`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from videopeft.data.synthetic.specs import CLASSES, STRIPE_CLASSES, STRIPE_EVIDENCE, VideoSpec

__all__ = ["render", "render_frames"]

_SHAPES = ("rect", "ellipse", "triangle", "ell")
_SCALE = (0.45, 1.6)  # object scale range, shared by every class (grow/shrink sweep through it)
_REACH = 1.35  # farthest point of any shape from its centre, in radii (the L's corner: 1.345)


def _shape_mask(kind: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean mask of a unit-size shape in its own (u, v) coordinates; none is symmetric under
    every rotation, so turning is visible."""
    if kind == "rect":
        return (np.abs(u) < 1.0) & (np.abs(v) < 0.5)
    if kind == "ellipse":
        return u**2 + (v / 0.45) ** 2 < 1.0
    if kind == "triangle":
        return (u > -0.7) & (u < 1.0) & (np.abs(v) < 0.75 * (1.0 - u) / 1.7)
    return (((u > -1.0) & (u < 1.0) & (v > 0.3) & (v < 0.9))  # "ell": an L shape
            | ((u > -1.0) & (u < -0.4) & (v > -0.9) & (v < 0.9)))


@dataclass
class _Object:
    """An object's look and its pose as a function of the action phase p in [0, 1]."""

    shape: str
    color: np.ndarray
    size: float  # half-extent in pixels at scale 1
    x: tuple[float, float]  # centre x (fraction of width) at p = 0 and p = 1
    y: tuple[float, float]
    angle: tuple[float, float]  # radians
    scale: tuple[float, float]
    alpha: tuple[float, float]
    shake: tuple[float, float, float] = (0.0, 0.0, 0.0)  # amplitude x, amplitude y, cycles

    def pose(self, p: float) -> tuple[float, float, float, float, float]:
        lerp = lambda ab: ab[0] + (ab[1] - ab[0]) * p  # noqa: E731
        wobble = math.sin(2 * math.pi * self.shake[2] * p)
        return (lerp(self.x) + self.shake[0] * wobble, lerp(self.y) + self.shake[1] * wobble,
                lerp(self.angle), lerp(self.scale), lerp(self.alpha))


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A solid, gradient or smooth-noise background, float (H, W, 3) in [0, 255]."""
    kind = rng.integers(3)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    if kind == 0:
        return np.broadcast_to(c0, (h, w, 3)).copy()
    if kind == 1:
        theta = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w]
        t = (xx * np.cos(theta) + yy * np.sin(theta)).astype(np.float64)
        t = (t - t.min()) / max(np.ptp(t), 1e-6)
        return c0 + (c1 - c0) * t[..., None]
    coarse = rng.uniform(0, 1, (h // 8 + 2, w // 8 + 2))
    t = np.kron(coarse, np.ones((8, 8)))[:h, :w]  # blocky noise, then a box blur
    t = (t + np.roll(t, 4, 0) + np.roll(t, 4, 1) + np.roll(t, (4, 4), (0, 1))) / 4
    return c0 + (c1 - c0) * t[..., None]


def _contrasting_color(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    mean = background.reshape(-1, 3).mean(0)
    color = rng.uniform(0, 255, 3)
    for _ in range(20):
        if np.abs(color - mean).sum() > 150:
            break
        color = rng.uniform(0, 255, 3)
    return color


def _main_object(motion: str, rng: np.random.Generator, h: int,
                 color: np.ndarray) -> _Object:
    """The actor: its motion is the class; everything else is drawn from shared ranges."""
    size = rng.uniform(0.16, 0.26) * h
    x0, y0 = rng.uniform(0.25, 0.75, 2)
    angle0 = rng.uniform(0, 2 * np.pi)
    scale0 = rng.uniform(0.7, 1.2)
    alpha0 = rng.uniform(0.5, 1.0)
    obj = _Object(rng.choice(_SHAPES), color, size, (x0, x0), (y0, y0), (angle0, angle0),
                  (scale0, scale0), (alpha0, alpha0))
    travel = rng.uniform(0.35, 0.7)
    start = rng.uniform(0.15, 0.85 - travel)
    if motion in ("right", "left", "up", "down"):
        a, b = (start, start + travel) if motion in ("right", "down") else (start + travel, start)
        if motion in ("right", "left"):
            obj.x = (a, b)
        else:
            obj.y = (a, b)
    elif motion in ("cw", "ccw"):
        turn = rng.uniform(np.pi / 3, np.pi)
        obj.angle = (angle0, angle0 + (turn if motion == "cw" else -turn))  # y points down
    elif motion in ("grow", "shrink"):
        small, large = rng.uniform(_SCALE[0], 0.75), rng.uniform(1.2, _SCALE[1])
        obj.scale = (small, large) if motion == "grow" else (large, small)
    elif motion in ("fade_in", "fade_out"):
        obj.alpha = (0.0, alpha0) if motion == "fade_in" else (alpha0, 0.0)
    elif motion in ("fast", "slow"):
        dist = rng.uniform(0.45, 0.6) if motion == "fast" else rng.uniform(0.08, 0.18)
        sx, sy = rng.choice([-1.0, 1.0], 2) * dist / math.sqrt(2)
        obj.x, obj.y = (0.5 - sx / 2, 0.5 + sx / 2), (0.5 - sy / 2, 0.5 + sy / 2)
    elif motion == "shake":
        amp = rng.uniform(0.05, 0.1)
        cycles = rng.uniform(2, 4)
        obj.shake = (amp, 0.0, cycles) if rng.random() < 0.5 else (0.0, amp, cycles)
    return obj


def _timeline(rng: np.random.Generator, motion: str, num_frames: int) -> np.ndarray:
    """The action phase of each frame: 0 before the action starts, 1 after it ends."""
    if motion == "fast":
        start, length = rng.uniform(0.0, 0.5), rng.uniform(0.25, 0.45)
    elif motion == "slow":
        start, length = rng.uniform(0.0, 0.1), rng.uniform(0.85, 0.95)
    else:
        start, length = rng.uniform(0.0, 0.3), rng.uniform(0.5, 0.7)
    t = np.arange(num_frames) / max(num_frames - 1, 1)
    return np.clip((t - start) / length, 0.0, 1.0)


def _distractor(rng: np.random.Generator, h: int, background: np.ndarray) -> _Object:
    """A small object on its own straight path, unrelated to the class."""
    x0, y0 = rng.uniform(0.05, 0.95, 2)
    step = rng.uniform(-0.4, 0.4, 2)
    angle = rng.uniform(0, 2 * np.pi)
    return _Object(rng.choice(_SHAPES), _contrasting_color(rng, background),
                   rng.uniform(0.06, 0.1) * h, (x0, x0 + step[0]), (y0, y0 + step[1]),
                   (angle, angle + rng.uniform(-1, 1)), (1.0, 1.0), (1.0, 1.0))


def _paint(frame: np.ndarray, obj: _Object, p: float, xx: np.ndarray, yy: np.ndarray) -> None:
    """Alpha-blend the object at phase p into a float frame, in place.

    Only the pixels within `_REACH` radii of the centre are tested (the same per-pixel arithmetic
    as over the whole frame, so the frames are the same, at a fraction of the cost)."""
    cx, cy, angle, scale, alpha = obj.pose(p)
    h, w = frame.shape[:2]
    radius = obj.size * scale
    reach = _REACH * radius
    rows = slice(max(0, math.floor(cy * h - reach) - 1), min(h, math.ceil(cy * h + reach) + 2))
    cols = slice(max(0, math.floor(cx * w - reach) - 1), min(w, math.ceil(cx * w + reach) + 2))
    if alpha <= 0 or rows.start >= rows.stop or cols.start >= cols.stop:
        return
    dx, dy = xx[rows, cols] - cx * w, yy[rows, cols] - cy * h
    cos, sin = math.cos(angle), math.sin(angle)
    mask = _shape_mask(obj.shape, (dx * cos + dy * sin) / radius, (-dx * sin + dy * cos) / radius)
    if mask.any():
        region = frame[rows, cols]
        region[mask] = region[mask] * (1 - alpha) + obj.color * alpha


def _stripe_frames(spec: VideoSpec) -> Iterator[np.ndarray]:
    """Gratings whose orientation is the class's in a `STRIPE_EVIDENCE` share of frames."""
    rng = np.random.default_rng(spec.seed)
    h, w = spec.height, spec.width
    dark = rng.uniform(0, 255, 3)
    light = _contrasting_color(rng, np.broadcast_to(dark, (1, 1, 3)))
    noise = rng.choice([3.0, 6.0])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    orientations = len(STRIPE_CLASSES)
    for _ in range(spec.num_frames):
        shown = spec.label if rng.random() < STRIPE_EVIDENCE else int(rng.integers(orientations))
        angle = shown * math.pi / orientations + rng.uniform(-0.15, 0.15)
        period = rng.uniform(5.0, 9.0) * h / 32  # 5-9 px once the frame is resized to 32 px
        wave = (xx * math.cos(angle) + yy * math.sin(angle)) * (2 * math.pi / period)
        level = 0.5 + 0.5 * np.sin(wave + rng.uniform(0, 2 * math.pi))
        frame = dark + (light - dark) * level[..., None] + rng.normal(0.0, noise, (h, w, 3))
        yield np.clip(frame, 0, 255).astype(np.uint8)


def render(spec: VideoSpec) -> np.ndarray:
    """The frames of one video as uint8 (T, H, W, 3), a pure function of the spec."""
    frames = np.empty((spec.num_frames, spec.height, spec.width, 3), np.uint8)
    for t, frame in enumerate(render_frames(spec)):
        frames[t] = frame
    return frames


def render_frames(spec: VideoSpec) -> Iterator[np.ndarray]:
    """The frames of `render(spec)`, one uint8 (H, W, 3) array at a time, drawn as they go."""
    if spec.benchmark == "stripes":
        return _stripe_frames(spec)
    return _motion_frames(spec)


def _motion_frames(spec: VideoSpec) -> Iterator[np.ndarray]:
    """One main object whose motion is the class, distractors, background and noise."""
    rng = np.random.default_rng(spec.seed)
    h, w = spec.height, spec.width
    background = _background(rng, h, w)
    motion = CLASSES[spec.label].motion
    actor = _main_object(motion, rng, h, _contrasting_color(rng, background))
    phases = _timeline(rng, motion, spec.num_frames)
    distractors = [_distractor(rng, h, background) for _ in range(rng.integers(0, 4))]
    noise = rng.choice([0.0, 3.0, 6.0])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    for t, p in enumerate(phases):
        frame = background.copy()
        for d in distractors:
            _paint(frame, d, t / max(spec.num_frames - 1, 1), xx, yy)
        _paint(frame, actor, float(p), xx, yy)
        if noise:
            frame += rng.normal(0.0, noise, frame.shape)
        yield np.clip(frame, 0, 255).astype(np.uint8)
