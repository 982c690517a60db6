"""What every command-line tool shares: one-line errors and the main-rank check for printing.

A tool's `main(argv)` parses arguments, loads the config, calls one engine function and prints
where the results went. `run_main(main)` turns the expected user errors (bad config, checkpoint,
adapter or video) into ONE line ``error: ...`` on stderr and exit status 2, without a traceback;
anything else is a bug and keeps its traceback. Ctrl-C is one line too (exit status 130): a run
that was interrupted says how to continue it.
"""
from __future__ import annotations

import os
import sys
from typing import Callable, Sequence

from videopeft.errors import USER_ERRORS

from .logging import setup_console_logging

__all__ = ["USER_ERRORS", "run_main", "is_main_process", "split_key"]


def is_main_process() -> bool:
    """True unless torchrun started this process with a RANK other than 0."""
    return int(os.environ.get("RANK", "0")) == 0


def split_key(items: Sequence[str], key: str) -> tuple[str | None, list[str]]:
    """Take ``key=VALUE`` out of `items` (e.g. checkpoint=PATH among config overrides)."""
    value, rest = None, []
    for item in items:
        if item.startswith(key + "="):
            value = item.split("=", 1)[1]
        else:
            rest.append(item)
    return value, rest


def run_main(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Call `main`, exit with its status; user errors become one line on stderr and status 2."""
    setup_console_logging(is_main_process())
    try:
        status = main(argv)
    except USER_ERRORS as err:
        lines = [ln for ln in str(err).splitlines() if ln.strip()] or [type(err).__name__]
        for line in lines:  # a config with several problems: one line each
            print(f"error: {line}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as stop:  # a run's own message says how to continue it
        if is_main_process():
            print(f"error: {stop or 'interrupted'}", file=sys.stderr)
        sys.exit(130)
    sys.exit(status or 0)
