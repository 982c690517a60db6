"""`videopeft eval` from a checkout: evaluate a checkpoint (multi-view protocol).

    python tools/eval.py --help    # usage; the code is videopeft/cli/evaluate.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works uninstalled too

from videopeft.cli import evaluate, run_main  # noqa: E402

main = evaluate.main  # the command itself; tests call main(argv) in-process

if __name__ == "__main__":
    run_main(main)
