"""`videopeft merge` from a checkout: fold a LoRA adapter into plain backbone weights.

    python tools/merge.py --help    # usage; the code is videopeft/cli/merge.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works uninstalled too

from videopeft.cli import merge, run_main  # noqa: E402

main = merge.main  # the command itself; tests call main(argv) in-process

if __name__ == "__main__":
    run_main(main)
