"""The run manifest: videos that failed to decode, with the backends tried and their errors.

DataLoader workers are separate processes and cannot change the parent's objects, so a Manifest
is backed by a *spool directory*: `add()` appends one JSON line to `<spool>/<host>-<pid>.jsonl`
(one file per process, one `write` per record, so concurrent workers and DDP ranks, even on
several hosts sharing the folder, never interleave), and `entries`
reads and merges every file there, keeping the first record per (split, path). The object itself
only holds the directory's name, so it pickles into workers under fork and spawn alike.

`Manifest()` spools into a private temporary directory, removed when the creating process drops
the object; `Manifest(spool_dir)` uses (and keeps) a directory of your choice, e.g. inside a run's
output folder. `write(path)` produces manifest.json: `{split: [{path, backend, error}, ...]}`.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import weakref
from pathlib import Path

__all__ = ["Manifest"]

_log = logging.getLogger(__name__)


def _remove_spool(spool: str, owner_pid: int) -> None:
    """Delete a private spool directory, but only from the process that created it."""
    if os.getpid() == owner_pid:
        shutil.rmtree(spool, ignore_errors=True)


class Manifest:
    """Failed videos per split, collected from any process through a spool directory."""

    def __init__(self, spool_dir: str | os.PathLike | None = None) -> None:
        if spool_dir is None:
            self.spool_dir = tempfile.mkdtemp(prefix="videopeft-manifest-")
            weakref.finalize(self, _remove_spool, self.spool_dir, os.getpid())
        else:
            self.spool_dir = os.fspath(spool_dir)
            os.makedirs(self.spool_dir, exist_ok=True)
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        return {"spool_dir": self.spool_dir}  # no lock, no finalizer: workers never delete

    def __setstate__(self, state: dict) -> None:
        self.spool_dir = state["spool_dir"]
        self._lock = threading.Lock()

    def add(self, split: str, path: str, backend: str, error: str) -> None:
        """Record that `path` (in `split`) failed with `backend`; safe from any worker process."""
        record = {"split": split, "path": str(path), "backend": backend, "error": str(error)}
        line = (json.dumps(record) + "\n").encode()
        target = os.path.join(self.spool_dir, f"{socket.gethostname()}-{os.getpid()}.jsonl")
        with self._lock:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    @property
    def entries(self) -> list[dict]:
        """Every recorded failure, one per (split, path), sorted by split then path."""
        seen: dict[tuple[str, str], dict] = {}
        for spool_file in sorted(Path(self.spool_dir).glob("*.jsonl")):
            for line in spool_file.read_text().splitlines():
                if not line.strip():
                    continue
                record = json.loads(line)
                seen.setdefault((record["split"], record["path"]), record)
        return [seen[key] for key in sorted(seen)]

    def failed(self, split: str) -> list[str]:
        """Paths of the videos of `split` that failed, sorted."""
        return [e["path"] for e in self.entries if e["split"] == split]

    def to_dict(self) -> dict[str, list[dict]]:
        """The manifest.json content: {split: [{path, backend, error}]}."""
        out: dict[str, list[dict]] = {}
        for e in self.entries:
            out.setdefault(e["split"], []).append(
                {"path": e["path"], "backend": e["backend"], "error": e["error"]})
        return out

    def write(self, path: str | os.PathLike) -> Path:
        """Write manifest.json atomically (temp file, then rename); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        os.replace(tmp, path)
        _log.info("manifest: %d failed video(s) written to %s", len(self.entries), path)
        return path
