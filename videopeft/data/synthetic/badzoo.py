"""The bad zoo: files that exercise every failure path of the data layer, in both splits.

`bad_zoo.json` lists each file with the run-manifest record expected with backend "auto":
`expect` is "fail" (no backend decodes it: a manifest failure) or "warn" (it decodes, and
`probe_warnings` reports a problem starting with `warning`: a manifest warning); `fails_with`
names single backends known to fail a "warn" file (decord 0.6 cannot read one-frame WebM).
Truncating a WebM keeps a decodable prefix (the Matroska clusters before the cut, fewer frames
than its header's duration), whereas MP4 (index at the end) and AVI lose the whole file. The file
without read permission is readable when running as root (chmod does not restrict root): a
warning then, a failure otherwise.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from videopeft.constants import SPLITS
from videopeft.data.synthetic.encode import write_audio_only, write_video
from videopeft.data.synthetic.layouts import LAYOUT_CONTAINERS, LayoutItem, new_item
from videopeft.data.synthetic.draw import render
from videopeft.data.synthetic.specs import MotionClass, VideoSpec

__all__ = ["ZOO_KINDS", "write_zoo"]

ZOO_KINDS = ("zero_byte", "truncated", "garbage", "missing", "one_frame", "audio_only",
             "wrong_extension", "no_permission")


def write_zoo(layout: str, root: Path, classes: list[MotionClass],
              seed: int) -> tuple[list[LayoutItem], list[dict]]:
    """Write the bad-video files (class 0) for both splits; returns their items and the zoo list
    of {kind, split, path, expect, why, warning, fails_with}."""
    rng = np.random.default_rng(seed + 7919)
    container = LAYOUT_CONTAINERS[layout]
    other = "mp4" if container != "mp4" else "webm"
    good = render(VideoSpec(0, 12, 12, 32, 56, seed))
    items, zoo = [], []
    for split in SPLITS:
        for n, kind in enumerate(ZOO_KINDS):
            stem = f"zoo_{kind}_{split}"
            if layout == "ssv2":  # SSv2 ids are numbers
                stem = str(900000 + 100 * (split == "val") + n)
            item = new_item(layout, classes, 0, split, stem, rng)
            path = root / item.rel
            path.parent.mkdir(parents=True, exist_ok=True)
            expect, why, warning = _make_zoo_file(kind, path, good, container, other, rng)
            fails_with = ["decord"] if kind == "one_frame" and container == "webm" else []
            items.append(item)
            zoo.append({"kind": kind, "split": split, "path": str(path), "expect": expect,
                        "why": why, "warning": warning, "fails_with": fails_with})
    return items, zoo


def _make_zoo_file(kind: str, path: Path, good: np.ndarray, container: str, other: str,
                   rng: np.random.Generator) -> tuple[str, str, str]:
    """Write one bad-zoo file; returns (expected outcome, reason, start of the expected warning)."""
    if kind == "zero_byte":
        path.write_bytes(b"")
        return "fail", "empty file", ""
    if kind == "truncated":
        write_video(path, good, 12, container)
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2])
        if container == "webm":
            return ("warn", "WebM cut in half: the clusters before the cut still decode",
                    f"truncated: header says {len(good)} frames")
        return "fail", f"{container} cut in half: its index is lost", ""
    if kind == "garbage":
        path.write_bytes(rng.bytes(4096))
        return "fail", "random bytes", ""
    if kind == "missing":
        return "fail", "listed in the annotation, absent on disk", ""
    if kind == "one_frame":
        write_video(path, good[:1], 12, container)
        return "warn", "a valid one-frame video (samplers repeat it)", "only 1 frame"
    if kind == "audio_only":
        write_audio_only(path, container)
        return "fail", "audio stream only, no video stream", ""
    if kind == "wrong_extension":
        write_video(path, good, 12, other)
        inside = "matroska" if other == "webm" else other
        return ("warn", f"{other} content under a .{container} name (decoders probe content)",
                f"extension .{container} but container is {inside}")
    write_video(path, good, 12, container)  # no_permission
    os.chmod(path, 0)
    if os.geteuid() == 0:
        return ("warn", "chmod 000, but root ignores file permissions",
                "no read permission for its owner")
    return "fail", "chmod 000: not readable", ""
