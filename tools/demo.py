"""`videopeft demo` from a checkout: the embedded demo (`make demo`).

    python tools/demo.py --help    # usage; the code is videopeft/cli/demo.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works uninstalled too

from videopeft.cli import demo, run_main  # noqa: E402

main = demo.main  # the command itself; tests call main(argv) in-process

if __name__ == "__main__":
    run_main(main)
