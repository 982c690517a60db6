"""Write a synthetic benchmark as encoded videos: `videopeft make-synthetic`, run from a checkout.

    python tools/make_synthetic.py --help      # arguments, usage (videopeft/cli/make_synthetic.py)
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also works from an uninstalled checkout

from videopeft.cli import make_synthetic, run_main  # noqa: E402

main = make_synthetic.main  # the command itself; tests call main(argv) in-process

if __name__ == "__main__":
    run_main(main)
