"""Evaluate a checkpoint with the config's multi-view protocol (views, fusion).

    videopeft eval CONFIG checkpoint=PATH [key.sub=value ...]
    torchrun --nproc_per_node=N -m videopeft eval CONFIG checkpoint=PATH
    python tools/eval.py CONFIG checkpoint=PATH            # the same, from a checkout

Scores eval.split. PATH is a training checkpoint (RUN/checkpoints/best.pt), an adapter file
(adapter.safetensors) or a plain weight file (a merged or fully fine-tuned model). Writes
results.json, predictions.csv, plots/confusion_matrix.png, manifest.json and run.json into
output_dir (default runs/<config>-eval-<time>).
"""
from __future__ import annotations

from videopeft._lazy import lazy_module
from videopeft.config import load_config
from videopeft.engine.cli import is_main_process, split_key
from videopeft.errors import ConfigError

from .parsing import add_config_arguments, command_parser, find_config, run_name_of

engine = lazy_module("videopeft.engine.evaluate")  # torch loads when the work starts


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = command_parser(__doc__, prog, config_keys=True)
    add_config_arguments(parser, overrides_help="checkpoint=PATH and dotted.key=value overrides")
    parser.add_argument("--checkpoint", default=None, help="same as checkpoint=PATH")
    args = parser.parse_args(argv)
    checkpoint, overrides = split_key(args.overrides, "checkpoint")
    checkpoint = args.checkpoint or checkpoint
    if not checkpoint:
        raise ConfigError("expected checkpoint=PATH (a .pt training checkpoint, an adapter "
                          ".safetensors or a weight file)", key="checkpoint", where="command line")
    config = find_config(args.config)
    cfg = load_config(config, overrides)
    results = engine.evaluate(cfg, checkpoint=checkpoint, run_name=run_name_of(config) + "-eval")
    if is_main_process():
        print(f"results: {results['output_dir']}/results.json (video top-1 "
              f"{results['video_top1']:.2f}%, top-5 {results['video_top5']:.2f}%, "
              f"{results['num_videos']} videos, {results['num_failed']} failed)")
    return 0
