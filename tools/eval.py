"""Evaluate a checkpoint with the config's multi-view protocol: `videopeft eval`, run from a checkout.

    python tools/eval.py --help      # arguments, usage (videopeft/cli/evaluate.py)
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also works from an uninstalled checkout

from videopeft.cli import evaluate, run_main  # noqa: E402

main = evaluate.main  # the command itself; tests call main(argv) in-process

if __name__ == "__main__":
    run_main(main)
