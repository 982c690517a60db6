"""The cells of a frame study, planned without torch: each cell's name, config and folder, and
which folders already hold a finished cell of the same settings (`finished_cells`), so the
command line refuses a study re-run with other settings before the engine loads.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Sequence

from videopeft._lazy import lazy_module
from videopeft.config import RunConfig, method_config
from videopeft.constants import STUDY_POLICIES
from videopeft.errors import ConfigError, check, one_of
from videopeft.run_folder import changed_settings, inspect_folder

__all__ = ["cell_name", "cell_config", "cell_sampling", "study_cells", "finished_cells"]

sampling = lazy_module("videopeft.data.sampling")  # torch: only for dense cells


def cell_name(method: str, frames: int, seed: int, stride: int | None = None) -> str:
    """The folder name of one cell: ``<method>-f<frames>-s<seed>``, with dense sampling
    ``<method>-f<frames>x<stride>-s<seed>`` (VideoMAE's "16x4")."""
    clip = f"f{frames}" if stride is None else f"f{frames}x{stride}"
    return f"{method}-{clip}-s{seed}"


def cell_config(base: RunConfig, method: str, frames: int, seed: int, out_dir: Path,
                policy: str = "coverage") -> RunConfig:
    """The base config with this cell's frames, method, seed and folder (resume: auto), and with
    dense sampling the stride of `policy` (coverage: the base clip's span over `frames`).

    The base method's options are kept when its name is `method`; other methods get their
    defaults plus the base method's `head_bn`, so every cell has the same head.
    """
    check(one_of("policy", policy, STUDY_POLICIES))
    cfg = copy.deepcopy(base)
    cfg.data.num_frames = frames
    if base.method.name != method:
        cfg.method = method_config({"name": method, "head_bn": base.method.head_bn})
    if frames % cfg.model.tubelet_size:
        raise ConfigError(f"{frames} is not a multiple of model.tubelet_size "
                          f"{cfg.model.tubelet_size}", key="frames")
    if base.data.sampling == "dense":
        coverage = base.data.num_frames * base.data.stride
        try:
            _, cfg.data.stride = sampling.frames_for_study(
                frames, policy, base_coverage=coverage, stride=base.data.stride)
        except ValueError:
            raise ConfigError(f"policy=coverage cannot spread {frames} frames over the base "
                              f"clip's {coverage} ({base.data.num_frames} x stride "
                              f"{base.data.stride}); use fewer frames or policy=fixed",
                              key="frames") from None
    cfg.seed = seed
    cfg.output_dir = str(out_dir)
    cfg.train.resume = "auto"
    return cfg


def cell_sampling(cfg: RunConfig) -> dict:
    """A cell's sampling columns: scheme, stride and span (frames of video one clip covers:
    num_frames * stride, VideoMAE's window; the whole video for segment sampling)."""
    d = cfg.data
    if d.sampling == "dense":
        return {"sampling": "dense", "stride": d.stride, "span": d.num_frames * d.stride}
    return {"sampling": d.sampling, "stride": None, "span": "whole video"}


def study_cells(base: RunConfig, frames: Sequence[int], methods: Sequence[str],
                seeds: Sequence[int], out_dir: Path, policy: str = "coverage"
                ) -> dict[tuple[str, int, int], RunConfig]:
    """{(method, frames, seed): the cell's config, output_dir its own folder under `out_dir`}."""
    cells = [(m, int(f), int(s)) for m in methods for f in frames for s in seeds]
    configs = {c: cell_config(base, *c, out_dir, policy) for c in cells}
    for cell, cfg in configs.items():
        cfg.output_dir = str(out_dir / cell_name(*cell, stride=cell_sampling(cfg)["stride"]))
    return configs


def finished_cells(configs: dict[tuple, RunConfig], out_dir: Path) -> set[tuple]:
    """The cells whose folder holds a finished run of the same config (to skip); ConfigError,
    one line naming the cells and the changed keys, when a folder holds a run of other settings
    (`videopeft.run_folder.folder_verdict`: a cell that stopped early is simply run again)."""
    done, stale, changed = set(), [], set()
    for cell, cfg in configs.items():
        state = inspect_folder(cfg.output_dir)
        if state.empty or state.stopped_early:
            continue
        keys = changed_settings(state.config, cfg) if state.config is not None else ["(all)"]
        if keys:
            stale.append(state.path.name)
            changed.update(keys)
        elif (state.path / "results.json").is_file():
            done.add(cell)
    if stale:
        raise ConfigError(f"{out_dir}: cells {', '.join(stale)} were run with other settings "
                          f"({', '.join(sorted(changed))} changed); choose another output_dir, "
                          f"or pass --overwrite to move the study aside (nothing is deleted)")
    return done
