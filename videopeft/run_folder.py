"""A run folder belongs to one run: what may start in a folder, what is refused, what is moved.

Training, pre-training, evaluation and each frame-study cell write into a folder. Before anything
is written, `claim_run_folder` decides from what the folder already holds:

* nothing (absent or empty): the run starts there;
* a run that stopped before its first checkpoint (run.json ``finished: false`` or no run.json,
  and no ``checkpoints/*.pt``): nothing can be lost, so a new run reuses the folder;
* the same run (its config.yaml equals this run's config, keys in `NOT_COMPARED` aside) with
  checkpoints: continued when ``train.resume`` is set (``auto`` or a checkpoint), else refused;
* another run (any other config key differs): refused, naming the keys;
* files that are not a run (no config.yaml): refused.

With ``overwrite`` (``--overwrite``) the old contents are first moved aside to a sibling
``<folder>.old-<time>``: never deleted. A refusal is one `ConfigError` line naming the folder,
the keys and both ways out. Torch-free, so a command line answers before importing torch; the
engine asks again on the main rank, where the folder is actually claimed.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from videopeft.config import RunConfig, config_to_dict
from videopeft.errors import ConfigError

__all__ = ["NOT_COMPARED", "changed_keys", "settings_of", "changed_settings", "FolderState",
           "inspect_folder", "folder_verdict", "claim_run_folder", "move_aside", "unique_path"]

_log = logging.getLogger(__name__)

# keys that do not make a run another run: where it is written, whether it resumes, how long it
# runs (a resumed run keeps the schedule of its checkpoint; these only move where it stops), and
# how the machine executes it without changing what it computes (loader and decoder parallelism:
# a clip is a function of its seed whatever the workers; the eval batch; how often it logs)
NOT_COMPARED = ("output_dir", "train.resume", "train.epochs", "train.max_steps", "data.workers",
                "data.decode_threads", "eval.batch_size", "train.log_every")
_CONFIG, _RECORD, _CHECKPOINTS = "config.yaml", "run.json", "checkpoints"
_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested mappings, sorted."""
    if not (isinstance(old, Mapping) and isinstance(new, Mapping)):
        return [] if old == new else [prefix or "(all)"]
    changed = []
    for key in sorted(set(old) | set(new), key=str):
        name = f"{prefix}.{key}" if prefix else str(key)
        changed += changed_keys(old.get(key), new.get(key), name)
    return changed


def settings_of(cfg: RunConfig) -> dict:
    """The config as config.yaml stores it (a YAML round trip: tuples become lists)."""
    return yaml.safe_load(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def changed_settings(saved: Mapping, cfg: RunConfig) -> list[str]:
    """The keys of a saved config.yaml that differ from `cfg`'s, `NOT_COMPARED` left out; another
    method is named by `method.name` alone (its other keys are another method's)."""
    keys = [k for k in changed_keys(saved, settings_of(cfg))
            if not any(k == skip or k.startswith(skip + ".") for skip in NOT_COMPARED)]
    if "method.name" in keys:
        keys = sorted(k for k in keys if not k.startswith("method.")) + ["method.name"]
    return sorted(keys)


@dataclass
class FolderState:
    """What a folder holds, as far as the rules above care."""

    path: Path
    entries: list[str]  # its file and folder names, sorted ([] = absent or empty)
    config: dict | None  # its config.yaml (None: none, or unreadable)
    finished: bool | None  # run.json's "finished" (None: no readable run.json)
    last_step: int | None  # the newest checkpoints/step_*.pt (None: no step checkpoint)
    has_checkpoints: bool  # any checkpoints/*.pt (step files, last.pt, best.pt, pretrain.pth)

    @property
    def empty(self) -> bool:
        return not self.entries

    @property
    def stopped_early(self) -> bool:
        """A run that stopped before its first checkpoint: nothing in it can be lost."""
        return self.config is not None and not self.finished and not self.has_checkpoints

    def describe(self) -> str:
        """'finished', 'stopped at step 4' or 'unfinished' (for messages)."""
        if self.finished:
            return "finished"
        return f"stopped at step {self.last_step}" if self.last_step is not None else "unfinished"


def _read_yaml(path: Path) -> dict | None:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def _finished(path: Path) -> bool | None:
    try:
        return bool(json.loads(path.read_text()).get("finished"))
    except (OSError, ValueError, AttributeError):
        return None


def inspect_folder(path: str | os.PathLike) -> FolderState:
    """Read what `path` holds: its names, config.yaml, run.json's outcome, its checkpoints."""
    path = Path(path)
    entries = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    checkpoints = path / _CHECKPOINTS
    files = [p.name for p in checkpoints.iterdir()] if checkpoints.is_dir() else []
    steps = [int(m.group(1)) for name in files if (m := _STEP_FILE.match(name))]
    return FolderState(path, entries, _read_yaml(path / _CONFIG) if entries else None,
                       _finished(path / _RECORD) if entries else None,
                       max(steps) if steps else None,
                       any(name.endswith((".pt", ".pth")) for name in files))


def _shown(keys: list[str], limit: int = 8) -> str:
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def folder_verdict(state: FolderState, cfg: RunConfig, *, resume: bool, overwrite: bool,
                   resumable: bool = True) -> str:
    """What a run of `cfg` may do in the folder `state` describes, without touching it:
    'new' (empty or absent), 'overwrite' (move the contents aside first), 'reuse' (a run that
    stopped before its first checkpoint), 'resume' (the same run, continued). Anything else is
    a ConfigError line naming the folder and the ways out.

    `resumable` is False for evaluations: they never continue a folder.
    """
    if state.empty:
        return "new"
    if overwrite:
        return "overwrite"
    folder = state.path
    aside = "or pass --overwrite to move its contents aside (nothing is deleted)"
    if state.config is None:
        raise ConfigError(f"{folder}: exists and is not a run folder (no readable {_CONFIG}); "
                          f"choose another output_dir, {aside}")
    if state.stopped_early:
        return "reuse"
    if not resumable and state.has_checkpoints:
        raise ConfigError(f"{folder}: holds a training run ({state.describe()}); an evaluation "
                          f"writes a folder of its own: choose another output_dir")
    changed = changed_settings(state.config, cfg)
    if changed:
        raise ConfigError(f"{folder}: holds another run ({state.describe()}; {_shown(changed)} "
                          f"changed); choose another output_dir, {aside}")
    if resumable and resume and state.has_checkpoints:
        return "resume"
    how = "add train.resume=auto to continue it, " if resumable and state.has_checkpoints else ""
    raise ConfigError(f"{folder}: holds this run already ({state.describe()}); {how}choose "
                      f"another output_dir, {aside}")


def unique_path(path: Path) -> Path:
    """`path`, or `path-2`, `path-3`, ... : the first that does not exist."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def move_aside(path: str | os.PathLike) -> Path:
    """Rename the folder `path` to an unused sibling ``<name>.old-<time>``; returns the new path."""
    path = Path(path)
    target = unique_path(path.with_name(f"{path.name}.old-{time.strftime('%Y%m%d-%H%M%S')}"))
    os.replace(path, target)
    _log.warning("--overwrite: moved the old contents of %s to %s", path, target)
    return target


def claim_run_folder(path: str | os.PathLike, cfg: RunConfig, *, resume: bool,
                     overwrite: bool = False, resumable: bool = True) -> str:
    """Check `path` for a run of `cfg` (see `folder_verdict`) and act on the verdict: move an
    overwritten folder aside, say when a folder is reused. Call it on one process only (the
    main rank), before anything is written; returns the verdict."""
    state = inspect_folder(path)
    verdict = folder_verdict(state, cfg, resume=resume, overwrite=overwrite, resumable=resumable)
    if verdict == "overwrite":
        move_aside(state.path)
    elif verdict == "reuse":
        _log.info("%s: reusing the folder of a run that stopped before its first checkpoint",
                  state.path)
    return verdict
