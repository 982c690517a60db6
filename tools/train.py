"""Fine-tune a VideoMAE backbone with a PEFT method: `videopeft train`, run from a checkout.

    python tools/train.py --help      # arguments, usage (videopeft/cli/train.py)
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also works from an uninstalled checkout

from videopeft.cli import train, run_main  # noqa: E402

main = train.main  # the command itself; tests call main(argv) in-process

if __name__ == "__main__":
    run_main(main)
