"""The embedded demo: synthetic data -> VideoMAE pre-training -> PEFT fine-tuning -> frame study ->
REPORT.md, resumable (finished steps are skipped).

    python tools/demo.py [configs/demo/demo.yaml] [demo.scale=4] [key.sub=value ...]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also works from an uninstalled checkout

from videopeft.engine.cli import run_main  # noqa: E402
from videopeft.studies.demo import run_demo  # noqa: E402

DEFAULT = Path(__file__).resolve().parents[1] / "configs" / "demo" / "demo.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("args", nargs="*", metavar="[CONFIG.yaml] key=value",
                        help=f"demo config (default {DEFAULT.relative_to(DEFAULT.parents[2])}), "
                             "then dotted.key=value overrides (demo.* for the demo's own keys)")
    args = parser.parse_args(argv).args
    config = args.pop(0) if args and "=" not in args[0] else str(DEFAULT)
    report = run_demo(config, args)
    print(f"report: {report}")
    print(f"figures: {report.parent / 'report'}/*.png")
    return 0


if __name__ == "__main__":
    run_main(main)
