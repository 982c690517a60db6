"""Fine-tune a VideoMAE backbone with a PEFT method.

    python tools/train.py CONFIG.yaml [key.sub=value ...]
    torchrun --nproc_per_node=N tools/train.py CONFIG.yaml [key.sub=value ...]

Writes the run folder (README.md, "What a run writes") and prints where it is.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also works from an uninstalled checkout

from videopeft.config import load_config
from videopeft.engine.builder import run_name_of
from videopeft.engine.cli import is_main_process, run_main
from videopeft.engine.train import train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="YAML config, e.g. configs/ssv2/adaptmlp.yaml")
    parser.add_argument("overrides", nargs="*", help="dotted.key=value overrides")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    results = train(cfg, run_name=run_name_of(args.config))
    if is_main_process():
        print(f"run: {results['output_dir']}")
        print(f"results: {results['output_dir']}/results.json (video top-1 "
              f"{results['video_top1']:.2f}%, top-5 {results['video_top5']:.2f}%)")
        print(f"adapter: {results['exported']}")
    return 0


if __name__ == "__main__":
    run_main(main)
