"""`videopeft frame-study` from a checkout: accuracy vs number of frames, per PEFT method.

    python tools/frame_study.py --help    # usage; the code is videopeft/cli/frame_study.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works uninstalled too

from videopeft.cli import frame_study, run_main  # noqa: E402

main = frame_study.main  # the command itself; tests call main(argv) in-process

if __name__ == "__main__":
    run_main(main)
