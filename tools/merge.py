"""Fold a LoRA adapter (and a BN head) into plain backbone weights: `videopeft merge`, run from a checkout.

    python tools/merge.py --help      # arguments, usage (videopeft/cli/merge.py)
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also works from an uninstalled checkout

from videopeft.cli import merge, run_main  # noqa: E402

main = merge.main  # the command itself; tests call main(argv) in-process

if __name__ == "__main__":
    run_main(main)
