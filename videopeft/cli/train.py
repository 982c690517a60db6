"""Fine-tune a VideoMAE backbone with a PEFT method.

    videopeft train CONFIG [key.sub=value ...] [--overwrite]
    torchrun --nproc_per_node=N -m videopeft train CONFIG [key.sub=value ...]
    python tools/train.py CONFIG [key.sub=value ...]       # the same, from a checkout

CONFIG is a YAML file or a shipped config's name (ssv2/adaptmlp). Writes the run folder (README.md,
"What a run writes") and prints where it is. An output_dir that holds another run is refused
before any work (README.md, "Run folders"): train.resume=auto continues the same run, --overwrite
moves the other one aside. Ctrl-C prints the command that continues the run.
"""
from __future__ import annotations

from videopeft._lazy import lazy_module
from videopeft.config import load_config
from videopeft.engine.cli import is_main_process
from videopeft.errors import RunInterrupted

from .parsing import (add_config_arguments, add_overwrite_argument, command_parser, find_config,
                      precheck_run, resume_command, run_name_of)

engine = lazy_module("videopeft.engine.train")  # torch loads when the work starts


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = command_parser(__doc__, prog, config_keys=True)
    add_config_arguments(parser, overrides_help="dotted.key=value overrides")
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    config = find_config(args.config)
    cfg = load_config(config, args.overrides)
    splits = {cfg.data.split: True}  # {split: trained on}
    splits.setdefault(cfg.eval.split, False)
    precheck_run(cfg, splits, cfg.output_dir, overwrite=args.overwrite,
                 num_classes=cfg.model.num_classes)
    try:
        results = engine.train(cfg, run_name=run_name_of(config), overwrite=args.overwrite)
    except RunInterrupted as stop:
        raise RunInterrupted(stop.output_dir, stop.step, interrupted_message(
            stop, resume_command(prog, argv, stop.output_dir))) from None
    if is_main_process():
        print(f"run: {results['output_dir']}")
        print(f"results: {results['output_dir']}/results.json (video top-1 "
              f"{results['video_top1']:.2f}%, top-5 {results['video_top5']:.2f}%)")
        print(f"adapter: {results['exported']}")
    return 0


def interrupted_message(stop: RunInterrupted, command: str) -> str:
    """One line: where the run stopped and the command that continues it."""
    saved = f"last checkpoint at step {stop.step}" if stop.step >= 0 else "no checkpoint yet"
    return f"interrupted ({saved} in {stop.output_dir}); continue with: {command}"
