"""Classify a video file with one or several task adapters: `videopeft infer`, run from a checkout.

    python tools/infer.py --help      # arguments, usage (videopeft/cli/infer.py)
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also works from an uninstalled checkout

from videopeft.cli import infer, run_main  # noqa: E402

main = infer.main  # the command itself; tests call main(argv) in-process

if __name__ == "__main__":
    run_main(main)
