"""Export a trained run or adapter for Hugging Face, or import a peft LoRA adapter.

    python tools/export.py RUN_OR_ADAPTER --to hf   OUT/   # transformers VideoMAEForVideoClassification
    python tools/export.py RUN_OR_ADAPTER --to peft OUT/   # peft LoRA adapter + OUT/base (HF backbone)
    python tools/export.py PEFT_DIR --to videopeft OUT.safetensors [--backbone HF_BASE_DIR]

`--to hf` folds LoRA and the BN head into plain weights (lora, bitfit, partial, linear, full);
`--to peft` needs a LoRA adapter. Every output is loaded back through transformers / peft and its
logits compared with videopeft's before this prints where it went.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also works from an uninstalled checkout

from videopeft.engine.cli import run_main
from videopeft.engine.export import EXPORT_TARGETS, export


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="run folder or adapter .safetensors (a peft adapter folder "
                                       "with --to videopeft)")
    parser.add_argument("--to", required=True, choices=EXPORT_TARGETS)
    parser.add_argument("out", help="output folder (a .safetensors file with --to videopeft)")
    parser.add_argument("--backbone", default=None, help="backbone weights (default: the ones "
                                                         "recorded in the adapter; the HF base "
                                                         "folder with --to videopeft)")
    args = parser.parse_args(argv)
    result = export(args.source, args.to, args.out, backbone=args.backbone)
    print(f"exported {result.method} to {result.to}: {result.path} "
          f"(max |logit diff| vs videopeft {result.max_abs_diff:.2e})")
    return 0


if __name__ == "__main__":
    run_main(main)
