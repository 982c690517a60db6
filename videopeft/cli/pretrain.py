"""VideoMAE masked pre-training of a backbone on the training videos (no labels).

    videopeft pretrain CONFIG [key.sub=value ...] [--overwrite]
    torchrun --nproc_per_node=N -m videopeft pretrain CONFIG
    python tools/pretrain.py CONFIG [key.sub=value ...]    # the same, from a checkout

Writes RUN/checkpoints/pretrain.pth ({'model': state_dict}, official pre-train key layout); pass it
to fine-tuning as model.pretrained=PATH. The run folder follows the rules of train (README.md,
"Run folders"): train.resume=auto continues the same run, --overwrite moves another aside.
"""
from __future__ import annotations

from videopeft._lazy import lazy_module
from videopeft.config import load_config
from videopeft.engine.cli import is_main_process
from videopeft.errors import RunInterrupted

from .parsing import (add_config_arguments, add_overwrite_argument, command_parser, find_config,
                      precheck_run, resume_command, run_name_of)
from .train import interrupted_message

engine = lazy_module("videopeft.engine.pretrain")  # torch loads when the work starts


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = command_parser(__doc__, prog, config_keys=True)
    add_config_arguments(parser, overrides_help="dotted.key=value overrides")
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    config = find_config(args.config)
    cfg = load_config(config, args.overrides)
    precheck_run(cfg, {cfg.data.split: True}, cfg.output_dir, overwrite=args.overwrite)
    try:
        path = engine.pretrain(cfg, run_name=run_name_of(config), overwrite=args.overwrite)
    except RunInterrupted as stop:
        raise RunInterrupted(stop.output_dir, stop.step, interrupted_message(
            stop, resume_command(prog, argv, stop.output_dir))) from None
    if is_main_process():
        print(f"pretrained weights: {path}")
    return 0
