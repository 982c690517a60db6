"""Fold a LoRA adapter (and a BN head) into the backbone and write plain VideoViT weights.

    python tools/merge.py --adapter RUN/adapter.safetensors --out merged.pth [--backbone PATH]

The written file loads with videopeft.load_pretrained (or tools/eval.py checkpoint=merged.pth);
it is verified against the unmerged adapter model before this prints its path.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also works from an uninstalled checkout

from videopeft.engine.cli import run_main
from videopeft.engine.infer import merge_adapter


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", required=True, help="adapter .safetensors (lora, bitfit, "
                                                         "partial, linear or full)")
    parser.add_argument("--out", required=True, help="output weights (.pth or .safetensors)")
    parser.add_argument("--backbone", default=None, help="backbone weights (default: the ones "
                                                         "recorded in the adapter)")
    args = parser.parse_args(argv)
    result = merge_adapter(args.adapter, args.out, backbone=args.backbone)
    print(f"merged {result.method} ({result.merged_layers} LoRA layers): {result.path} "
          f"(max |logit diff| vs adapter model {result.max_abs_diff:.2e})")
    return 0


if __name__ == "__main__":
    run_main(main)
