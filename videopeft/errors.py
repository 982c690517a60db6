"""The errors a user can cause, and the small checks that build them. A leaf module: no imports
from the rest of videopeft, no torch, so every layer (and the command line) can use it.

Every user error prints as one line per problem, ``WHERE: KEY: MESSAGE`` (WHERE a file, a
``file:line`` or ``command line``), which the tools turn into ``error: ...`` and exit status 2.
A `ConfigError` carries its problems as `Problem` records rather than text, so the config loader
can add the file and line of a key without parsing messages back.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Sequence

__all__ = [
    "Problem", "ConfigError", "CheckpointError", "AdapterError", "ExportError", "DecodeError",
    "RunInterrupted", "USER_ERRORS", "check", "one_of", "positive_int", "fraction",
    "did_you_mean", "one_line", "run_error",
]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: what was expected and found, at which key, where."""

    message: str  # "expected a positive int, got 0"
    key: str = ""  # dotted key, "method.rank"; "" when the problem is not about one key
    where: str = ""  # "configs/x.yaml:14", "configs/x.yaml" or "command line"; "" = unknown

    def __str__(self) -> str:
        return ": ".join(part for part in (self.where, self.key, self.message) if part)

    def under(self, section: str) -> Problem:
        """The same problem one level down: key "rank" under section "method" is "method.rank"."""
        return replace(self, key=f"{section}.{self.key}" if self.key else section)


class ConfigError(ValueError):
    """Bad input (config, annotation, command line); `problems` holds each one, and str() gives
    one line per problem."""

    def __init__(self, *problems: Problem | str, key: str = "", where: str = "") -> None:
        self.problems: tuple[Problem, ...] = tuple(
            p if isinstance(p, Problem) else Problem(str(p), key, where) for p in problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __reduce__(self) -> tuple:  # DataLoader workers pickle errors back to the main process
        return (_rebuild_config_error, (self.problems,))

    def relocated(self, change: Callable[[Problem], Problem]) -> ConfigError:
        """A copy with `change` applied to every problem (e.g. prefix a section, add a line)."""
        return ConfigError(*(change(p) for p in self.problems))


def _rebuild_config_error(problems: tuple[Problem, ...]) -> ConfigError:
    return ConfigError(*problems)


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message is one line."""


class AdapterError(ValueError):
    """An adapter file that cannot be written or does not fit the model; the message is one line."""


class ExportError(AdapterError):
    """An export to (or import from) Hugging Face that cannot be done faithfully; one line."""


class DecodeError(RuntimeError):
    """No backend could return the requested frames of a file; names the file and each error."""

    def __init__(self, path: str, errors: dict[str, str]) -> None:
        self.path = str(path)
        self.errors = dict(errors)
        super().__init__(f"{self.path}: cannot decode ({self.detail or 'no backend tried'})")

    @property
    def detail(self) -> str:
        """Each backend's error, `name: error; name: error` (the manifest's error field)."""
        return "; ".join(f"{name}: {msg}" for name, msg in self.errors.items())

    @property
    def backends(self) -> str:
        """The backends that were tried, comma separated (for the manifest)."""
        return ",".join(self.errors)

    def __reduce__(self) -> tuple:  # keeps the two-argument constructor picklable
        return (type(self), (self.path, self.errors))


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: its folder and the step of its last checkpoint (-1: none yet), so
    the command line can print how to continue it. Exit status 130, like any interrupt."""

    def __init__(self, output_dir: str, step: int = -1, message: str = "") -> None:
        self.output_dir, self.step = str(output_dir), int(step)
        super().__init__(message or f"interrupted; the run folder is {self.output_dir}")

    def __reduce__(self) -> tuple:
        return (type(self), (self.output_dir, self.step, str(self)))


# what the command line reports as `error: ...` with exit status 2 (anything else is a bug)
USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, CheckpointError, AdapterError,
                                                DecodeError)


# ----------------------------------------------------------------------------- checks

def check(*problems: Problem | str | None) -> None:
    """Raise one ConfigError holding every problem given; None entries mean "fine"."""
    found = [p for p in problems if p]
    if found:
        raise ConfigError(*found)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(key: str, value: Any) -> Problem | None:
    """A problem unless `value` is an int >= 1."""
    if _is_int(value) and value >= 1:
        return None
    return Problem(f"expected a positive int, got {value!r}", key)


def fraction(key: str, value: Any) -> Problem | None:
    """A problem unless `value` is a probability in [0, 1) (dropout, erasing)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value < 1.0:
        return None
    return Problem(f"expected a float in [0, 1), got {value!r}", key)


def one_of(key: str, value: Any, choices: Sequence[Any]) -> Problem | None:
    """A problem unless `value` is one of `choices`; suggests the closest choice."""
    if value in choices:
        return None
    return Problem(f"expected one of {list(choices)}, got {value!r}"
                   f"{did_you_mean(value, choices)}", key)


def did_you_mean(word: Any, candidates: Iterable[Any], prefix: str = "") -> str:
    """' (did you mean X?)' for the closest candidate by spelling (named `prefix` + X, e.g. the
    dotted key "train.lr"), or '' when none is close."""
    names = [str(c) for c in candidates]
    close = difflib.get_close_matches(str(word), names, n=1, cutoff=0.6)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


# ----------------------------------------------------------------------------- messages

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_DECORD_PREFIX = re.compile(r"^\[[\d:]+\] \S+:\d+: ")  # "[16:20:20] src/video/x.cc:151: "
# torchcodec: "SingleStreamDecoder, /__w/torchcodec/.../SingleStreamDecoder.cpp:41, Could not ..."
_TORCHCODEC_PREFIX = re.compile(r"^\w+, \S+\.(?:cpp|h):\d+, ")
_MAX_CHARS = 240


def run_error(err: BaseException) -> str:
    """What run.json records for the error a run stopped on: a user error's own message, else
    the gist of the exception (`one_line`); "interrupted" for Ctrl-C."""
    if isinstance(err, KeyboardInterrupt):
        return "interrupted"
    return str(err) if isinstance(err, USER_ERRORS) else one_line(err)


def one_line(err: BaseException) -> str:
    """The gist of a library exception in one short line ("Type: first line").

    torch's loader errors run to paragraphs and decord's carry C++ traces; the first line is what
    tells a user which file is wrong and how. decord's and torchcodec's C++ source locations are
    dropped from it.
    """
    text = _ANSI.sub("", str(err)).strip()
    glob = re.search(r"GLOBAL ([\w.]+)", text)
    if glob:  # weights_only refused a pickled object: name it instead of torch's long advice
        return f"it pickles {glob.group(1)}, which weights_only loading refuses"
    inner = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
    if inner:  # not a pickle torch.load understands at all (random bytes, JSON, text)
        return f"not a PyTorch pickle: {inner.group(1).strip()}"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    first = _TORCHCODEC_PREFIX.sub("", _DECORD_PREFIX.sub("", lines[0])) if lines else ""
    line = f"{type(err).__name__}: {first}" if first else type(err).__name__
    return line if len(line) <= _MAX_CHARS else line[:_MAX_CHARS - 3] + "..."
