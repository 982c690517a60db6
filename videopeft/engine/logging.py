"""One metrics logger for a run: a JSONL file plus TensorBoard, written by rank 0 only.

Every event is one JSON object on one line of ``log.jsonl``: ``{"event": "train", "step": 120,
"epoch": 3, "time": ..., "loss": 0.71, "lr": 0.01}``. Numeric values are also written to TensorBoard
as ``<event>/<key>`` at that step. TensorBoard is optional: without the ``tensorboard`` package the
logger warns once and writes JSONL only. Lines are flushed as they are written, so a killed run keeps
everything it logged.

On resume, `truncate_after(step)` drops the lines a killed run logged after its last checkpoint,
so the log reads as one uninterrupted run; a run that starts afresh in a reused folder (an
attempt that stopped before its first checkpoint) drops that attempt's lines with
`drop_earlier_runs`. Torch-free: the tools import it before any work.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

from videopeft.io import atomic_write_bytes, atomic_write_text

__all__ = ["MetricsLogger", "read_jsonl", "setup_console_logging"]

_log = logging.getLogger(__name__)


def setup_console_logging(is_main: bool = True, level: int = logging.INFO) -> None:
    """Send videopeft's library logs to stderr: INFO on rank 0, warnings only on other ranks.

    Adds a handler only when the application configured none (no root handler), so a caller's
    own logging setup is respected and lines are never printed twice.
    """
    root = logging.getLogger("videopeft")
    if not logging.getLogger().handlers and \
            not any(getattr(h, "_videopeft", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                               "%H:%M:%S"))
        handler._videopeft = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level if is_main else logging.WARNING)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """All events of a log.jsonl; a torn last line (killed mid-write) is skipped."""
    events = []
    p = Path(path)
    if not p.is_file():
        return events
    for line in p.read_text().splitlines():
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            _log.warning("%s: skipping an unreadable log line", p)
    return events


def _plain(value: Any) -> Any:
    """JSON-friendly value: tensors and numpy scalars become Python numbers, NaN/inf become None."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class MetricsLogger:
    """JSONL + TensorBoard metrics; a no-op on non-main ranks.

    Args:
        output_dir: folder for ``log.jsonl`` and the ``events.out.tfevents.*`` file.
        enabled: False on ranks other than 0.
        tensorboard: try to open a TensorBoard writer.
    """

    def __init__(self, output_dir: str | os.PathLike, *, enabled: bool = True,
                 tensorboard: bool = True) -> None:
        self.dir = Path(output_dir)
        self.enabled = enabled
        self.path = self.dir / "log.jsonl"
        self._file = None
        self._tb = None
        if not enabled:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self._start = self.path.stat().st_size if self.path.is_file() else 0  # earlier runs' bytes
        self._file = open(self.path, "a", encoding="utf-8")
        if tensorboard:
            self._tb = _open_tensorboard(self.dir)

    def log(self, event: str, step: int, **values: Any) -> None:
        """Write one event; numeric values also go to TensorBoard as ``event/key``."""
        if not self.enabled or self._file is None:
            return
        record = {"event": event, "step": int(step), "time": round(time.time(), 3)}
        record.update({k: _plain(v) for k, v in values.items()})
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            for key, value in record.items():
                if key in ("event", "step", "time") or isinstance(value, bool):
                    continue
                if isinstance(value, (int, float)):
                    self._tb.add_scalar(f"{event}/{key}", value, int(step))
            self._tb.flush()

    def truncate_after(self, step: int) -> None:
        """Drop events logged after `step` (a resumed run re-does them); atomic rewrite."""
        if not self.enabled or not self.path.is_file():
            return
        self._file.close()
        keep = [e for e in read_jsonl(self.path) if e.get("step", 0) <= step]
        atomic_write_text(self.path, "".join(json.dumps(e) + "\n" for e in keep))
        self._file = open(self.path, "a", encoding="utf-8")

    def drop_earlier_runs(self) -> None:
        """Drop what was in log.jsonl before this logger opened it (a fresh start in a folder
        whose earlier attempt stopped before its first checkpoint); atomic rewrite."""
        if not self.enabled or self._file is None or self._start == 0:
            return
        self._file.close()
        atomic_write_bytes(self.path, self.path.read_bytes()[self._start:])
        self._start = 0
        self._file = open(self.path, "a", encoding="utf-8")

    def close(self) -> None:
        """Flush and close both outputs (safe to call twice)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def __enter__(self) -> "MetricsLogger":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


_TB_WARNED = False


def _open_tensorboard(folder: Path):
    """A SummaryWriter for `folder`, or None (with one warning per process) without tensorboard."""
    global _TB_WARNED
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        if not _TB_WARNED:
            _log.warning("TensorBoard logging is off (%s); install `tensorboard` to enable it", err)
            _TB_WARNED = True
        return None
    return SummaryWriter(log_dir=str(folder))
