"""Export a run or adapter for Hugging Face (transformers, peft), or import a peft LoRA.

    videopeft export RUN_OR_ADAPTER --to hf   OUT/   # transformers VideoMAEForVideoClassification
    videopeft export RUN_OR_ADAPTER --to peft OUT/   # peft LoRA adapter + OUT/base (HF backbone)
    videopeft export PEFT_DIR --to videopeft OUT.safetensors [--backbone HF_BASE_DIR]
    python tools/export.py ...                       # the same, from a checkout

`--to hf` folds LoRA and the BN head into plain weights (lora, bitfit, partial, linear, full);
`--to peft` needs a LoRA adapter. Every output is loaded back through transformers / peft and its
logits compared with videopeft's before this prints where it went.
"""
from __future__ import annotations

from videopeft._lazy import lazy_module
from videopeft.constants import EXPORT_TARGETS

from .parsing import command_parser

engine = lazy_module("videopeft.engine.export")  # torch loads when the work starts


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = command_parser(__doc__, prog)
    parser.add_argument("source", help="run folder or adapter .safetensors (a peft adapter folder "
                                       "with --to videopeft)")
    parser.add_argument("--to", required=True, choices=EXPORT_TARGETS)
    parser.add_argument("out", help="output folder (a .safetensors file with --to videopeft)")
    parser.add_argument("--backbone", default=None, help="backbone weights (default: the ones "
                                                         "recorded in the adapter; the HF base "
                                                         "folder with --to videopeft)")
    args = parser.parse_args(argv)
    result = engine.export(args.source, args.to, args.out, backbone=args.backbone)
    print(f"exported {result.method} to {result.to}: {result.path} "
          f"(max |logit diff| vs videopeft {result.max_abs_diff:.2e})")
    return 0
