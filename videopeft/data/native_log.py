"""Console lines of native libraries, kept off the console: decord's C++ reader prints
``[17:19:54] .../video_reader.cc:83: ERROR opening: x.mp4, ...`` straight to file descriptor 2,
past Python's logging and past ``decord.logging.set_level`` (which only quiets FFmpeg).

`native_stderr_to_log` points descriptor 2 at a private file for the duration of a call and
sends what was written there to the Python log (DEBUG by default), so the error still reaches
the log and the `DecodeError` that follows, but not the console. Descriptor 2 is process-wide:
use it around short native calls only (opening a file), where no other thread of the process
prints. Torch-free.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from typing import IO, Iterator

__all__ = ["native_stderr_to_log"]

_spool: IO[bytes] | None = None
_spool_pid = -1


def _private_spool() -> IO[bytes]:
    """This process's capture file (a forked child makes its own: offsets would be shared)."""
    global _spool, _spool_pid
    if _spool is None or _spool_pid != os.getpid():
        _spool, _spool_pid = tempfile.TemporaryFile(prefix="videopeft-native-"), os.getpid()
    return _spool


@contextlib.contextmanager
def native_stderr_to_log(logger: logging.Logger, level: int = logging.DEBUG) -> Iterator[None]:
    """Inside the block, what native code writes to descriptor 2 goes to `logger` instead."""
    try:
        spool = _private_spool()
        sys.stderr.flush()
        saved = os.dup(2)
    except OSError:  # no descriptor 2 to borrow (a daemon): leave everything as it is
        yield
        return
    spool.seek(0)
    spool.truncate()
    os.dup2(spool.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        spool.seek(0)
        for line in spool.read().decode(errors="replace").splitlines():
            if line.strip():
                logger.log(level, "%s", line.strip())
