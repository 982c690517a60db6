"""`videopeft make-synthetic` from a checkout: write a synthetic benchmark as videos.

    python tools/make_synthetic.py --help    # usage; the code is videopeft/cli/make_synthetic.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works uninstalled too

from videopeft.cli import make_synthetic, run_main  # noqa: E402

main = make_synthetic.main  # the command itself; tests call main(argv) in-process

if __name__ == "__main__":
    run_main(main)
