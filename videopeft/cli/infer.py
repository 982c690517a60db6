"""Classify a video file with one trained adapter, or several task adapters at once.

    videopeft infer VIDEO --adapter RUN/adapter.safetensors [--backbone PATH] [--topk 5]
    videopeft infer VIDEO --adapter ssv2.safetensors --adapter k400.safetensors
    python tools/infer.py VIDEO --adapter ...              # the same, from a checkout

Uses each adapter's stored sampling (frames, stride, size, views, fusion) and class names; the
backbone defaults to the pretrained weights recorded at training time. With several adapters
(trained on one backbone) the video is decoded once per distinct sampling and each task's top-k
is printed under its name; scores are softmax probabilities.
"""
from __future__ import annotations

from videopeft._lazy import lazy_module

from .parsing import command_parser

engine = lazy_module("videopeft.engine.infer")  # torch loads when the work starts


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = command_parser(__doc__, prog)
    parser.add_argument("video", help="video file")
    parser.add_argument("--adapter", required=True, action="append",
                        help="adapter .safetensors from a run; repeat for several tasks")
    parser.add_argument("--backbone", default=None, help="backbone weights (default: the ones "
                                                         "recorded in the adapter)")
    parser.add_argument("--topk", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    model = engine.MultiTaskModel(args.adapter, backbone=args.backbone, device=args.device)
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
