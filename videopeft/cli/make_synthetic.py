"""Write a synthetic benchmark as encoded videos in a dataset's layout.

The benchmark is motion (object motions) or stripes (the orientation that dominates over time).

    videopeft make-synthetic --layout {ssv2,hmdb51,kinetics,list} --out DIR
                             [--benchmark {motion,stripes} --videos N --seed S --size PX
                              --frames-range MIN MAX --bad-zoo]
    python tools/make_synthetic.py --layout ... --out ...  # the same, from a checkout
"""
from __future__ import annotations

from videopeft._lazy import lazy_module
from videopeft.constants import LAYOUTS

from .parsing import command_parser

synthetic = lazy_module("videopeft.data.synthetic")  # numpy and PyAV load with the parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = command_parser(__doc__, prog)
    parser.add_argument("--layout", choices=LAYOUTS, required=True)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--benchmark", choices=sorted(synthetic.BENCHMARKS), default="motion",
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
    info = synthetic.write_synthetic(args.out, args.layout, videos=args.videos, seed=args.seed,
                                     num_classes=args.num_classes, size=args.size,
                                     frames_range=tuple(args.frames_range), bad_zoo=args.bad_zoo,
                                     progress=not args.no_progress, benchmark=args.benchmark)
    print(f"wrote {len(info.videos)} {args.layout} videos ({len(info.zoo)} bad-zoo files)")
    print(f"data.layout={info.layout} data.root={info.root} data.annotation={info.annotation}")
    return 0
