"""Write a synthetic benchmark as encoded videos in a dataset's layout.

The benchmark is motion (object motions) or stripes (the orientation that dominates over time).
A profile writes them as a real dataset's files are: ssv2-240p = VP9 WebM, 427x240, 12 fps, 4 s;
kinetics-320p = H.264 (High profile, B-frames, CABAC) MP4, 568x320, 30 fps, 10 s, a keyframe
every 250 frames (exact encoder settings: videopeft/data/synthetic/profiles.py).

    videopeft make-synthetic --layout {ssv2,hmdb51,kinetics,list} --out DIR
                             [--benchmark {motion,stripes} --videos N --seed S --size PX
                              --frames-range MIN MAX --bad-zoo --workers N]
    videopeft make-synthetic --profile {ssv2-240p,kinetics-320p} --out DIR [--seconds S] ...
    python tools/make_synthetic.py --layout ... --out ...  # the same, from a checkout
"""
from __future__ import annotations

from videopeft._lazy import lazy_module
from videopeft.constants import LAYOUTS
from videopeft.errors import ConfigError

from .parsing import command_parser

synthetic = lazy_module("videopeft.data.synthetic")  # numpy and PyAV load with the parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = command_parser(__doc__, prog)
    parser.add_argument("--layout", choices=LAYOUTS, default=None,
                        help="dataset layout (required without --profile; default: the "
                             "profile's own)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--benchmark", choices=sorted(synthetic.BENCHMARKS), default="motion",
                        help="motion: object motions; stripes: the orientation that dominates "
                             "over time")
    parser.add_argument("--profile", choices=sorted(synthetic.PROFILES), default="",
                        help="write the videos at a real dataset's size, frame rate, length and "
                             "encoding (fixes --size and --frames-range)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="with --profile: video length in seconds (default: the profile's)")
    parser.add_argument("--videos", type=int, default=200, help="number of good videos")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--size", type=int, default=None,
                        help=f"frame height in pixels (max; default {synthetic.DEFAULT_SIZE})")
    parser.add_argument("--frames-range", type=int, nargs=2, default=None,
                        metavar=("MIN", "MAX"), help="video length range in frames (default "
                        f"{' '.join(map(str, synthetic.DEFAULT_FRAMES_RANGE))})")
    parser.add_argument("--bad-zoo", action="store_true", help="add undecodable and odd files")
    parser.add_argument("--workers", type=int, default=1,
                        help="videos rendered and encoded at once, in child processes")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    layout = args.layout or (synthetic.PROFILES[args.profile].layout if args.profile else None)
    if layout is None:
        raise ConfigError("expected --layout (or --profile, which names its layout)",
                          where="command line")
    info = synthetic.write_synthetic(
        args.out, layout, videos=args.videos, seed=args.seed, num_classes=args.num_classes,
        size=args.size, frames_range=tuple(args.frames_range) if args.frames_range else None,
        bad_zoo=args.bad_zoo, progress=not args.no_progress, benchmark=args.benchmark,
        profile=args.profile, seconds=args.seconds, workers=args.workers)
    print(f"wrote {len(info.videos)} {layout} videos ({len(info.zoo)} bad-zoo files)"
          + (f", profile {info.profile}: {info.encoding}" if info.profile else ""))
    print(f"data.layout={info.layout} data.root={info.root} data.annotation={info.annotation}")
    return 0
