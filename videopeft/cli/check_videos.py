"""Probe every video of an annotation or folder and write manifest.json.

    videopeft check-videos ANNOTATION_OR_DIR [--layout ssv2] [--root VIDEOS] [--backend auto]
                           [--out PATH]
    python tools/check_videos.py ANNOTATION_OR_DIR ...     # the same, from a checkout

manifest.json lists the videos no backend can decode under their split, and the readable but
suspicious ones (one frame, wrong extension, truncated, no owner read permission) under
"warnings"; both counts are printed. Without --out it is written to manifest.json in the current
folder, or, when that exists, to the first free manifest-2.json, manifest-3.json, ... (an earlier
manifest is never replaced unless --out names it). Exit status: 0 every video decodes (warnings
allowed), 1 some video failed, 2 nothing to check or a bad argument.
"""
from __future__ import annotations

from pathlib import Path

from videopeft._lazy import lazy_module
from videopeft.constants import BACKENDS, LAYOUTS
from videopeft.data.annotations import HMDB_SPLITS

from .parsing import command_parser

check = lazy_module("videopeft.data.check")  # torch loads when the probing starts

DEFAULT_MANIFEST = "manifest.json"


def default_manifest_path() -> Path:
    """manifest.json in the current folder, or the first free manifest-N.json beside it."""
    path, n = Path(DEFAULT_MANIFEST), 1
    while path.exists():
        n += 1
        path = Path(f"{Path(DEFAULT_MANIFEST).stem}-{n}{Path(DEFAULT_MANIFEST).suffix}")
    return path


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = command_parser(__doc__, prog)
    parser.add_argument("target", help="annotation file, annotation folder, or a folder of videos")
    parser.add_argument("--layout", choices=LAYOUTS, default="",
                        help="annotation layout (default: guessed from the file name; a folder "
                             "without --layout is scanned for video files)")
    parser.add_argument("--root", default="", help="folder the annotation's paths are relative to")
    parser.add_argument("--backend", choices=BACKENDS, default="auto")
    parser.add_argument("--hmdb-split", type=int, default=1, choices=HMDB_SPLITS)
    parser.add_argument("--full", action="store_true", help="decode every frame, not 3 per video")
    parser.add_argument("--out", default=None,
                        help="where to write the manifest (default: manifest.json here, or the "
                             "first free manifest-N.json when it exists)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    jobs = check.check_jobs(args.target, args.layout, args.root, args.hmdb_split)  # no torch yet
    out = Path(args.out) if args.out else default_manifest_path()
    result = check.check_videos(args.target, layout=args.layout, root=args.root,
                                backend=args.backend, hmdb_split=args.hmdb_split, full=args.full,
                                manifest_path=out, progress=not args.no_progress, jobs=jobs)
    read = ", ".join(f"{name} {count}" for name, count in sorted(result.backends.items()))
    print(f"checked {result.checked} videos: {result.failed} failed, "
          f"{result.checked - result.failed} readable ({read or 'none'}), "
          f"{result.warned} of them with warnings")
    print(f"manifest: {result.manifest_path}")
    return 1 if result.failed else 0
