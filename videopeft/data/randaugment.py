"""timm's RandAugment as VideoMAE sets it up, for both augmentation modes: `ClipRandAugment`
runs timm's PIL ops in the loader worker (the same ops on every frame of a clip); for device
augmentation it is drawn as *plans* in the worker and applied batched on any device.

    planner = RandAugmentPlanner("rand-m7-n4-mstd0.5-inc1", img_size=224)
    plan = planner.draw()                       # in the worker: float64 (num_layers, 3), per clip
    plans = torch.stack([plan, ...])            # what the default collate makes: (B, num_layers, 3)
    clips = apply_rand_augment(clips, plans)    # on the device: (B, T, C, H, W), 0..255 in and out

Drawing. `RandAugmentPlanner` builds timm's RandAugment exactly as the worker mode does
(`ClipRandAugment`: VideoMAE's hparams, bicubic, grey fill) and runs the real object on a 1x1
image with every op's `aug_fn` swapped for a recorder. timm's own code therefore draws the layer ops
(numpy's global generator), the per-op probability and the gaussian magnitude with its clipping and
random sign (python's `random`), and the global generators end where one real call would leave them:
a worker-mode and a device-mode run with the same seeds draw the same augmentations.

Plan encoding. Row l of a plan is (op id, arg0, arg1) for layer l: the op id indexes `OPS` (-1 when
the layer's probability check skipped it), arg0 is the argument timm passed to the op's function
(degrees, bits, threshold, addend, enhance factor, shear factor or translate fraction) and arg1 is
SolarizeAdd's threshold (timm's default, 128). float64 holds every recorded value exactly, so a plan
replayed through timm's PIL functions (`RandAugmentPlanner.apply_pil`) is bit-identical to the real
call. timm ops that share a PIL function share a device op (Posterize / PosterizeIncreasing /
PosterizeOriginal, Solarize / SolarizeIncreasing, Color / ColorIncreasing...), so the non-`inc`
sets plan too; ops with no device version (TranslateX in pixels, blur, desaturate) are refused.

Device ops, each the PIL 13 function timm calls (sources: huggingface/pytorch-image-models
timm/data/auto_augment.py; python-pillow/Pillow src/PIL/ImageOps.py, ImageEnhance.py, Image.py,
src/_imaging.c, src/libImaging/Geometry.c, Blend.c, Filter.c, Convert.c). Every frame of a clip
gets its clip's ops and arguments; image statistics are per frame and channel, as PIL computes them:
- AutoContrast: per channel lo = min, hi = max; if hi > lo, lut[i] = int(i*s - lo*s) clipped to
  0..255 with s = 255/(hi-lo) in float64 (ImageOps.autocontrast, cutoff 0).
- Equalize: per channel histogram h; step = (pixels - h[last used value]) // 255; identity if fewer
  than two values are used or step is 0, else lut[i] = (step//2 + sum(h[:i])) // step, clipped to
  255 as Image.point clips a lut (ImageOps.equalize; _imaging.c getlist).
- Invert 255-x; PosterizeIncreasing keeps the top `bits` bits. 0 bits (magnitude 10) gives
  black, the bit mask's arithmetic and what Pillow 12 returned; Pillow 13's ImageOps.posterize
  raises for bits < 1, so the worker mode posterizes through `transforms.posterize_to_black`.
  SolarizeIncreasing x < t ? x : 255-x; SolarizeAdd x < t ? min(255, x+add) : x.
- Color / Contrast / Brightness / Sharpness: Image.blend(degenerate, frame, factor) as Blend.c
  computes it: float32 `d + factor*(x - d)` (factor cast to float32), clipped, truncated.
  Degenerates: L = (19595 R + 38470 G + 7471 B + 32768) >> 16 (Convert.c rgb2l) back to RGB; a
  constant int(mean(L) + 0.5); black; the SMOOTH 3x3 filter (1 1 1 / 1 5 1 / 1 1 1, /13) in
  Filter.c's float32 order with +0.5 and truncation, the outer rows and columns kept.
- Rotate / ShearX / ShearY / TranslateXRel / TranslateYRel: Image.transform AFFINE with BICUBIC and
  the fill colour (Image.rotate's matrix about (w/2, h/2), cos/sin rounded to 15 decimals, angle
  taken mod 360). Output pixel (x, y) samples the source at A(x+0.5, y+0.5) (float64); a point
  outside [0, W) x [0, H) gives the fill; inside, Geometry.c's bicubic: the cubic convolution with
  a = -1 on the 4x4 neighbours of (sx-0.5, sy-0.5), clamped to the edge, result clipped and
  truncated to an integer. Coordinates and weights are float64, the weighted sum float32 (PIL's
  is float64), so a value within ~1e-4 of an integer may truncate one grey level differently
  (rare). Shears and translations interpolate along their own axis only: the other axis's
  weights are exactly 0, so the result is the same.

Speed: the ops are whole-batch tensor passes, made for an accelerator. On a CPU, PIL working frame
by frame in cache (the worker mode) is faster; `apply_rand_augment` still runs there (tests, CPU
training in device mode).
"""
from __future__ import annotations

import math
import random
from typing import Any, Callable, Sequence

import numpy as np
import torch

from videopeft.constants import RAND_AUGMENT_FILL
from videopeft.data.transfer import to_device

__all__ = ["OPS", "ClipRandAugment", "posterize_to_black", "RandAugmentPlanner",
           "apply_rand_augment", "encode_plan", "decode_plan"]

# the device ops, in timm's `inc1` order (auto_augment.py _RAND_INCREASING_TRANSFORMS); a plan's op
# id is an index into this tuple
OPS: tuple[str, ...] = (
    "AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing",
    "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing",
    "SharpnessIncreasing", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel",
)
SKIPPED = -1
_SOLARIZE_ADD_THRESHOLD = 128  # timm's solarize_add default, which its AugmentOp never overrides
_INTEGER_ARGS = frozenset({"PosterizeIncreasing", "SolarizeIncreasing", "SolarizeAdd"})
_FLOAT = torch.float32

Step = tuple[str, tuple[float, ...]] | None  # (op name, the PIL function's args) or a skipped layer


def encode_plan(steps: Sequence[Step]) -> torch.Tensor:
    """Steps (one per layer: `(name, args)` with a name from `OPS`, or None) -> float64 (L, 3)."""
    plan = torch.zeros(len(steps), 3, dtype=torch.float64)
    plan[:, 0] = SKIPPED
    for layer, step in enumerate(steps):
        if step is None:
            continue
        name, args = step
        if name == "SolarizeAdd" and len(args) == 1:
            args = (*args, _SOLARIZE_ADD_THRESHOLD)
        if len(args) > 2:
            raise ValueError(f"{name}: at most 2 arguments fit a plan row, got {args}")
        plan[layer, 0] = OPS.index(name)
        plan[layer, 1:1 + len(args)] = torch.tensor(args, dtype=torch.float64)
    return plan


def decode_plan(plan: torch.Tensor) -> list[Step]:
    """One plan (L, 3) -> its steps, with the argument types timm passes (ints for bit counts and
    thresholds)."""
    steps: list[Step] = []
    for op, arg0, arg1 in plan.detach().cpu().double().tolist():
        if op == SKIPPED:
            steps.append(None)
            continue
        name = OPS[int(op)]
        args = {"AutoContrast": (), "Equalize": (), "Invert": (),
                "SolarizeAdd": (arg0, arg1)}.get(name, (arg0,))
        steps.append((name, tuple(int(a) for a in args) if name in _INTEGER_ARGS else args))
    return steps


class ClipRandAugment:
    """timm RandAugment with the same ops and magnitudes on every frame of a clip, set up as
    VideoMAE's (MCG-NJU/VideoMAE:video_transforms.py `create_random_augment`): translations up to
    0.45 x img_size, bicubic resampling (run_class_finetuning.py --train_interpolation) and the
    grey (128, 128, 128) fill of its rand_augment.py; posterize to 0 bits gives black
    (`posterize_to_black`).

    timm draws its ops from numpy's global generator and magnitudes from python's `random`; both
    states are saved before the first frame and restored before each later one, so each frame
    replays the same draw, and afterwards the generators stand where one call would leave them.
    """

    def __init__(self, config_str: str, img_size: int) -> None:
        from PIL import Image
        from timm.data.auto_augment import posterize, rand_augment_transform

        hparams = {"translate_const": int(img_size * 0.45), "interpolation": Image.BICUBIC,
                   "img_mean": RAND_AUGMENT_FILL}
        self.ops = rand_augment_transform(config_str, hparams)
        for op in self.ops.ops:
            if op.aug_fn is posterize:
                op.aug_fn = posterize_to_black

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        from PIL import Image

        py_state, np_state = random.getstate(), np.random.get_state()
        out = []
        for frame in frames.numpy():
            random.setstate(py_state)
            np.random.set_state(np_state)
            out.append(np.asarray(self.ops(Image.fromarray(frame))))
        return torch.from_numpy(np.stack(out))


def posterize_to_black(image: Any, bits: int, **kwargs: Any) -> Any:
    """timm's posterize, except that 0 bits (its magnitude 10) gives black: the bit mask's
    arithmetic, as Pillow < 13 computed it; Pillow 13's ImageOps.posterize refuses bits < 1."""
    from PIL import Image
    from timm.data.auto_augment import posterize

    if bits < 1:
        return Image.new(image.mode, image.size)
    return posterize(image, bits, **kwargs)


class RandAugmentPlanner:
    """Draws per-clip RandAugment plans with timm's own code (see the module docstring).

    `draw()` consumes python's `random` and numpy's global generator exactly as the worker mode's
    `ClipRandAugment` does for one clip; it runs in microseconds and touches no pixels.
    """

    def __init__(self, config_str: str, img_size: int) -> None:
        from PIL import Image

        self.rand_augment = ClipRandAugment(config_str, img_size).ops  # timm's RandAugment
        self.num_layers: int = self.rand_augment.num_layers
        self._steps: list[Step] = []  # the draw in progress, filled by the marks and recorders
        self._pil: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {}
        fills = set()
        for op in self.rand_augment.ops:
            name = _device_op_name(op.aug_fn)
            if name is None:
                raise ValueError(f"RandAugment op {op.name} has no device version; the device "
                                 f"ops are {', '.join(OPS)} and their non-increasing forms")
            if isinstance(op.kwargs["resample"], (list, tuple)):
                raise ValueError("a random interpolation choice cannot be planned")
            self._pil[name] = (op.aug_fn, dict(op.kwargs))
            fills.add(tuple(op.kwargs["fillcolor"]))
            op.aug_fn = _Recorder(name, self._steps)
        # same list length (and weights) for numpy's choice, so the same draws
        self.rand_augment.ops = [_LayerMark(op, self._steps) for op in self.rand_augment.ops]
        self.fill: tuple[int, ...] = fills.pop()  # every op gets the same hparams, so one fill
        self._blank = Image.new("RGB", (1, 1))

    def draw(self) -> torch.Tensor:
        """One clip's plan: float64 (num_layers, 3) rows (op id or -1, arg0, arg1)."""
        self._steps.clear()
        self.rand_augment(self._blank)
        return encode_plan(self._steps)

    def apply_pil(self, plan: torch.Tensor, image: Any) -> Any:
        """Replay a plan on one PIL image through timm's own op functions and kwargs (worker-mode
        reference; the device version is `apply_rand_augment`)."""
        for step in decode_plan(plan):
            if step is not None:
                fn, kwargs = self._pil[step[0]]
                image = fn(image, *step[1], **kwargs)
        return image


class _LayerMark:
    """Stands in for one timm AugmentOp in the planner: opens the layer's record as skipped, then
    runs the op (whose recorder fills the record in if the op's probability check passes)."""

    def __init__(self, op: Any, steps: list[Step]) -> None:
        self.op, self.steps = op, steps

    def __call__(self, img: Any) -> Any:
        self.steps.append(None)
        return self.op(img)


class _Recorder:
    """Stands in for an AugmentOp's PIL function: records (name, level args), returns the image."""

    def __init__(self, name: str, steps: list[Step]) -> None:
        self.name, self.steps = name, steps

    def __call__(self, img: Any, *args: Any, **_: Any) -> Any:
        self.steps[-1] = (self.name, args)
        return img


def _device_op_name(aug_fn: Callable[..., Any]) -> str | None:
    """The OPS name whose PIL function is `aug_fn` (timm's NAME_TO_OP), or None."""
    from timm.data.auto_augment import NAME_TO_OP, posterize

    if aug_fn is posterize_to_black:  # the worker mode's posterize that survives 0 bits
        aug_fn = posterize

    return next((name for name in OPS if NAME_TO_OP[name] is aug_fn), None)


# ---------------------------------------------------------------------------------------------
# device ops: x is float (n, T, C, H, W) with integer values 0..255, args float64 (n, 2); an op
# may overwrite x (apply_rand_augment hands each op a tensor of its own), which spares the CPU
# fresh allocations


def _per_clip(values: torch.Tensor, dtype: torch.dtype = _FLOAT) -> torch.Tensor:
    """(n,) -> (n, 1, 1, 1, 1), to broadcast a per-clip value over frames, channels, pixels."""
    return values.to(dtype).view(-1, 1, 1, 1, 1)


def _apply_lut(x: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """Map every (frame, channel) of x (n, T, C, H, W) through its own row of lut (n*T*C, 256)."""
    planes = x.reshape(-1, x.shape[-2] * x.shape[-1]).long()
    return torch.gather(lut.to(x.dtype), 1, planes).view_as(x)


def _auto_contrast(x: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
    planes = x.reshape(-1, x.shape[-2] * x.shape[-1])
    lo, hi = planes.amin(1).double(), planes.amax(1).double()
    spread = (hi - lo).clamp_min(1)
    scale = torch.full_like(spread, 255.0) / spread  # `255.0 / t` would multiply by 1/t
    offset = -lo * scale
    levels = torch.arange(256, dtype=torch.float64, device=x.device)
    lut = (levels * scale[:, None] + offset[:, None]).trunc().clamp(0, 255)
    lut = torch.where((hi > lo)[:, None], lut, levels)
    return _apply_lut(x, lut)


def _equalize(x: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
    planes = x.reshape(-1, x.shape[-2] * x.shape[-1]).long()
    rows = planes.shape[0]
    offsets = torch.arange(rows, device=x.device)[:, None] * 256
    hist = torch.bincount((planes + offsets).flatten(), minlength=rows * 256).view(rows, 256)
    used = hist > 0
    levels = torch.arange(256, device=x.device)
    last = torch.where(used, levels, -1).amax(1)
    step = (planes.shape[1] - hist.gather(1, last[:, None]).squeeze(1)) // 255
    before = hist.cumsum(1) - hist  # pixels below each value
    lut = ((step // 2)[:, None] + before).div(step.clamp_min(1)[:, None], rounding_mode="floor")
    keep = (used.sum(1) <= 1) | (step == 0)
    lut = torch.where(keep[:, None], levels, lut.clamp_max(255))
    return _apply_lut(x, lut)


def _invert(x: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
    return x.mul_(-1).add_(255)


def _posterize(x: torch.Tensor, args: torch.Tensor) -> torch.Tensor:
    bucket = _per_clip(torch.exp2(8 - args[:, 0].clamp(0, 8)))  # 2**(8-bits): 256 for 0 bits
    return x.div_(bucket).floor_().mul_(bucket)


def _solarize(x: torch.Tensor, args: torch.Tensor) -> torch.Tensor:
    return torch.where(x < _per_clip(args[:, 0]), x, 255 - x)


def _solarize_add(x: torch.Tensor, args: torch.Tensor) -> torch.Tensor:
    added = (x + _per_clip(args[:, 0])).clamp_max(255)
    return torch.where(x < _per_clip(args[:, 1]), added, x)


def _blend(degenerate: torch.Tensor, x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Image.blend(degenerate, x, factor) as Blend.c: float32 d + f*(x - d), clipped, truncated
    (mul and add kept separate so no device fuses them into an fma that PIL does not do)."""
    return x.sub_(degenerate).mul_(_per_clip(factor)).add_(degenerate).clamp_(0, 255).floor_()


def _luma(x: torch.Tensor) -> torch.Tensor:
    """PIL's RGB -> L (Convert.c rgb2l), exact in float32: (n, T, 1, H, W)."""
    r, g, b = x[:, :, 0:1], x[:, :, 1:2], x[:, :, 2:3]
    return torch.floor((r * 19595 + g * 38470 + b * 7471 + 32768) / 65536)


def _color(x: torch.Tensor, args: torch.Tensor) -> torch.Tensor:
    return _blend(_luma(x), x, args[:, 0])


def _contrast(x: torch.Tensor, args: torch.Tensor) -> torch.Tensor:
    luma = _luma(x)
    total = luma.sum((-2, -1), keepdim=True, dtype=torch.float64)  # exact: integers < 2**53
    pixels = torch.full_like(total, x.shape[-2] * x.shape[-1])  # a tensor: CUDA would multiply
    mean = torch.floor(total / pixels + 0.5).to(x.dtype)  # by the reciprocal of a scalar
    return _blend(mean, x, args[:, 0])


def _brightness(x: torch.Tensor, args: torch.Tensor) -> torch.Tensor:
    return _blend(torch.zeros((), dtype=x.dtype, device=x.device), x, args[:, 0])


def _smooth(x: torch.Tensor) -> torch.Tensor:
    """ImageFilter.SMOOTH as Filter.c's ImagingFilter3x3 computes it: float32 kernel values
    k/13, rows summed below-centre-above onto 0.5, truncated; the outer ring copied."""
    if x.shape[-2] < 3 or x.shape[-1] < 3:
        return x.clone()

    def weight(k: float) -> torch.Tensor:  # k/13 in float32, made on the device (no host copy)
        def full(v: float) -> torch.Tensor:
            return torch.full((), v, dtype=torch.float32, device=x.device)
        return (full(k) / full(13.0)).to(x.dtype)

    one, five = weight(1.0), weight(5.0)

    def row(r: torch.Tensor, middle: torch.Tensor) -> torch.Tensor:
        return (r[..., :-2] * one).add_(r[..., 1:-1] * middle).add_(r[..., 2:] * one)

    total = row(x[..., 2:, :], one).add_(0.5)  # 0.5 + below: the same value as Filter.c's order
    total.add_(row(x[..., 1:-1, :], five)).add_(row(x[..., :-2, :], one))
    out = x.clone()
    out[..., 1:-1, 1:-1] = total.clamp_(0, 255).floor_()
    return out


def _sharpness(x: torch.Tensor, args: torch.Tensor) -> torch.Tensor:
    return _blend(_smooth(x), x, args[:, 0])


def _rotation_matrices(degrees: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Image.rotate's affine matrices (n, 6), float64, about the centre (w/2, h/2)."""
    angle = -(torch.remainder(degrees, 360.0) * (math.pi / 180.0))
    a, b = torch.round(torch.cos(angle), decimals=15), torch.round(torch.sin(angle), decimals=15)
    d, e = torch.round(-torch.sin(angle), decimals=15), a
    cx, cy = width / 2, height / 2
    c = a * -cx + b * -cy + 0.0 + cx
    f = d * -cx + e * -cy + 0.0 + cy
    return torch.stack([a, b, c, d, e, f], 1)


def _cubic_weights(frac: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Geometry.c's cubic (a = -1) as weights on the differences to the second neighbour:
    v = v1 + w0 (v0 - v1) + w2 (v2 - v1) + w3 (v3 - v1), exact for flat neighbourhoods."""
    d2 = frac * frac
    d3 = d2 * frac
    weights = (-frac + 2 * d2 - d3, frac + d2 - d3, d3 - d2)
    return tuple(w.to(_FLOAT).reshape(-1, 1) for w in weights)


def _cubic(values: list[torch.Tensor], weights: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """One cubic over 4 neighbours (uint8 or float rows) in the difference form: float32."""
    v0, v1, v2, v3 = values
    centre = v1.to(_FLOAT)
    out = torch.addcmul(centre, torch.sub(v0, centre), weights[0])
    out.addcmul_(torch.sub(v2, centre), weights[1])
    return out.addcmul_(torch.sub(v3, centre), weights[2])


def _affine(x: torch.Tensor, matrices: torch.Tensor, fill: torch.Tensor,
            axes: str = "xy") -> torch.Tensor:
    """Image.transform(size, AFFINE, matrix, BICUBIC, fillcolor) on every frame of each clip, with
    that clip's matrix (n, 6) float64: the 4x4 neighbourhood gathered as rows of the clip's
    channels-last (T*C) uint8 values (exact, and a quarter of float32's memory traffic).

    `axes` = the directions that interpolate: "x" when every source point lies on a pixel row
    (ShearX, TranslateXRel: the vertical weights are 0, so one row of taps gives PIL's value
    exactly), "y" when it lies on a pixel column, "xy" otherwise."""
    n, t, c, h, w = x.shape
    dev = x.device
    a = matrices.to(dev, torch.float64).view(n, 6, 1, 1).unbind(1)
    ys = torch.arange(h, dtype=torch.float64, device=dev).add_(0.5).view(1, h, 1)
    xs = torch.arange(w, dtype=torch.float64, device=dev).add_(0.5).view(1, 1, w)
    src_x = a[0] * xs + a[1] * ys + a[2]  # (n, h, w)
    src_y = a[3] * xs + a[4] * ys + a[5]
    inside = ((src_x >= 0) & (src_x < w) & (src_y >= 0) & (src_y < h)).view(-1, 1)
    src_x, src_y = src_x - 0.5, src_y - 0.5
    left, top = src_x.floor(), src_y.floor()
    wx, wy = _cubic_weights((src_x - left).flatten()), _cubic_weights((src_y - top).flatten())
    left, top = left.long().flatten() - 1, top.long().flatten() - 1
    cols = [(left + j).clamp_(0, w - 1) for j in (range(4) if "x" in axes else [1])]
    base = torch.arange(n, device=dev).repeat_interleave(h * w) * (h * w)
    pixels = x.to(torch.uint8).permute(0, 3, 4, 1, 2).reshape(n * h * w, t * c)
    rows = []
    for i in range(4) if "y" in axes else [1]:
        start = base + (top + i).clamp_(0, h - 1) * w
        taps = [pixels.index_select(0, start + col) for col in cols]
        rows.append(_cubic(taps, wx) if "x" in axes else taps[0].to(_FLOAT))
    out = (_cubic(rows, wy) if "y" in axes else rows[0]).clamp_(0, 255).floor_()
    out = torch.where(inside, out, fill.to(dev, x.dtype).repeat(t))
    return out.view(n, h, w, t, c).permute(0, 3, 4, 1, 2).contiguous()


def _matrix(v: torch.Tensor, *entries: torch.Tensor | float) -> torch.Tensor:
    """Per-clip affine matrices (n, 6) float64 from six entries, each a number or an (n,) tensor
    (v gives n and the device)."""
    return torch.stack([e.to(torch.float64).expand_as(v) if isinstance(e, torch.Tensor)
                        else torch.full_like(v, e, dtype=torch.float64)  # no host copy
                        for e in entries], 1)


# timm's affine ops (auto_augment.py rotate, shear_x, shear_y, translate_x_rel, translate_y_rel):
# the per-clip matrices from (arg0 (n,), height, width), and the directions that interpolate
_GEOMETRIC: dict[str, tuple[Callable[[torch.Tensor, int, int], torch.Tensor], str]] = {
    "Rotate": (_rotation_matrices, "xy"),
    "ShearX": (lambda v, h, w: _matrix(v, 1, v, 0, 0, 1, 0), "x"),
    "ShearY": (lambda v, h, w: _matrix(v, 1, 0, 0, v, 1, 0), "y"),
    "TranslateXRel": (lambda v, h, w: _matrix(v, 1, 0, v * w, 0, 1, 0), "x"),
    "TranslateYRel": (lambda v, h, w: _matrix(v, 1, 0, 0, 0, 1, v * h), "y"),
}


def _geometric(name: str) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    matrices, axes = _GEOMETRIC[name]

    def op(x: torch.Tensor, args: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
        return _affine(x, matrices(args[:, 0], x.shape[-2], x.shape[-1]), fill, axes)
    return op


_PIXEL_OPS = {
    "AutoContrast": _auto_contrast, "Equalize": _equalize, "Invert": _invert,
    "PosterizeIncreasing": _posterize, "SolarizeIncreasing": _solarize,
    "SolarizeAdd": _solarize_add, "ColorIncreasing": _color, "ContrastIncreasing": _contrast,
    "BrightnessIncreasing": _brightness, "SharpnessIncreasing": _sharpness,
}


def _ignoring_fill(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
                   ) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    def op(x: torch.Tensor, args: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
        return fn(x, args)
    return op


# OPS[i] is _DEVICE_OPS[i](clips (n, T, C, H, W), args float64 (n, 2), fill (C,))
_DEVICE_OPS = [_geometric(name) if name in _GEOMETRIC else _ignoring_fill(_PIXEL_OPS[name])
               for name in OPS]


def apply_rand_augment(clips: torch.Tensor, plans: torch.Tensor,
                       fill: float | Sequence[float] = RAND_AUGMENT_FILL) -> torch.Tensor:
    """Apply each clip's plan to all its frames, batched over the clips that share an op.

    clips: (B, T, 3, H, W) RGB on any device, uint8 or float with integer values 0..255 (not
    modified): each clip's frames a batch of images, one permute from the workers' uint8
    (T, H, W, 3) and a free (B*T, 3, H, W) view for resizing; the model's (B, C, T, H, W) comes
    after normalisation.
    plans: (B, num_layers, 3), `RandAugmentPlanner.draw` plans stacked, a host array or a tensor
    (best on the host: its op ids are read there); float64 keeps the arguments exact.
    fill: the affine ops' fill colour, a grey level or one per channel (timm's, as VideoMAE sets
    it: 128).
    Returns float32 (B, T, 3, H, W) with integer values 0..255.
    """
    if clips.dim() != 5 or clips.shape[2] != 3:
        raise ValueError(f"expected RGB clips (B, T, 3, H, W), got {tuple(clips.shape)}")
    if plans.ndim != 3 or plans.shape[0] != clips.shape[0] or plans.shape[2] != 3:
        raise ValueError(f"expected plans (B={clips.shape[0]}, layers, 3), got "
                         f"{tuple(plans.shape)}")
    # which clips take which op is decided on the host, from a host copy of the plans (the
    # workers made them there: no copy then), so a device is never asked for a value
    host = plans.detach().cpu().numpy() if isinstance(plans, torch.Tensor) else np.asarray(plans)
    device = clips.device
    x = clips.to(_FLOAT, memory_format=torch.contiguous_format, copy=True)
    fill_values = torch.stack([torch.full((), float(v), dtype=_FLOAT, device=device)
                               for v in np.broadcast_to(np.asarray(fill, np.float64), (3,))])
    args = to_device(torch.from_numpy(np.ascontiguousarray(host[..., 1:], np.float64)), device)
    for layer in range(host.shape[1]):
        for op_id, op in enumerate(_DEVICE_OPS):
            chosen = np.flatnonzero(host[:, layer, 0] == op_id)
            if len(chosen) == 0:
                continue
            if len(chosen) == x.shape[0]:
                x = op(x, args[:, layer], fill_values)
                continue
            index = to_device(torch.from_numpy(chosen), device)
            x.index_copy_(0, index, op(x.index_select(0, index), args[index, layer], fill_values))
    return x
