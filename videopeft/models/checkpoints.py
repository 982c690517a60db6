"""Load VideoMAE-family checkpoints into a VideoViT and say exactly what happened.

    report = load_pretrained(model, "videomae_vit_b_k400_pretrain_1600e.pth")  # logs the table

`load_pretrained` reads the file (`checkpoint_files`), names its key layout from sentinel keys and
renames the keys to VideoViT's (`converters`: official VideoMAE fine-tune or pre-train, HF
transformers VideoMAE, timm image ViT), fits the shapes that depend on the model (`fitting`: patch
kernel inflation, learned position tables, class token, head), loads, and returns a `LoadReport`.
`convert_state_dict` is the same conversion for a state dict already in memory. The loader uses
only VideoViT's attributes (`grid`, `blocks`, `pos_embed`, `set_pos_source_grid`, `arch`), not
`videopeft.models.vit`, which calls it for `create_model(pretrained=)`.

Positions: official and HF checkpoints use the fixed sinusoid table and store none.
``pos_policy="regenerate"`` (VideoMAE's behaviour) keeps the model's table, built for its own grid;
``"resample"`` calls `model.set_pos_source_grid(checkpoint grid)` so that "frame t" keeps the table
rows it was trained with. The checkpoint grid comes from the HF config, from `arch` metadata in our
own files, from an official `args` namespace, or (official pre-train layout only) is assumed to be
16 frames at 224 px, the size of every released VideoMAE pre-training run. Learned tables are
resampled in 3-D (time and space separately) whenever the grids differ.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch.nn as nn

from videopeft.constants import POS_POLICIES
from videopeft.errors import CheckpointError

from .checkpoint_files import SourceInfo, read_checkpoint, save_pretrained
from .converters import CHECKPOINT_LAYOUTS, CONVERTERS, ConvertNotes, StateDict, detect_layout
from .fitting import fit_to_model, inflate_patch_weight
from .pos_embed import Grid

# the loading API in one import; each name lives in the module it is imported from above
__all__ = ["CheckpointError", "LoadReport", "ConvertNotes", "SourceInfo", "CHECKPOINT_LAYOUTS",
           "load_pretrained", "convert_state_dict", "read_checkpoint", "detect_layout",
           "inflate_patch_weight", "save_pretrained"]

_log = logging.getLogger(__name__)

# every released VideoMAE pre-training run used 16 frames at 224 px
# (MCG-NJU/VideoMAE:scripts/*/pretrain.sh)
OFFICIAL_PRETRAIN_FRAMES, OFFICIAL_PRETRAIN_SIZE = 16, 224


@dataclass
class LoadReport:
    """The outcome of `load_pretrained`: which model keys were filled, left fresh or changed."""

    file: str
    layout: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # model keys left as initialised
    unexpected: list[str] = field(default_factory=list)  # checkpoint keys the model has no slot for
    resized: dict[str, str] = field(default_factory=dict)  # regenerated/resampled/inflated keys
    ignored: dict[str, str] = field(default_factory=dict)  # dropped on purpose (decoder, new head)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        rows: list[tuple[str, str, str]] = [
            ("loaded", str(len(self.loaded)), _compress(self.loaded)),
            ("missing", str(len(self.missing)), _compress(self.missing)),
            ("unexpected", str(len(self.unexpected)), _compress(self.unexpected)),
        ]
        rows += [("resized", "", f"{k}: {v}") for k, v in self.resized.items()]
        if not self.resized:
            rows.append(("resized", "0", "-"))
        for reason, keys in _group_by_value(self.ignored).items():
            rows.append(("ignored", str(len(keys)), f"{_compress(keys)} ({reason})"))
        if not self.ignored:
            rows.append(("ignored", "0", "-"))
        rows += [("note", "", n) for n in self.notes]
        width = max(len(r[0]) for r in rows)
        lines = [f"checkpoint {self.file} (layout: {self.layout})",
                 f"{'category':<{width}}  count  keys", f"{'-' * width}  -----  {'-' * 40}"]
        lines += [f"{c:<{width}}  {n:>5}  {d}" for c, n, d in rows]
        return "\n".join(lines)


def _compress(keys: list[str], limit: int = 8) -> str:
    """Collapse block indices (`blocks.0.x, blocks.1.x` -> `blocks.[0-1].x`) for short reports."""
    if not keys:
        return "-"
    groups: dict[str, list[int]] = {}
    for key in keys:
        m = re.search(r"\.(\d+)\.", key)
        pattern = key if m is None else key[:m.start()] + ".\0." + key[m.end():]
        groups.setdefault(pattern, []).append(-1 if m is None else int(m.group(1)))
    parts = []
    for pattern, idx in groups.items():
        idx = sorted(set(idx))
        if idx == [-1]:
            parts.append(pattern)
            continue
        if len(idx) == 1:
            label = str(idx[0])
        elif idx == list(range(idx[0], idx[-1] + 1)):
            label = f"[{idx[0]}-{idx[-1]}]"
        else:
            label = "[" + ",".join(map(str, idx)) + "]"
        parts.append(pattern.replace("\0", label))
    extra = f", ... (+{len(parts) - limit})" if len(parts) > limit else ""
    return ", ".join(parts[:limit]) + extra


def _group_by_value(mapping: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in mapping.items():
        out.setdefault(value, []).append(key)
    return out


def convert_state_dict(state_dict: StateDict, model: nn.Module, layout: str | None = None, *,
                       source_grid: Grid | None = None) -> tuple[StateDict, ConvertNotes]:
    """Rename a state dict of `layout` (detected when None) into `model`'s keys and fit it.

    Pure: the inputs are not modified. Fitting inflates an image patch kernel, resamples a learned
    position table from `source_grid` (inferred when None) to the model's grid, drops a table the
    model does not learn, a class token it does not have, and a head of another class count.
    Remaining shape mismatches are left for the caller (`load_pretrained` raises on them).
    """
    layout = layout or detect_layout(state_dict)
    if layout not in CONVERTERS:
        raise ValueError(f"unknown layout {layout!r}; choose from {', '.join(CHECKPOINT_LAYOUTS)}")
    notes = ConvertNotes()
    sd = CONVERTERS[layout](dict(state_dict), notes)
    return fit_to_model(sd, model, notes, source_grid, image=layout == "timm"), notes


def _checkpoint_grid(layout: str, sd: StateDict, info: SourceInfo,
                     notes: ConvertNotes) -> tuple[Grid | None, Grid | None]:
    """(grid the checkpoint's model was built for, grid its sinusoid table was made for)."""
    a = info.arch or {}
    if all(k in a for k in ("num_frames", "tubelet_size", "img_size", "patch_size")):
        built = (a["num_frames"] // a["tubelet_size"], a["img_size"] // a["patch_size"],
                 a["img_size"] // a["patch_size"])
        return built, tuple(a["pos_source_grid"]) if a.get("pos_source_grid") else built
    if info.hf_config and layout == "hf":
        c = info.hf_config
        size, patch = _pair(c.get("image_size", 224)), _pair(c.get("patch_size", 16))
        grid = (c.get("num_frames", 16) // c.get("tubelet_size", 2),
                size[0] // patch[0], size[1] // patch[1])
        return grid, grid
    weight = sd.get("patch_embed.proj.weight")
    video = weight is not None and weight.ndim == 5
    tubelet, patch = (weight.shape[2], weight.shape[-1]) if video else (2, 16)
    if info.args and "num_frames" in info.args and "input_size" in info.args:
        a = info.args
        grid = (a["num_frames"] // a.get("tubelet_size", tubelet), a["input_size"] // patch,
                a["input_size"] // patch)
        return grid, grid
    if layout == "official_pretrain":
        grid = (OFFICIAL_PRETRAIN_FRAMES // tubelet, OFFICIAL_PRETRAIN_SIZE // patch,
                OFFICIAL_PRETRAIN_SIZE // patch)
        notes.messages.append(f"checkpoint grid assumed {grid}: official pre-training used "
                              f"{OFFICIAL_PRETRAIN_FRAMES} frames at {OFFICIAL_PRETRAIN_SIZE} px")
        return grid, grid
    return None, None


def _pair(v: Any) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (list, tuple)) else (int(v), int(v))


def load_pretrained(model: nn.Module, path: str | Path, *, pos_policy: str = "regenerate",
                    strict_shapes: bool = True, source_grid: Grid | None = None) -> LoadReport:
    """Load a checkpoint file or HF directory into a VideoViT; return (and log) what happened.

    Args:
        pos_policy: "regenerate" keeps the model's sinusoid table for its own grid (VideoMAE);
            "resample" builds it at the checkpoint's grid and resamples it in 3-D to the model's.
        strict_shapes: raise CheckpointError on a shape no policy resolves; False drops such keys
            (reported under ignored) and warns.
        source_grid: the checkpoint's token grid (T', H', W') when the file cannot say (overrides).
    """
    if pos_policy not in POS_POLICIES:
        raise ValueError(f"pos_policy must be one of {POS_POLICIES}, got {pos_policy!r}")
    if not hasattr(model, "grid") or not hasattr(model, "blocks"):
        raise TypeError(f"load_pretrained expects a VideoViT, got {type(model).__name__}")
    sd, info = read_checkpoint(path)
    try:
        layout = detect_layout(sd)
        notes = ConvertNotes()
        table_grid, sinusoid_grid = _checkpoint_grid(layout, sd, info, notes)
        table_grid = tuple(source_grid) if source_grid else table_grid
        sinusoid_grid = tuple(source_grid) if source_grid else sinusoid_grid
        new_sd, conv = convert_state_dict(sd, model, layout, source_grid=table_grid)
    except CheckpointError as e:
        raise CheckpointError(f"{info.file}: {e}") from None
    if layout == "official_finetune" and info.arch:
        layout = "videopeft"
    notes.ignored.update(conv.ignored)
    notes.resized.update(conv.resized)
    notes.messages += conv.messages
    _check_depth(new_sd, model, info.file)
    _check_shapes(new_sd, model, info.file, notes, strict_shapes)
    result = model.load_state_dict(new_sd, strict=False)
    unexpected = set(result.unexpected_keys)
    if not any(k.startswith(("patch_embed.", "blocks.")) and k not in unexpected for k in new_sd):
        raise CheckpointError(f"{info.file}: no backbone weight matched the model (layout "
                              f"{layout}; first checkpoint keys {list(sd)[:3]})")
    _apply_pos_policy(model, pos_policy, sinusoid_grid, "pos_embed" in sd, notes)
    _note_hf_eps(info, notes)
    report = LoadReport(file=info.file, layout=layout,
                        loaded=[k for k in new_sd if k not in unexpected],
                        missing=list(result.missing_keys), unexpected=list(result.unexpected_keys),
                        resized=notes.resized, ignored=notes.ignored, notes=notes.messages)
    _log.info("loaded pretrained weights\n%s", report)
    return report


def _check_depth(sd: StateDict, model: nn.Module, file: str) -> None:
    """A checkpoint with another number of blocks is another architecture: refuse it."""
    depth = len(model.blocks)
    idx = {int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k))}
    if idx and (max(idx) + 1 != depth):
        raise CheckpointError(f"{file}: checkpoint has {max(idx) + 1} blocks, model "
                              f"{_name(model)} has {depth} (another architecture?)")


def _check_shapes(sd: StateDict, model: nn.Module, file: str, notes: ConvertNotes,
                  strict: bool) -> None:
    """Refuse (or drop, when not strict) keys whose shapes differ from the model's."""
    target = model.state_dict()
    bad = [(k, tuple(sd[k].shape), tuple(v.shape)) for k, v in target.items()  # model order
           if k in sd and sd[k].shape != v.shape]
    if not bad:
        return
    text = "; ".join(f"{k}: checkpoint {a} vs model {b}" for k, a, b in bad[:3])
    more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
    if strict:
        raise CheckpointError(f"{file}: does not fit {_name(model)}: {text}{more}")
    for k, a, b in bad:
        del sd[k]
        notes.ignored[k] = "shape mismatch"
    _log.warning("%s: dropped keys of another shape: %s%s", file, text, more)


def _name(model: nn.Module) -> str:
    """The variant name `create_model` recorded, else the class name."""
    return model.arch.get("name", type(model).__name__)


def _apply_pos_policy(model: nn.Module, policy: str, src: Grid | None, had_table: bool,
                      notes: ConvertNotes) -> None:
    """Set the sinusoid table of the model according to the policy and record what changed."""
    if isinstance(model.pos_embed, nn.Parameter):
        if not had_table:
            notes.messages.append("checkpoint has no learned pos_embed: the model's table is fresh")
        return
    grid = tuple(model.grid)
    if policy == "resample":
        if src is None:
            notes.messages.append("pos_policy=resample but the checkpoint grid is unknown: table "
                                  "regenerated (pass source_grid=)")
            return
        model.set_pos_source_grid(src if tuple(src) != grid else None)
        if tuple(src) != grid:
            notes.resized["pos_embed"] = f"sinusoid made for grid {tuple(src)} resampled -> {grid}"
        return
    if model.pos_source_grid is not None:
        notes.messages.append(f"model keeps its own pos_source_grid {model.pos_source_grid}")
    elif src is not None and tuple(src) != grid:
        notes.resized["pos_embed"] = f"sinusoid regenerated: checkpoint grid {tuple(src)} -> {grid}"


def _note_hf_eps(info: SourceInfo, notes: ConvertNotes) -> None:
    eps = (info.hf_config or {}).get("layer_norm_eps")
    if eps is not None and abs(eps - 1e-6) > 1e-12:
        notes.messages.append(f"HF config layer_norm_eps={eps:g}; VideoViT uses 1e-6 (tiny drift)")
