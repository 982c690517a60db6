"""Result files: `<out>/<YYYY-MM-DD>-<device>-<suite>[-quick].json` and the `.md` next to it.

The JSON holds the run's meta (date, device name, torch version, threads, load, command) and every
section with its raw numbers (medians with n, min, max and values) and ratios; the Markdown is
the tables a README quotes. A `--quick` run gets a `-quick` suffix so it never overwrites a
full run of the same day.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from videopeft.io import atomic_write_text


def stem(out_dir: Path, meta: dict) -> Path:
    """The result path without suffix."""
    name = f"{meta['date']}-{meta['device']['slug']}-{meta['suite']}"
    return out_dir / (name + ("-quick" if meta["quick"] else ""))


def _finite(value: Any) -> Any:
    """NaN and infinities become null (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def header(meta: dict) -> list[str]:
    d = meta["device"]
    start, end = meta["load_average_start"], meta["load_average_end"]
    busy = (" (above the core count: other jobs shared the machine, expect noise)"
            if max(start, end) > d["cores"] else "")
    return [f"# videopeft benchmarks: {meta['suite']} suite{' (quick)' if meta['quick'] else ''}"
            f" — {meta['date']} — {d['slug']}", "",
            f"Device: {d['name']} ({d['cores']} CPU cores); torch {meta['torch']}, transformers "
            f"{meta['transformers']}, Python {meta['python']}; {meta['threads']} torch threads; "
            f"load average {start:.2f} at start, {end:.2f} at end{busy}. "
            f"Took {meta['seconds']:.0f} s. Command: `{meta['command']}`.", ""]


def write(out_dir: Path, meta: dict, sections: dict, markdown: list[str]) -> tuple[Path, Path]:
    """Write the JSON record and the Markdown tables; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    base = stem(out_dir, meta)
    json_path, md_path = base.with_suffix(".json"), base.with_suffix(".md")
    json_path.write_text(json.dumps(_finite({"meta": meta, **sections}), indent=2) + "\n")
    md_path.write_text("\n".join(header(meta) + markdown) + "\n")
    return json_path, md_path


def write_partial(out_dir: Path, meta: dict, sections: dict) -> Path:
    """The JSON record of a run still going (`meta.partial` true): what a run stopped from
    outside leaves; `write` replaces it at the end."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = stem(out_dir, meta).with_suffix(".json")
    atomic_write_text(path, json.dumps(_finite({"meta": meta | {"partial": True}, **sections}),
                                       indent=2) + "\n")
    return path
