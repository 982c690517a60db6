"""Classify one video file with a trained adapter.

    python tools/infer.py VIDEO --adapter RUN/adapter.safetensors [--backbone PATH] [--topk 5]

Uses the adapter's stored sampling (frames, stride, size, views, fusion) and class names; the
backbone defaults to the pretrained weights recorded at training time.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also works from an uninstalled checkout

from videopeft.engine.cli import run_main
from videopeft.engine.infer import infer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", help="video file")
    parser.add_argument("--adapter", required=True, help="adapter .safetensors from a run")
    parser.add_argument("--backbone", default=None, help="backbone weights (default: the ones "
                                                         "recorded in the adapter)")
    parser.add_argument("--topk", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    top = infer(args.video, args.adapter, backbone=args.backbone, topk=args.topk,
                device=args.device)
    width = max(len(label) for label, _ in top)
    print(f"{args.video}:")
    for rank, (label, score) in enumerate(top, 1):
        print(f"  {rank}. {label:<{width}}  {score:.4f}")
    return 0


if __name__ == "__main__":
    run_main(main)
