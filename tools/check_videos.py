"""`videopeft check-videos` from a checkout: probe every video, write manifest.json.

    python tools/check_videos.py --help    # usage; the code is videopeft/cli/check_videos.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works uninstalled too

from videopeft.cli import check_videos, run_main  # noqa: E402

main = check_videos.main  # the command itself; tests call main(argv) in-process

if __name__ == "__main__":
    run_main(main)
