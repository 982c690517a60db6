"""Evaluate a checkpoint with the config's multi-view protocol (views, fusion).

    videopeft eval CONFIG checkpoint=PATH [key.sub=value ...] [--overwrite]
    torchrun --nproc_per_node=N -m videopeft eval CONFIG checkpoint=PATH
    python tools/eval.py CONFIG checkpoint=PATH            # the same, from a checkout

Scores eval.split. PATH is a training checkpoint (RUN/checkpoints/best.pt), an adapter file
(adapter.safetensors) or a plain weight file (a merged or fully fine-tuned model); the backbone
is the one training recorded (model.pretrained=PATH on this command line overrides it). Writes
results.json, predictions.csv, plots/confusion_matrix.png, manifest.json and run.json into a new
folder, never into a training run: output_dir=DIR given here, else CONFIG's output_dir/eval-<time>
(CONFIG a run's config.yaml), else runs/<config>-eval-<time>.
"""
from __future__ import annotations

from pathlib import Path

from videopeft._lazy import lazy_module
from videopeft.config import load_config
from videopeft.engine.cli import is_main_process, split_key
from videopeft.errors import CheckpointError, ConfigError

from .parsing import (add_config_arguments, add_overwrite_argument, command_parser, find_config,
                      precheck_run, run_name_of)

engine = lazy_module("videopeft.engine.evaluate")  # torch loads when the work starts


def eval_folder(config_output_dir: str, given_on_command_line: bool
                ) -> tuple[str | None, str | None]:
    """(output_dir, parent_dir) of an evaluation: output_dir when given on its command line;
    else, for a config that names a run folder (a run's config.yaml), a new ``eval-<time>``
    folder inside it (named by the engine's main rank); else neither (the engine's
    ``runs/<config>-eval-<time>``)."""
    if given_on_command_line:
        return config_output_dir or None, None
    return None, config_output_dir or None


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = command_parser(__doc__, prog, config_keys=True)
    add_config_arguments(parser, overrides_help="checkpoint=PATH and dotted.key=value overrides")
    parser.add_argument("--checkpoint", default=None, help="same as checkpoint=PATH")
    add_overwrite_argument(parser, "when output_dir holds an earlier evaluation, move it aside to "
                                   "<output_dir>.old-<time> first; nothing is deleted")
    args = parser.parse_args(argv)
    checkpoint, overrides = split_key(args.overrides, "checkpoint")
    checkpoint = args.checkpoint or checkpoint
    if not checkpoint:
        raise ConfigError("expected checkpoint=PATH (a .pt training checkpoint, an adapter "
                          ".safetensors or a weight file)", key="checkpoint", where="command line")
    if not Path(checkpoint).exists():
        raise CheckpointError(f"{checkpoint}: checkpoint not found")
    config = find_config(args.config)
    cfg = load_config(config, overrides)
    out, parent = eval_folder(cfg.output_dir, any(o.startswith("output_dir=") for o in overrides))
    precheck_run(cfg, {cfg.eval.split: False}, out, overwrite=args.overwrite, resumable=False,
                 num_classes=cfg.model.num_classes)
    backbone = cfg.model.pretrained if any(o.startswith("model.pretrained=")
                                           for o in overrides) else None
    results = engine.evaluate(cfg, checkpoint=checkpoint, output_dir=out, parent_dir=parent,
                              run_name="eval" if parent else run_name_of(config) + "-eval",
                              backbone=backbone, overwrite=args.overwrite)
    if is_main_process():
        print(f"results: {results['output_dir']}/results.json (video top-1 "
              f"{results['video_top1']:.2f}%, top-5 {results['video_top5']:.2f}%, "
              f"{results['num_videos']} videos, {results['num_failed']} failed)")
    return 0
