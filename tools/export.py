"""`videopeft export` from a checkout: export for Hugging Face, or import a peft LoRA.

    python tools/export.py --help    # usage; the code is videopeft/cli/export.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works uninstalled too

from videopeft.cli import export, run_main  # noqa: E402

main = export.main  # the command itself; tests call main(argv) in-process

if __name__ == "__main__":
    run_main(main)
