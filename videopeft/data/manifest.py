"""The run manifest: videos that failed to decode, and videos that decoded but look suspicious.

Two kinds of record:

* a *failure* (`add`): no backend could decode the video; training drew another one, evaluation
  counted it in ``num_failed``. `entries`, `failed(split)` and the split keys of manifest.json
  hold failures only.
* a *warning* (`warn`): the video decoded and was used, but `probe_warnings` found something
  wrong with the file (one frame only, extension vs container, truncated, no read permission
  for its owner). `warning_entries` and `warned(split)` hold them. A failure of the same
  (split, path) supersedes a warning, so every video has at most one record.

DataLoader workers are separate processes and cannot change the parent's objects, so a Manifest
is backed by a *spool directory*: `add()` appends one JSON line to `<spool>/<host>-<pid>.jsonl`
(one file per process, one `write` per record, so concurrent workers and DDP ranks, even on
several hosts sharing the folder, never interleave), and `entries`
reads and merges every file there, keeping the first record per (split, path). The object itself
only holds the directory's name, so it pickles into workers under fork and spawn alike.

Decode counts (`count_decode`): how many successful decodes of each split each backend made.
Every process that decodes keeps its totals in its own spool file
`<host>-<pid>-<token>.decodes.json`, rewritten in place on each count (not appended: a long run
decodes millions of clips); `decode_records()` reads them all back, and run.json sums them.

`Manifest()` spools into a private temporary directory, removed when the creating process drops
the object; `Manifest(spool_dir)` uses (and keeps) a directory of your choice, e.g. inside a run's
output folder. `write(path)` produces manifest.json (`to_dict()`):

    {split: [{path, backend, error}, ...],                        # failures, as before
     "warnings": [{split, path, backend, problem}, ...]}          # only when there are any

`"warnings"` is one flat list (one record per file, sorted by path; a file warned in several
splits is listed under the first) so that a merge that treats every top-level key as a split
and keys rows by "path" (the engine's cross-rank `write_manifest`) keeps it intact. A clean run
therefore still writes `{}`; "warnings" is a reserved name, never a split.
"""
from __future__ import annotations

import json
import os
import logging
import shutil
import socket
import tempfile
import threading
import uuid
import weakref
from pathlib import Path

from videopeft.io import atomic_write_json

__all__ = ["Manifest", "WARNINGS_KEY", "sum_decode_counts"]

WARNINGS_KEY = "warnings"  # manifest.json's key for the warning list (never a split name)
_DECODES_SUFFIX = ".decodes.json"  # a process's decode counts in the spool

_log = logging.getLogger(__name__)


def _remove_spool(spool: str, owner_pid: int) -> None:
    """Delete a private spool directory, but only from the process that created it."""
    if os.getpid() == owner_pid:
        shutil.rmtree(spool, ignore_errors=True)


class _DecodeCounter:
    """One process's decode counts {split: {backend: n}}, mirrored in its own spool file."""

    def __init__(self, spool_dir: str) -> None:
        self.pid = os.getpid()
        self.counts: dict[str, dict[str, int]] = {}
        name = f"{socket.gethostname()}-{self.pid}-{uuid.uuid4().hex[:8]}{_DECODES_SUFFIX}"
        self._fd = os.open(os.path.join(spool_dir, name), os.O_WRONLY | os.O_CREAT, 0o644)
        weakref.finalize(self, os.close, self._fd)

    def add(self, split: str, backend: str) -> None:
        per_backend = self.counts.setdefault(split, {})
        per_backend[backend] = per_backend.get(backend, 0) + 1
        data = json.dumps(self.counts).encode()
        os.pwrite(self._fd, data, 0)  # the file holds the totals so far, whenever it is read
        os.ftruncate(self._fd, len(data))


def sum_decode_counts(records: dict[str, dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    """{split: {backend: n}} summed over `decode_records()` (one entry per counting process)."""
    total: dict[str, dict[str, int]] = {}
    for counts in records.values():
        for split, per_backend in counts.items():
            into = total.setdefault(split, {})
            for backend, n in per_backend.items():
                into[backend] = into.get(backend, 0) + n
    return {split: dict(sorted(b.items())) for split, b in sorted(total.items())}


class Manifest:
    """Failed and suspicious videos per split, collected from any process through a spool."""

    def __init__(self, spool_dir: str | os.PathLike | None = None) -> None:
        if spool_dir is None:
            self.spool_dir = tempfile.mkdtemp(prefix="videopeft-manifest-")
            weakref.finalize(self, _remove_spool, self.spool_dir, os.getpid())
        else:
            self.spool_dir = os.fspath(spool_dir)
            os.makedirs(self.spool_dir, exist_ok=True)
        self._lock = threading.Lock()
        self._decodes: _DecodeCounter | None = None
        self._counting_off = -1  # the pid of a process whose counts could not be written

    def __getstate__(self) -> dict:
        return {"spool_dir": self.spool_dir}  # no lock, no finalizer: workers never delete

    def __setstate__(self, state: dict) -> None:
        self.spool_dir = state["spool_dir"]
        self._lock = threading.Lock()
        self._decodes, self._counting_off = None, -1

    def add(self, split: str, path: str, backend: str, error: str) -> None:
        """Record that `path` (in `split`) failed with `backend`; safe from any worker process."""
        self._append({"split": self._split(split), "path": str(path), "backend": backend,
                      "error": str(error)})

    def warn(self, split: str, path: str, backend: str, problem: str) -> None:
        """Record that `path` (in `split`) decoded with `backend` but `problem` was found."""
        self._append({"kind": "warning", "split": self._split(split), "path": str(path),
                      "backend": backend, "problem": str(problem)})

    def count_decode(self, split: str, backend: str) -> None:
        """Count one successful decode of a `split` video by `backend`; safe from any process."""
        pid = os.getpid()
        with self._lock:
            if self._counting_off == pid:
                return
            try:
                if self._decodes is None or self._decodes.pid != pid:  # new, or a forked copy
                    self._decodes = _DecodeCounter(self.spool_dir)
                self._decodes.add(self._split(split), backend)
            except OSError as err:  # a full disk, a removed spool: the decode itself stands
                self._counting_off = pid
                _log.warning("decode counts stop in process %d (run.json will miss them): %s",
                             pid, err)

    def decode_records(self) -> dict[str, dict[str, dict[str, int]]]:
        """Each counting process's {split: {backend: n}}, keyed by its spool file's name, so that
        ranks sharing the folder (each reading every file) merge without double counting."""
        out = {}
        for counts_file in sorted(Path(self.spool_dir).glob(f"*{_DECODES_SUFFIX}")):
            text = counts_file.read_text()
            try:
                out[counts_file.name] = json.loads(text) if text else {}
            except json.JSONDecodeError:  # caught mid-rewrite by a process still decoding
                _log.warning("%s: decode counts unreadable, left out", counts_file)
        return out

    @staticmethod
    def _split(split: str) -> str:
        if split == WARNINGS_KEY:
            raise ValueError(f"{WARNINGS_KEY!r} is reserved in the manifest; not a split name")
        return split

    def _append(self, record: dict) -> None:
        """One JSON line into this process's spool file, in a single `write`."""
        line = (json.dumps(record) + "\n").encode()
        target = os.path.join(self.spool_dir, f"{socket.gethostname()}-{os.getpid()}.jsonl")
        with self._lock:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def _records(self) -> tuple[dict[tuple[str, str], dict], dict[tuple[str, str], dict]]:
        """(failures, warnings) from every spool file, the first record per (split, path)."""
        failures: dict[tuple[str, str], dict] = {}
        warnings: dict[tuple[str, str], dict] = {}
        for spool_file in sorted(Path(self.spool_dir).glob("*.jsonl")):
            for line in spool_file.read_text().splitlines():
                if not line.strip():
                    continue
                record = json.loads(line)
                kind = record.pop("kind", "failure")
                target = warnings if kind == "warning" else failures
                target.setdefault((record["split"], record["path"]), record)
        return failures, warnings

    @property
    def entries(self) -> list[dict]:
        """Every recorded failure, one per (split, path), sorted by split then path."""
        failures, _ = self._records()
        return [failures[key] for key in sorted(failures)]

    @property
    def warning_entries(self) -> list[dict]:
        """Every warning {split, path, backend, problem} of a video that did not also fail, one
        per (split, path), sorted by split then path."""
        failures, warnings = self._records()
        return [warnings[key] for key in sorted(warnings) if key not in failures]

    def failed(self, split: str) -> list[str]:
        """Paths of the videos of `split` that failed, sorted."""
        return [e["path"] for e in self.entries if e["split"] == split]

    def warned(self, split: str) -> list[str]:
        """Paths of the videos of `split` that decoded with a warning (and never failed), sorted."""
        return [e["path"] for e in self.warning_entries if e["split"] == split]

    def to_dict(self) -> dict[str, list[dict]]:
        """The manifest.json content: {split: [{path, backend, error}], "warnings": [{split, path,
        backend, problem}]}, the "warnings" key only when there are any (see the module doc)."""
        failures, warnings = self._records()
        out: dict[str, list[dict]] = {}
        for key in sorted(failures):
            e = failures[key]
            out.setdefault(e["split"], []).append(
                {"path": e["path"], "backend": e["backend"], "error": e["error"]})
        by_path: dict[str, dict] = {}
        for key in sorted(warnings):
            if key not in failures:
                by_path.setdefault(key[1], warnings[key])
        if by_path:
            out[WARNINGS_KEY] = [{"split": w["split"], "path": w["path"], "backend": w["backend"],
                                  "problem": w["problem"]} for _, w in sorted(by_path.items())]
        return out

    def write(self, path: str | os.PathLike) -> Path:
        """Write manifest.json atomically (temp file, then rename); returns the path."""
        path = Path(path)
        content = self.to_dict()
        atomic_write_json(path, content)
        warned = len(content.get(WARNINGS_KEY, []))
        failed = sum(len(rows) for key, rows in content.items() if key != WARNINGS_KEY)
        _log.info("manifest: %d failed and %d suspicious video(s) written to %s", failed, warned,
                  path)
        return path
