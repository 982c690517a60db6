"""Write a synthetic benchmark (motion or stripes) as encoded videos in a dataset's on-disk layout.

    python tools/make_synthetic.py --layout {ssv2,hmdb51,kinetics,list} --out DIR
                                   [--benchmark {motion,stripes} --videos N --seed S --size PX
                                    --frames-range MIN MAX --bad-zoo]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works uninstalled too

from videopeft.constants import LAYOUTS  # noqa: E402
from videopeft.data.synthetic import BENCHMARKS, write_synthetic  # noqa: E402
from videopeft.engine.cli import run_main  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", choices=LAYOUTS, required=True)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--benchmark", choices=sorted(BENCHMARKS), default="motion",
                        help="motion: object motions; stripes: the orientation that dominates "
                             "over time")
    parser.add_argument("--videos", type=int, default=200, help="number of good videos")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--size", type=int, default=48, help="frame height in pixels (max)")
    parser.add_argument("--frames-range", type=int, nargs=2, default=(8, 40),
                        metavar=("MIN", "MAX"), help="video length range in frames")
    parser.add_argument("--bad-zoo", action="store_true", help="add undecodable and odd files")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    info = write_synthetic(args.out, args.layout, videos=args.videos, seed=args.seed,
                           num_classes=args.num_classes, size=args.size,
                           frames_range=tuple(args.frames_range), bad_zoo=args.bad_zoo,
                           progress=not args.no_progress, benchmark=args.benchmark)
    print(f"wrote {len(info.videos)} {args.layout} videos ({len(info.zoo)} bad-zoo files)")
    print(f"data.layout={info.layout} data.root={info.root} data.annotation={info.annotation}")
    return 0


if __name__ == "__main__":
    run_main(main)
