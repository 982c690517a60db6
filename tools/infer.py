"""Classify one video file with a trained adapter, or with several task adapters at once.

    python tools/infer.py VIDEO --adapter RUN/adapter.safetensors [--backbone PATH] [--topk 5]
    python tools/infer.py VIDEO --adapter ssv2.safetensors --adapter k400.safetensors

Uses each adapter's stored sampling (frames, stride, size, views, fusion) and class names; the
backbone defaults to the pretrained weights recorded at training time. With several adapters
(trained on one backbone) the video is decoded once per distinct sampling and each task's top-k
is printed under its name; scores are softmax probabilities.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also works from an uninstalled checkout

from videopeft.engine.cli import run_main
from videopeft.engine.infer import MultiTaskModel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", help="video file")
    parser.add_argument("--adapter", required=True, action="append",
                        help="adapter .safetensors from a run; repeat for several tasks")
    parser.add_argument("--backbone", default=None, help="backbone weights (default: the ones "
                                                         "recorded in the adapter)")
    parser.add_argument("--topk", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    model = MultiTaskModel(args.adapter, backbone=args.backbone, device=args.device)
    tasks = model.predict([args.video], topk=args.topk)[0]
    print(f"{args.video}:")
    for task, top in tasks.items():
        indent = "    " if len(tasks) > 1 else "  "
        if len(tasks) > 1:
            print(f"  {task}:")
        width = max(len(label) for label, _ in top)
        for rank, (label, score) in enumerate(top, 1):
            print(f"{indent}{rank}. {label:<{width}}  {score:.4f}")
    return 0


if __name__ == "__main__":
    run_main(main)
