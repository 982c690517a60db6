"""Fine-tune a VideoMAE backbone with a PEFT method.

    videopeft train CONFIG [key.sub=value ...]
    torchrun --nproc_per_node=N -m videopeft train CONFIG [key.sub=value ...]
    python tools/train.py CONFIG [key.sub=value ...]       # the same, from a checkout

CONFIG is a YAML file or a shipped config's name (ssv2/adaptmlp). Writes the run folder (README.md,
"What a run writes") and prints where it is.
"""
from __future__ import annotations

from videopeft._lazy import lazy_module
from videopeft.config import load_config
from videopeft.engine.cli import is_main_process

from .parsing import add_config_arguments, command_parser, find_config, run_name_of

engine = lazy_module("videopeft.engine.train")  # torch loads when the work starts


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = command_parser(__doc__, prog, config_keys=True)
    add_config_arguments(parser, overrides_help="dotted.key=value overrides")
    args = parser.parse_args(argv)
    config = find_config(args.config)
    cfg = load_config(config, args.overrides)
    results = engine.train(cfg, run_name=run_name_of(config))
    if is_main_process():
        print(f"run: {results['output_dir']}")
        print(f"results: {results['output_dir']}/results.json (video top-1 "
              f"{results['video_top1']:.2f}%, top-5 {results['video_top5']:.2f}%)")
        print(f"adapter: {results['exported']}")
    return 0
