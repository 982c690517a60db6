"""VideoMAE masked pre-training of a backbone on the training videos (labels unused).

    python tools/pretrain.py CONFIG.yaml [key.sub=value ...]
    torchrun --nproc_per_node=N tools/pretrain.py CONFIG.yaml

Writes RUN/checkpoints/pretrain.pth ({'model': state_dict}, official pre-train key layout); pass it
to fine-tuning as model.pretrained=PATH.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also works from an uninstalled checkout

from videopeft.config import load_config
from videopeft.engine.builder import run_name_of
from videopeft.engine.cli import is_main_process, run_main
from videopeft.engine.pretrain import pretrain


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="YAML config, e.g. configs/synthetic/pretrain.yaml")
    parser.add_argument("overrides", nargs="*", help="dotted.key=value overrides")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    path = pretrain(cfg, run_name=run_name_of(args.config))
    if is_main_process():
        print(f"pretrained weights: {path}")
    return 0


if __name__ == "__main__":
    run_main(main)
