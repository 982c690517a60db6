"""VideoMAE masked pre-training of a backbone on the training videos (no labels).

    videopeft pretrain CONFIG [key.sub=value ...]
    torchrun --nproc_per_node=N -m videopeft pretrain CONFIG
    python tools/pretrain.py CONFIG [key.sub=value ...]    # the same, from a checkout

Writes RUN/checkpoints/pretrain.pth ({'model': state_dict}, official pre-train key layout); pass it
to fine-tuning as model.pretrained=PATH.
"""
from __future__ import annotations

from videopeft._lazy import lazy_module
from videopeft.config import load_config
from videopeft.engine.cli import is_main_process

from .parsing import add_config_arguments, command_parser, find_config, run_name_of

engine = lazy_module("videopeft.engine.pretrain")  # torch loads when the work starts


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = command_parser(__doc__, prog, config_keys=True)
    add_config_arguments(parser, overrides_help="dotted.key=value overrides")
    args = parser.parse_args(argv)
    config = find_config(args.config)
    cfg = load_config(config, args.overrides)
    path = engine.pretrain(cfg, run_name=run_name_of(config))
    if is_main_process():
        print(f"pretrained weights: {path}")
    return 0
