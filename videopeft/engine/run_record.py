"""run.json, the reproducibility record of a run folder: which code, libraries, device, command
line and data made the run.

    {"videopeft": {"version", "commit", "dirty"},    # commit, dirty: null outside a checkout
     "python": "3.11.7", "platform": "Linux-...", "libraries": {"torch": "2.14.1", ...},
     "device": "cpu", "device_name": "AMD EPYC ...", "world_size": 1,
     "argv": [...], "cwd": "...",                      # the exact command line and where it ran
     "started": ISO time, "ended": ISO time or null, "finished": bool,
     "error": null, or the one-line error a run stopped on,
     "splits": {split: {"annotation": {file: sha256}, "videos": {"listed", "present", "failed"},
                        "decodes": {backend: n}}}}

`start_run_record` writes it when the run starts (the main rank; everything known then, so a run
that dies keeps its record), `finish_run_record` when it ends: failed videos from the merged
manifest, and the decode counts by backend that every rank's DataLoader workers kept through the
manifest spool (`Manifest.count_decode`: successful decodes, not distinct videos: a training video
decoded in 30 epochs counts 30 times). A resumed run rewrites the record with its own command
line; the counts, kept in the run folder's spool, cover every attempt.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from videopeft.config import DataConfig
from videopeft.data.annotations import annotation_files, read_annotations
from videopeft.data.manifest import Manifest, sum_decode_counts
from videopeft.errors import ConfigError, one_line
from videopeft.io import atomic_write_json, sha256_file

from . import distributed as dist
from .machine import device_name, software

__all__ = ["RUN_RECORD", "RUN_RECORD_KEYS", "run_record", "split_facts", "start_run_record",
           "finish_run_record"]

RUN_RECORD = "run.json"  # its name in the run folder (results.json's "run_record")
RUN_RECORD_KEYS = ("videopeft", "python", "platform", "libraries", "device", "device_name",
                   "world_size", "argv", "cwd", "started", "ended", "finished", "error",
                   "splits")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def split_facts(data: DataConfig, split: str) -> dict[str, Any]:
    """The annotation files of `split` with their sha256, and the videos it lists / that exist.

    An annotation that cannot be read (the run then stops on it) is recorded as its error.
    """
    files = annotation_files(data.layout, data.root, data.annotation, split, data.hmdb_split)
    facts: dict[str, Any] = {"annotation": {str(f): sha256_file(f) for f in files}}
    try:
        records, _ = read_annotations(data.layout, data.root, data.annotation, split,
                                      data.hmdb_split)
    except (ConfigError, OSError) as err:
        facts["error"] = str(err) if isinstance(err, ConfigError) else one_line(err)
        return facts
    present = sum(os.path.isfile(r.path) for r in records)
    facts["videos"] = {"listed": len(records), "present": present, "failed": 0}
    facts["decodes"] = {}
    return facts


def run_record(data: DataConfig, splits: Sequence[str], info: dist.DistInfo) -> dict[str, Any]:
    """Everything known when a run starts: code, libraries, device, command line, each split."""
    return {**software(), "device": str(info.device), "device_name": device_name(info.device),
            "world_size": info.world_size, "argv": list(sys.argv), "cwd": os.getcwd(),
            "started": _now(), "ended": None, "finished": False, "error": None,
            "splits": {split: split_facts(data, split) for split in dict.fromkeys(splits)}}


def start_run_record(out_dir: Path, data: DataConfig, splits: Sequence[str],
                     info: dist.DistInfo) -> dict[str, Any] | None:
    """Write run.json for a run that starts (main rank; returns the record, None elsewhere)."""
    if not info.is_main:
        return None
    record = run_record(data, splits, info)
    atomic_write_json(out_dir / RUN_RECORD, record)
    return record


def finish_run_record(out_dir: Path, record: dict[str, Any] | None, manifest: Manifest,
                      failures: dict[str, list], *, finished: bool, error: str | None = None
                      ) -> None:
    """Add each split's failed videos (`failures`: manifest.json's content) and decode counts,
    the end time, whether the run finished and the error it stopped on, and rewrite run.json.

    Call it on every rank after a finished run (the decode counts are gathered, a collective);
    after a failure only the main rank calls it, with the counts it can read itself.
    """
    parts = dist.gather_objects(manifest.decode_records()) if finished else \
        [manifest.decode_records()]
    if record is None:
        return
    by_file: dict[str, dict] = {}
    for part in parts:  # ranks that share the run folder read the same files: keyed by name
        by_file.update(part)
    decodes = sum_decode_counts(by_file)
    for split, facts in record["splits"].items():
        if "videos" in facts:
            facts["videos"]["failed"] = len(failures.get(split, []))
            facts["decodes"] = decodes.get(split, {})
    record.update(ended=_now(), finished=finished, error=None if finished else error)
    atomic_write_json(out_dir / RUN_RECORD, record)
