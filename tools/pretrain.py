"""`videopeft pretrain` from a checkout: VideoMAE masked pre-training of a backbone.

    python tools/pretrain.py --help    # usage; the code is videopeft/cli/pretrain.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works uninstalled too

from videopeft.cli import pretrain, run_main  # noqa: E402

main = pretrain.main  # the command itself; tests call main(argv) in-process

if __name__ == "__main__":
    run_main(main)
