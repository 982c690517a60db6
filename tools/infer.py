"""`videopeft infer` from a checkout: classify a video with one or several task adapters.

    python tools/infer.py --help    # usage; the code is videopeft/cli/infer.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works uninstalled too

from videopeft.cli import infer, run_main  # noqa: E402

main = infer.main  # the command itself; tests call main(argv) in-process

if __name__ == "__main__":
    run_main(main)
