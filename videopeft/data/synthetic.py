"""Procedurally generated video benchmarks, written as real encoded files in a dataset layout.

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

Everything is drawn from numpy Generators seeded from `seed`: the same arguments write the same
frames. Frames are drawn with numpy masks (no OpenCV) and encoded with PyAV:

    layout    videos under root = OUT/videos         annotation files under OUT/annotations
    ssv2      <id>.webm (VP9)                        something-something-v2-{train,validation}.json,
                                                     something-something-v2-labels.json
    hmdb51    <class>/<name>.avi (MPEG-4 Part 2)     <class>_test_split{1,2,3}.txt
    kinetics  <class>/<youtube_id>_<start:06d>_<end:06d>.mp4 (H.264)
                                                     train.csv, validate.csv
    list      <name>.mp4 (H.264)                     train.txt, val.txt ("<path> <label>"),
                                                     classes.txt

`bad_zoo=True` adds, to both splits, files that exercise the failure paths; `bad_zoo.json` lists
each with the run-manifest record expected with backend "auto": `expect` is "fail" (no backend
decodes it: a manifest failure) or "warn" (it decodes, and `probe_warnings` reports a problem
starting with `warning`: a manifest warning); `fails_with` names single backends known to fail a
"warn" file (decord 0.6 cannot read one-frame WebM). Truncating a WebM keeps a decodable prefix
(the Matroska clusters before the cut, fewer frames than its header's duration), whereas MP4
(index at the end) and AVI lose the whole file. The file without read permission is readable
when running as root (chmod does not restrict root): a warning then, a failure otherwise.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

__all__ = ["MotionClass", "CLASSES", "STRIPE_CLASSES", "BENCHMARKS", "STRIPE_EVIDENCE",
           "benchmark_classes", "VideoSpec", "SyntheticVideo", "SyntheticDataset",
           "sample_specs", "render", "write_video", "write_synthetic", "LAYOUT_CONTAINERS"]

_log = logging.getLogger(__name__)


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
        raise ValueError(f"benchmark must be one of {list(BENCHMARKS)}, got {benchmark!r}")
    return BENCHMARKS[benchmark]


# container -> (PyAV format, video codec, codec options, audio codec for the audio-only file)
_CODECS = {
    "webm": ("webm", "libvpx-vp9", {"deadline": "realtime", "cpu-used": "8", "crf": "20",
                                    "b:v": "0"}, "libopus"),
    "mp4": ("mp4", "libx264", {"preset": "ultrafast", "crf": "18"}, "aac"),
    "avi": ("avi", "mpeg4", {"flags": "+qscale", "global_quality": str(2 * 118)}, "mp2"),  # q 2
}
LAYOUT_CONTAINERS = {"ssv2": "webm", "hmdb51": "avi", "kinetics": "mp4", "list": "mp4"}
_THINGS = ("a box", "a ball", "a cup", "a book", "a pen", "a phone", "a bottle", "a spoon",
           "a toy car", "a remote")
_FPS = (8, 10, 12, 15, 24, 25, 30)
_ASPECTS = (1.0, 4 / 3, 16 / 9)
_SHAPES = ("rect", "ellipse", "triangle", "ell")
_DECORD_BAD_WIDTHS = (16, 24, 48, 72)  # decord 0.6 cannot read frames this wide; avoided
_SCALE = (0.45, 1.6)  # object scale range, shared by every class (grow/shrink sweep through it)
_SPLIT_PATTERN = "tvttvttvtt"  # rank within a class -> train/val: 30 % val, the 2nd video val
_ZOO_KINDS = ("zero_byte", "truncated", "garbage", "missing", "one_frame", "audio_only",
              "wrong_extension", "no_permission")


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
        raise ValueError(f"num_classes must be in [2, {len(classes)}] for the {benchmark} "
                         f"benchmark, got {num_classes}")
    if num_videos < 1:
        raise ValueError(f"num_videos must be >= 1, got {num_videos}")
    if not 1 <= frames_range[0] <= frames_range[1]:
        raise ValueError(f"frames_range must be (min, max) with 1 <= min <= max, "
                         f"got {frames_range}")
    if size < 16:
        raise ValueError(f"size must be >= 16 px, got {size}")
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


# ----------------------------------------------------------------------------- rendering


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
    """Alpha-blend the object at phase p into a float frame, in place."""
    cx, cy, angle, scale, alpha = obj.pose(p)
    h, w = frame.shape[:2]
    dx, dy = xx - cx * w, yy - cy * h
    radius = obj.size * scale
    cos, sin = math.cos(angle), math.sin(angle)
    mask = _shape_mask(obj.shape, (dx * cos + dy * sin) / radius, (-dx * sin + dy * cos) / radius)
    if alpha > 0 and mask.any():
        frame[mask] = frame[mask] * (1 - alpha) + obj.color * alpha


def _render_stripes(spec: VideoSpec) -> np.ndarray:
    """Gratings whose orientation is the class's in a `STRIPE_EVIDENCE` share of frames."""
    rng = np.random.default_rng(spec.seed)
    h, w = spec.height, spec.width
    dark = rng.uniform(0, 255, 3)
    light = _contrasting_color(rng, np.broadcast_to(dark, (1, 1, 3)))
    noise = rng.choice([3.0, 6.0])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    orientations = len(STRIPE_CLASSES)
    frames = np.empty((spec.num_frames, h, w, 3), np.uint8)
    for t in range(spec.num_frames):
        shown = spec.label if rng.random() < STRIPE_EVIDENCE else int(rng.integers(orientations))
        angle = shown * math.pi / orientations + rng.uniform(-0.15, 0.15)
        period = rng.uniform(5.0, 9.0) * h / 32  # 5-9 px once the frame is resized to 32 px
        wave = (xx * math.cos(angle) + yy * math.sin(angle)) * (2 * math.pi / period)
        level = 0.5 + 0.5 * np.sin(wave + rng.uniform(0, 2 * math.pi))
        frame = dark + (light - dark) * level[..., None] + rng.normal(0.0, noise, (h, w, 3))
        frames[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return frames


def render(spec: VideoSpec) -> np.ndarray:
    """The frames of one video as uint8 (T, H, W, 3), a pure function of the spec."""
    if spec.benchmark == "stripes":
        return _render_stripes(spec)
    rng = np.random.default_rng(spec.seed)
    h, w = spec.height, spec.width
    background = _background(rng, h, w)
    motion = CLASSES[spec.label].motion
    actor = _main_object(motion, rng, h, _contrasting_color(rng, background))
    phases = _timeline(rng, motion, spec.num_frames)
    distractors = [_distractor(rng, h, background) for _ in range(rng.integers(0, 4))]
    noise = rng.choice([0.0, 3.0, 6.0])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    frames = np.empty((spec.num_frames, h, w, 3), np.uint8)
    for t, p in enumerate(phases):
        frame = background.copy()
        for d in distractors:
            _paint(frame, d, t / max(spec.num_frames - 1, 1), xx, yy)
        _paint(frame, actor, float(p), xx, yy)
        if noise:
            frame += rng.normal(0.0, noise, frame.shape)
        frames[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return frames


# ----------------------------------------------------------------------------- encoding


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int,
                container: str = "mp4") -> None:
    """Encode uint8 (T, H, W, 3) frames with PyAV: webm = VP9, mp4 = H.264, avi = MPEG-4."""
    import av

    fmt, codec, options, _ = _CODECS[container]
    with av.open(os.fspath(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = dict(options)
        try:
            for frame in frames:
                out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            out.mux(stream.encode())
        except av.error.ArgumentError as err:
            hint = (" (decord was imported before PyAV and its bundled libvpx shadows PyAV's: "
                    "import av or videopeft.data first)" if "decord" in sys.modules else "")
            raise RuntimeError(f"{path}: cannot encode {codec}{hint}: {err}") from None


def _write_audio_only(path: Path, container: str) -> None:
    """A file of the container's type with one silent audio stream and no video."""
    import av

    fmt, _, _, codec = _CODECS[container]
    with av.open(os.fspath(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=48000)
        sample_fmt = stream.codec_context.codec.audio_formats[0].name
        samples = stream.codec_context.frame_size or 1024
        for _ in range(10):
            frame = av.AudioFrame(format=sample_fmt, layout="mono", samples=samples)
            frame.sample_rate = 48000
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


# ----------------------------------------------------------------------------- layouts


@dataclass
class SyntheticVideo:
    """One written video: where, which class, which split."""

    path: str
    label: int
    split: str  # train | val


@dataclass
class SyntheticDataset:
    """What `write_synthetic` wrote; `root`/`annotation` go straight into DataConfig."""

    layout: str
    root: str
    annotation: str
    class_names: list[str]
    videos: list[SyntheticVideo]
    zoo: list[dict] = field(default_factory=list)  # see _write_zoo; expect: "fail" | "warn"


@dataclass
class _Item:
    """One annotation line to write: path relative to root, class, split, layout-specific fields."""

    rel: str
    label: int
    split: str
    fields: dict = field(default_factory=dict)


def _class_names(layout: str, classes: list[MotionClass]) -> list[str]:
    """Class names in class-index order, as each layout's reader will report them."""
    if layout == "ssv2":
        return [c.template.replace("[", "").replace("]", "") for c in classes]
    return [c.name for c in classes]


def _ordered_classes(layout: str, num_classes: int,
                     benchmark: str = "motion") -> list[MotionClass]:
    """The benchmark's first num_classes classes; for hmdb51/kinetics, whose readers index classes
    by sorted name, the names get a c00_ prefix so sorted order is class order."""
    chosen = list(benchmark_classes(benchmark)[:num_classes])
    if layout in ("hmdb51", "kinetics"):
        chosen = [MotionClass(c.template, f"c{i:02d}_{c.name}", c.motion)
                  for i, c in enumerate(chosen)]
    return chosen


_YOUTUBE_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                  "0123456789-_"))


def _new_item(layout: str, classes: list[MotionClass], label: int, split: str, stem: str,
              rng: np.random.Generator) -> _Item:
    """Where a video goes in the layout, and the annotation fields that name it."""
    if layout == "ssv2":
        return _Item(f"{stem}.webm", label, split, {"id": stem})
    if layout == "kinetics":
        start = int(rng.integers(0, 300))
        name = f"{stem}_{start:06d}_{start + 10:06d}.mp4"
        return _Item(f"{classes[label].name}/{name}", label, split,
                     {"youtube_id": stem, "time_start": start, "time_end": start + 10})
    ext = LAYOUT_CONTAINERS[layout]
    folder = f"{classes[label].name}/" if layout == "hmdb51" else ""
    return _Item(f"{folder}{stem}.{ext}", label, split)


def _video_stem(layout: str, index: int, rng: np.random.Generator) -> str:
    if layout == "ssv2":
        return str(100000 + index)
    if layout == "kinetics":
        return "".join(rng.choice(_YOUTUBE_ALPHABET, 11))
    return f"v{index:05d}"


def _write_ssv2(ann: Path, classes: list[MotionClass], items: list[_Item],
                rng: np.random.Generator) -> None:
    labels = {name: str(i) for i, name in enumerate(_class_names("ssv2", classes))}
    (ann / "something-something-v2-labels.json").write_text(json.dumps(labels, indent=1))
    for split, name in (("train", "train"), ("val", "validation")):
        entries = []
        for item in (i for i in items if i.split == split):
            thing = _THINGS[rng.integers(len(_THINGS))]
            template = classes[item.label].template
            entries.append({"id": item.fields["id"],
                            "label": template.replace("[something]", thing),
                            "template": template,
                            "placeholders": [thing] if "[something]" in template else []})
        (ann / f"something-something-v2-{name}.json").write_text(json.dumps(entries, indent=1))


def _write_hmdb51(ann: Path, classes: list[MotionClass], items: list[_Item],
                  rng: np.random.Generator) -> None:
    """Split 1 follows the items' splits; splits 2 and 3 reshuffle the good videos (some unused)."""
    for k in (1, 2, 3):
        for label, cls in enumerate(classes):
            lines = []
            for item in (i for i in items if i.label == label):
                clip = item.rel.rsplit("/", 1)[-1]
                code = 1 if item.split == "train" else 2
                if k > 1 and not clip.startswith("zoo_"):
                    code = int(rng.choice([0, 1, 1, 2]))
                lines.append(f"{clip} {code} ")  # the official files end lines with a space
            (ann / f"{cls.name}_test_split{k}.txt").write_text("\n".join(lines) + "\n")


def _write_kinetics(ann: Path, classes: list[MotionClass], items: list[_Item],
                    rng: np.random.Generator) -> None:
    for split, fname in (("train", "train.csv"), ("val", "validate.csv")):
        with (ann / fname).open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["label", "youtube_id", "time_start", "time_end", "split", "is_cc"])
            for item in (i for i in items if i.split == split):
                f = item.fields  # labels are written with spaces, as in the official CSVs
                writer.writerow([classes[item.label].name.replace("_", " "), f["youtube_id"],
                                 f["time_start"], f["time_end"], fname[:-4], 0])


def _write_list(ann: Path, classes: list[MotionClass], items: list[_Item],
                rng: np.random.Generator) -> None:
    (ann / "classes.txt").write_text("".join(c.name + "\n" for c in classes))
    for split in ("train", "val"):
        lines = [f"{i.rel} {i.label}\n" for i in items if i.split == split]
        (ann / f"{split}.txt").write_text("".join(lines))


_ANNOTATION_WRITERS = {"ssv2": _write_ssv2, "hmdb51": _write_hmdb51, "kinetics": _write_kinetics,
                       "list": _write_list}


def _write_zoo(layout: str, root: Path, classes: list[MotionClass],
               seed: int) -> tuple[list[_Item], list[dict]]:
    """Write the bad-video files (class 0) for both splits; returns their items and the zoo list
    of {kind, split, path, expect, why, warning, fails_with}."""
    rng = np.random.default_rng(seed + 7919)
    container = LAYOUT_CONTAINERS[layout]
    other = "mp4" if container != "mp4" else "webm"
    good = render(VideoSpec(0, 12, 12, 32, 56, seed))
    items, zoo = [], []
    for split in ("train", "val"):
        for n, kind in enumerate(_ZOO_KINDS):
            stem = f"zoo_{kind}_{split}"
            if layout == "ssv2":  # SSv2 ids are numbers
                stem = str(900000 + 100 * (split == "val") + n)
            item = _new_item(layout, classes, 0, split, stem, rng)
            path = root / item.rel
            path.parent.mkdir(parents=True, exist_ok=True)
            expect, why, warning = _make_zoo_file(kind, path, good, container, other, rng)
            fails_with = ["decord"] if kind == "one_frame" and container == "webm" else []
            items.append(item)
            zoo.append({"kind": kind, "split": split, "path": str(path), "expect": expect,
                        "why": why, "warning": warning, "fails_with": fails_with})
    return items, zoo


def _make_zoo_file(kind: str, path: Path, good: np.ndarray, container: str, other: str,
                   rng: np.random.Generator) -> tuple[str, str, str]:
    """Write one bad-zoo file; returns (expected outcome, reason, start of the expected warning)."""
    if kind == "zero_byte":
        path.write_bytes(b"")
        return "fail", "empty file", ""
    if kind == "truncated":
        write_video(path, good, 12, container)
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2])
        if container == "webm":
            return ("warn", "WebM cut in half: the clusters before the cut still decode",
                    f"truncated: header says {len(good)} frames")
        return "fail", f"{container} cut in half: its index is lost", ""
    if kind == "garbage":
        path.write_bytes(rng.bytes(4096))
        return "fail", "random bytes", ""
    if kind == "missing":
        return "fail", "listed in the annotation, absent on disk", ""
    if kind == "one_frame":
        write_video(path, good[:1], 12, container)
        return "warn", "a valid one-frame video (samplers repeat it)", "only 1 frame"
    if kind == "audio_only":
        _write_audio_only(path, container)
        return "fail", "audio stream only, no video stream", ""
    if kind == "wrong_extension":
        write_video(path, good, 12, other)
        inside = "matroska" if other == "webm" else other
        return ("warn", f"{other} content under a .{container} name (decoders probe content)",
                f"extension .{container} but container is {inside}")
    write_video(path, good, 12, container)  # no_permission
    os.chmod(path, 0)
    if os.geteuid() == 0:
        return ("warn", "chmod 000, but root ignores file permissions",
                "no read permission for its owner")
    return "fail", "chmod 000: not readable", ""


def write_synthetic(out: str | os.PathLike, layout: str, *, videos: int = 200, seed: int = 0,
                    num_classes: int = 10, size: int = 48, frames_range: tuple[int, int] = (8, 40),
                    bad_zoo: bool = False, progress: bool = True,
                    benchmark: str = "motion") -> SyntheticDataset:
    """Render and encode a benchmark ("motion" or "stripes") in `layout` under `out`; returns what
    was written.

    Video i has class i % num_classes; within a class every 3rd of 10 videos (the 2nd first) goes
    to val, the rest to train, so both splits hold every class once videos >= 2 * num_classes.
    """
    if layout not in LAYOUT_CONTAINERS:
        raise ValueError(f"layout must be one of {list(LAYOUT_CONTAINERS)}, got {layout!r}")
    out = Path(out)
    root, ann = out / "videos", out / "annotations"
    root.mkdir(parents=True, exist_ok=True)
    ann.mkdir(parents=True, exist_ok=True)
    classes = _ordered_classes(layout, num_classes, benchmark)
    specs = sample_specs(videos, num_classes, seed=seed, size=size, frames_range=frames_range,
                         benchmark=benchmark)
    rng = np.random.default_rng(seed + 1)
    items, written = [], []
    for i, spec in enumerate(tqdm(specs, desc=f"writing {layout}", unit="video",
                                  disable=not progress)):
        rank = (i // num_classes) % len(_SPLIT_PATTERN)
        split = "val" if _SPLIT_PATTERN[rank] == "v" else "train"
        item = _new_item(layout, classes, spec.label, split, _video_stem(layout, i, rng), rng)
        (root / item.rel).parent.mkdir(parents=True, exist_ok=True)
        write_video(root / item.rel, render(spec), spec.fps, LAYOUT_CONTAINERS[layout])
        items.append(item)
        written.append(SyntheticVideo(str(root / item.rel), spec.label, split))
    zoo: list[dict] = []
    if bad_zoo:
        zoo_items, zoo = _write_zoo(layout, root, classes, seed)
        items += zoo_items
        (out / "bad_zoo.json").write_text(json.dumps(zoo, indent=1))
    _ANNOTATION_WRITERS[layout](ann, classes, items, rng)
    info = SyntheticDataset(layout, str(root), str(ann), _class_names(layout, classes), written,
                            zoo)
    (out / "synthetic.json").write_text(json.dumps(asdict(info), indent=1))
    _log.info("wrote %d %s videos to %s", len(written), layout, root)
    return info
