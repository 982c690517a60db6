"""Training checkpoints: the full state of a run, written atomically, found again after a crash.

A checkpoint holds everything a resumed run needs to continue *exactly*: the trainable parameters
and the model's persistent buffers (BatchNorm statistics), optimizer, scheduler, AMP scaler, EMA,
epoch / global step / steps done in the epoch (the data position), the best score so far, the RNG
states (torch, CUDA, numpy, python) of *every* rank, and the resolved config.

Layout in ``<output_dir>/checkpoints/``::

    step_00000120.pt   one file per save; the newest `keep_last` are kept
    last.pt            the newest save (a hard link to its step file, or a copy)
    best.pt            the state at the best validation score

Every file is written to a hidden temporary in the same folder, flushed, fsync'ed and moved into
place with `os.replace`, so a reader (or a run killed mid-write) only ever sees complete files.
`find_resume` returns the newest checkpoint that loads; a file that does not is skipped with a
warning naming it and the error.
"""
from __future__ import annotations

import logging
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from videopeft.errors import CheckpointError, one_line
from videopeft.io import atomic_link, atomic_path

__all__ = ["FORMAT", "atomic_save",
           "rng_state", "set_rng_state", "model_state", "load_model_state", "CheckpointManager",
           "load_checkpoint", "find_resume"]

_log = logging.getLogger(__name__)

FORMAT = "videopeft-train-state/1"
_STEP_RE = re.compile(r"^step_(\d+)\.pt$")




# ----------------------------------------------------------------------------- atomic files

def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """`torch.save(obj, path)` through `videopeft.io.atomic_path`: the file is whole or absent."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


# ----------------------------------------------------------------------------- RNG state

def rng_state() -> dict:
    """This process's generator states, as tensors and plain lists (loads with weights_only)."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": np_kind, "keys": torch.from_numpy(np_keys.astype(np.int64)),
                  "pos": int(np_pos), "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "python": {"version": py_version, "internal": list(py_internal), "gauss": py_gauss},
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: dict) -> None:
    """Restore the generator states captured by `rng_state`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------- model state

def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The trainable parameters and the persistent buffers (e.g. BatchNorm statistics), on CPU.

    Frozen backbone weights are not saved: a resumed run rebuilds them from `model.pretrained`.
    """
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    out = {}
    for name, tensor in model.state_dict().items():
        if name in trainable or _is_buffer(model, name):
            out[name] = tensor.detach().cpu().clone()
    return out


def _is_buffer(model: nn.Module, name: str) -> bool:
    module_name, _, leaf = name.rpartition(".")
    module = model.get_submodule(module_name) if module_name else model
    return leaf in module._buffers


def load_model_state(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint"
                     ) -> None:
    """Load `model_state` output; every trainable parameter must be in it, with its shape.

    Raises CheckpointError listing the missing, unexpected and mis-shaped keys, so a checkpoint of
    another method or model is never half-applied.
    """
    own = model.state_dict()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    missing = sorted(trainable - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
              for k, v in state.items() if k in own and own[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing trainable {_short(missing)}")
        if unexpected:
            parts.append(f"unexpected {_short(unexpected)}")
        if shapes:
            parts.append(f"shape mismatch {_short(shapes)}")
        raise CheckpointError(f"{source}: does not match this model/method: " + "; ".join(parts))
    model.load_state_dict(state, strict=False)


def _short(items: list[str], n: int = 4) -> str:
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return "[" + ", ".join(items[:n]) + "]" + more


# ----------------------------------------------------------------------------- files

def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a training checkpoint on CPU; raise CheckpointError naming the file when unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a damaged file fails in many ways (zip, pickle, struct)
        raise CheckpointError(f"{path}: unreadable checkpoint ({one_line(err)})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a videopeft training checkpoint "
                              f"(expected format {FORMAT!r})")
    return state


def find_resume(folder: str | os.PathLike) -> tuple[Path, dict] | None:
    """The newest checkpoint in `folder` that loads, with its state; None when there is none.

    Step files are tried newest first and the first one that loads wins (one read in the normal
    case); an unreadable file is skipped with a warning naming it and the error. ``last.pt`` is
    always a link to (or copy of) a step file, so it is only a fallback. A run killed before
    `os.replace` leaves a hidden temporary, never a torn ``.pt``, but a disk error or a foreign
    file might.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    steps = sorted(((int(m.group(1)), p) for p in folder.iterdir()
                    if (m := _STEP_RE.match(p.name))), reverse=True)
    candidates = [p for _, p in steps] + [folder / "last.pt"]
    for path in candidates:
        if not path.is_file():
            continue
        try:
            return path, load_checkpoint(path)
        except CheckpointError as err:
            _log.warning("skipping checkpoint: %s", err)
    return None


class CheckpointManager:
    """Writes step checkpoints, `last.pt` and `best.pt` into one folder (main rank only).

    Args:
        folder: ``<output_dir>/checkpoints``.
        keep_last: step files to keep (older ones are deleted; last/best are separate names).
        enabled: False on non-main ranks (they still take part in gathering RNG states).
    """

    def __init__(self, folder: str | os.PathLike, keep_last: int = 2, enabled: bool = True) -> None:
        self.folder = Path(folder)
        self.keep_last = max(1, keep_last)
        self.enabled = enabled
        if enabled:
            self.folder.mkdir(parents=True, exist_ok=True)
            for stale in self.folder.glob(".*.tmp-*"):  # left by a run killed mid-write
                stale.unlink()

    def save(self, state: dict, step: int) -> Path | None:
        """Write ``step_<step>.pt`` and point ``last.pt`` at it; prune old step files."""
        if not self.enabled:
            return None
        path = self.folder / f"step_{step:08d}.pt"
        atomic_save({"format": FORMAT, **state}, path)
        atomic_link(path, self.folder / "last.pt")
        self._prune()
        _log.info("checkpoint: %s", path)
        return path

    def save_best(self, state: dict) -> Path | None:
        """Write ``best.pt``."""
        if not self.enabled:
            return None
        path = self.folder / "best.pt"
        atomic_save({"format": FORMAT, **state}, path)
        return path

    def _prune(self) -> None:
        steps = sorted((int(m.group(1)), p) for p in self.folder.iterdir()
                       if (m := _STEP_RE.match(p.name)))
        for _, old in steps[: -self.keep_last]:
            old.unlink()
