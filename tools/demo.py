"""The embedded demo (`make demo`): `videopeft demo`, run from a checkout.

    python tools/demo.py --help      # arguments, usage (videopeft/cli/demo.py)
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also works from an uninstalled checkout

from videopeft.cli import demo, run_main  # noqa: E402

main = demo.main  # the command itself; tests call main(argv) in-process

if __name__ == "__main__":
    run_main(main)
