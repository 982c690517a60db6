"""Evaluate a checkpoint with the config's multi-view protocol (views, fusion) on eval.split.

    python tools/eval.py CONFIG.yaml checkpoint=PATH [key.sub=value ...]
    torchrun --nproc_per_node=N tools/eval.py CONFIG.yaml checkpoint=PATH

PATH is a training checkpoint (RUN/checkpoints/best.pt), an adapter file (adapter.safetensors) or
a plain weight file (a merged or fully fine-tuned model). Writes results.json, predictions.csv,
plots/confusion_matrix.png and manifest.json into output_dir (default runs/<config>-eval-<time>).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also works from an uninstalled checkout

from videopeft.config import load_config
from videopeft.engine.builder import run_name_of
from videopeft.engine.cli import is_main_process, run_main, split_key
from videopeft.engine.evaluate import evaluate
from videopeft.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="YAML config the model was trained with")
    parser.add_argument("overrides", nargs="*", help="checkpoint=PATH and dotted.key=value overrides")
    parser.add_argument("--checkpoint", default=None, help="same as checkpoint=PATH")
    args = parser.parse_args(argv)
    checkpoint, overrides = split_key(args.overrides, "checkpoint")
    checkpoint = args.checkpoint or checkpoint
    if not checkpoint:
        raise ConfigError("expected checkpoint=PATH (a .pt training checkpoint, an adapter "
                          ".safetensors or a weight file)", key="checkpoint", where="command line")
    cfg = load_config(args.config, overrides)
    results = evaluate(cfg, checkpoint=checkpoint, run_name=run_name_of(args.config) + "-eval")
    if is_main_process():
        print(f"results: {results['output_dir']}/results.json (video top-1 "
              f"{results['video_top1']:.2f}%, top-5 {results['video_top5']:.2f}%, "
              f"{results['num_videos']} videos, {results['num_failed']} failed)")
    return 0


if __name__ == "__main__":
    run_main(main)
