"""Accuracy vs number of frames, per PEFT method: a resumable grid of runs.

    videopeft frame-study CONFIG frames=[2,4,8,16] methods=[linear,vpt,adaptmlp] \
        [seeds=[0,1]] [policy=coverage|fixed] [key.sub=value ...] [--overwrite]
    python tools/frame_study.py CONFIG frames=[...] methods=[...]   # the same, from a checkout

Each cell runs in <output_dir>/<method>-f<frames>-s<seed>/ (f<frames>x<stride> with dense
sampling); cells with a results.json are skipped, so re-running the command finishes an interrupted
study. A cell made with other settings (any key of its config.yaml but output_dir, train.resume,
train.epochs, train.max_steps) stops the study before any work, naming the changed keys;
--overwrite moves the old study folder aside to <output_dir>.old-<time>. With dense sampling,
policy=coverage (the default) keeps the base clip's span by stretching the stride, policy=fixed
keeps the stride. output_dir defaults to runs/<config>-frame_study.
Writes frame_study.csv, frame_study.md and frame_study.png there.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from videopeft._lazy import lazy_module
from videopeft.config import load_config
from videopeft.constants import STUDY_POLICIES
from videopeft.engine.cli import is_main_process, split_key
from videopeft.errors import ConfigError
from videopeft.studies import cells

from .parsing import (add_config_arguments, add_overwrite_argument, command_parser, find_config,
                      precheck_run, run_name_of)

study = lazy_module("videopeft.studies.frame_study")  # torch loads when the work starts


def _list(raw: str | None, key: str, default: list | None = None) -> list:
    """The YAML list given as `key=[...]` (a single value is a list of one)."""
    if raw is None:
        if default is None:
            raise ConfigError(f"expected {key}=[...], e.g. frames=[2,4,8,16]", key=key,
                              where="command line")
        return default
    value = yaml.safe_load(raw)
    value = value if isinstance(value, list) else [value]
    if not value:
        raise ConfigError(f"expected a non-empty list, got {raw!r}", key=key, where="command line")
    return value


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = command_parser(__doc__, prog, config_keys=True)
    add_config_arguments(parser, overrides_help="frames=[...] methods=[...] [seeds=[...]] "
                                                "[policy=coverage|fixed] and dotted.key=value")
    add_overwrite_argument(parser, "when cells of output_dir were run with other settings, move "
                                   "the whole study folder aside to <output_dir>.old-<time> "
                                   "first; nothing is deleted")
    args = parser.parse_args(argv)
    frames, rest = split_key(args.overrides, "frames")
    methods, rest = split_key(rest, "methods")
    seeds, rest = split_key(rest, "seeds")
    policy, rest = split_key(rest, "policy")
    if policy is not None and policy not in STUDY_POLICIES:
        raise ConfigError(f"expected one of {list(STUDY_POLICIES)}, got {policy!r}", key="policy",
                          where="command line")
    frames = _list(frames, "frames")
    if not all(isinstance(f, int) and f > 0 for f in frames):
        raise ConfigError(f"expected positive integers, got {frames}", key="frames",
                          where="command line")
    methods = [str(m) for m in _list(methods, "methods")]
    seeds = _list(seeds, "seeds", [0])
    if not all(isinstance(s, int) for s in seeds):
        raise ConfigError(f"expected integers, got {seeds}", key="seeds", where="command line")
    config = find_config(args.config)
    cfg = load_config(config, rest)
    out_dir = cfg.output_dir or f"runs/{run_name_of(config)}-frame_study"
    splits = {cfg.data.split: True}  # {split: trained on}
    splits.setdefault(cfg.eval.split, False)
    precheck_run(cfg, splits, None, num_classes=cfg.model.num_classes)
    configs = cells.study_cells(cfg, frames, methods, seeds, Path(out_dir), policy or "coverage")
    if not args.overwrite:  # a study of other settings is refused before torch loads
        cells.finished_cells(configs, Path(out_dir))
    try:
        rows = study.run_frame_study(cfg, frames, methods, seeds, out_dir=out_dir,
                                     policy=policy or "coverage", overwrite=args.overwrite)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"interrupted; run the same command again to finish the study "
                                f"in {out_dir} (finished cells are skipped, the unfinished one "
                                f"resumes)") from None
    if is_main_process():
        print(f"frame study ({len(rows)} cells): {out_dir}/frame_study.md, "
              f"{out_dir}/frame_study.csv, {out_dir}/frame_study.png")
    return 0
