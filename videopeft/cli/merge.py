"""Fold a LoRA adapter (and a BN head) into plain backbone weights.

    videopeft merge --adapter RUN/adapter.safetensors --out merged.pth [--backbone PATH]
    python tools/merge.py --adapter ... --out ...          # the same, from a checkout

The written file loads with videopeft.load_pretrained (or `videopeft eval CONFIG
checkpoint=merged.pth`); it is verified against the unmerged adapter model before this prints
its path.
"""
from __future__ import annotations

from videopeft._lazy import lazy_module

from .parsing import command_parser

engine = lazy_module("videopeft.engine.infer")  # torch loads when the work starts


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = command_parser(__doc__, prog)
    parser.add_argument("--adapter", required=True, help="adapter .safetensors (lora, bitfit, "
                                                         "partial, linear or full)")
    parser.add_argument("--out", required=True, help="output weights (.pth or .safetensors)")
    parser.add_argument("--backbone", default=None, help="backbone weights (default: the ones "
                                                         "recorded in the adapter)")
    args = parser.parse_args(argv)
    result = engine.merge_adapter(args.adapter, args.out, backbone=args.backbone)
    print(f"merged {result.method} ({result.merged_layers} LoRA layers): {result.path} "
          f"(max |logit diff| vs adapter model {result.max_abs_diff:.2e})")
    return 0
