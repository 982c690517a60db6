"""The synthetic benchmarks' classes, and the specs that say what to render.

Two benchmarks share the writers (`benchmark=`):

- ``"stripes"``, a temporal-evidence benchmark: every frame is a full-frame sinusoidal grating
  at one of four orientations, with a random period, phase, colour pair and sensor noise. In each
  frame the class's orientation is shown with probability `STRIPE_EVIDENCE`; otherwise one of the
  four orientations is drawn at random (so the class's own shows in 5/8 of the frames). The class
  is the orientation that dominates over time, so no single frame decides it and more input
  frames help. Each frame is a texture that every token sees, so a small ViT needs no spatial
  layout to read it. A single-frame cue must still be built from pixels, non-linearly: the phase
  is random, so a pixel's mean is the same for every class. The demo uses this benchmark.
- ``"motion"`` (the default): each class is a *motion* of one main object — left vs right, up vs
  down, clockwise vs counterclockwise, approaching vs receding, appearing vs disappearing, fast vs
  slow, shaking vs still — so the classes come in pairs whose single frames look alike: every
  class draws the object's position, orientation, scale and opacity from the same ranges that its
  partner's motion sweeps through, and only the order of the frames tells them apart. Nuisances
  keep it from being trivial: 0-3 smaller distractor objects on their own straight paths, solid /
  gradient / textured backgrounds, optional per-frame sensor noise, random colours, shapes, sizes,
  speeds, and an action that starts late or ends early, so more input frames help. Every class is
  a question about where the object is over time; tiny ViTs trained for a few hundred steps do not
  learn that (docs/demo/FINDINGS.md).

A `VideoSpec` holds a video's class, length, frame rate, size and the seed of every other detail;
`render` (in `videopeft.data.synthetic.draw`) turns it into frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from videopeft.errors import ConfigError

__all__ = ["MotionClass", "CLASSES", "STRIPE_CLASSES", "BENCHMARKS", "STRIPE_EVIDENCE",
           "benchmark_classes", "VideoSpec", "sample_specs"]


@dataclass(frozen=True)
class MotionClass:
    """One class: its SSv2-style template, a folder-safe name, and what the renderer draws (a
    motion, or for stripes the orientation's index as a string)."""

    template: str
    name: str
    motion: str


CLASSES: tuple[MotionClass, ...] = (
    MotionClass("Moving [something] from left to right", "move_right", "right"),
    MotionClass("Moving [something] from right to left", "move_left", "left"),
    MotionClass("Moving [something] up", "move_up", "up"),
    MotionClass("Moving [something] down", "move_down", "down"),
    MotionClass("Turning [something] clockwise", "turn_clockwise", "cw"),
    MotionClass("Turning [something] counterclockwise", "turn_counterclockwise", "ccw"),
    MotionClass("Moving [something] closer to the camera", "approach", "grow"),
    MotionClass("Moving [something] away from the camera", "recede", "shrink"),
    MotionClass("Making [something] appear", "appear", "fade_in"),
    MotionClass("Making [something] disappear", "disappear", "fade_out"),
    MotionClass("Moving [something] diagonally, quickly", "diagonal_fast", "fast"),
    MotionClass("Moving [something] diagonally, slowly", "diagonal_slow", "slow"),
    MotionClass("Shaking [something]", "shake", "shake"),
    MotionClass("Holding [something] still", "hold_still", "still"),
)

# The orientation index k is the angle k * 45 degrees of the wave vector. Image y points down, so
# index 1 (wave along x + y) gives stripes that rise to the right.
STRIPE_CLASSES: tuple[MotionClass, ...] = (
    MotionClass("Showing mostly vertical stripes", "stripes_vertical", "0"),
    MotionClass("Showing mostly rising diagonal stripes", "stripes_rising", "1"),
    MotionClass("Showing mostly horizontal stripes", "stripes_horizontal", "2"),
    MotionClass("Showing mostly falling diagonal stripes", "stripes_falling", "3"),
)
BENCHMARKS = {"motion": CLASSES, "stripes": STRIPE_CLASSES}
STRIPE_EVIDENCE = 0.5  # P(a frame shows its class's orientation); otherwise any of the four


def benchmark_classes(benchmark: str) -> tuple[MotionClass, ...]:
    """The classes of a benchmark by name ("motion" or "stripes")."""
    if benchmark not in BENCHMARKS:
        raise ConfigError(f"benchmark must be one of {list(BENCHMARKS)}, got {benchmark!r}")
    return BENCHMARKS[benchmark]


_FPS = (8, 10, 12, 15, 24, 25, 30)
_ASPECTS = (1.0, 4 / 3, 16 / 9)
_DECORD_BAD_WIDTHS = (16, 24, 48, 72)  # decord 0.6 cannot read frames this wide; avoided


@dataclass(frozen=True)
class VideoSpec:
    """What to render: class, length, frame rate, size, and the seed of every other detail."""

    label: int
    num_frames: int
    fps: int
    height: int
    width: int
    seed: int
    benchmark: str = "motion"


def _even(x: float) -> int:
    return max(16, int(round(x / 2)) * 2)


def sample_specs(num_videos: int, num_classes: int = 10, *, seed: int = 0, size: int = 48,
                 frames_range: tuple[int, int] = (8, 40),
                 benchmark: str = "motion") -> list[VideoSpec]:
    """Balanced class labels (video i has class i % num_classes) with random lengths and sizes."""
    classes = benchmark_classes(benchmark)
    if not 2 <= num_classes <= len(classes):
        raise ConfigError(f"num_classes must be in [2, {len(classes)}] for the {benchmark} "
                          f"benchmark, got {num_classes}")
    if num_videos < 1:
        raise ConfigError(f"num_videos must be >= 1, got {num_videos}")
    if not 1 <= frames_range[0] <= frames_range[1]:
        raise ConfigError(f"frames_range must be (min, max) with 1 <= min <= max, "
                          f"got {frames_range}")
    if size < 16:
        raise ConfigError(f"size must be >= 16 px, got {size}")
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(num_videos):
        height = _even(rng.uniform(0.75, 1.0) * size)
        width = _even(height * _ASPECTS[rng.integers(len(_ASPECTS))])
        width += 2 if width in _DECORD_BAD_WIDTHS else 0  # so every backend reads every video
        specs.append(VideoSpec(label=i % num_classes,
                               num_frames=int(rng.integers(frames_range[0], frames_range[1] + 1)),
                               fps=int(_FPS[rng.integers(len(_FPS))]), height=height, width=width,
                               seed=int(rng.integers(2**31)), benchmark=benchmark))
    return specs

