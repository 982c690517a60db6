"""`videopeft train` from a checkout: fine-tune a backbone with a PEFT method.

    python tools/train.py --help    # usage; the code is videopeft/cli/train.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works uninstalled too

from videopeft.cli import train, run_main  # noqa: E402

main = train.main  # the command itself; tests call main(argv) in-process

if __name__ == "__main__":
    run_main(main)
