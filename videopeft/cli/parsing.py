"""What the commands share: their argument parsers, configs found by path or by shipped name, and
the run name a config gives its default output folder.

`precheck_run` answers the mistakes a run would stop on (the data, the run folder) before the
engine loads torch; `resume_command` is what an interrupted run prints.

A CONFIG argument is a YAML file, or the name of a config shipped with the package:
`<folder>/<name>` as under the repository's configs/ (`ssv2/adaptmlp`, `.yaml` optional). The
shipped configs are `videopeft/configs/`: in a checkout a symlink to the repository's configs/
(the one real folder, so every `configs/...` path keeps working), in an installed package the
files the wheel copied there (setup.cfg `package_data`).
"""
from __future__ import annotations

import argparse
import difflib
import os
import shlex
import sys
import textwrap
from pathlib import Path

from videopeft.config import RunConfig
from videopeft.data.preflight import check_num_classes, read_split
from videopeft.errors import ConfigError
from videopeft.run_folder import folder_verdict, inspect_folder

from .keys import config_keys_help

__all__ = ["CONFIG_DIR", "shipped_configs", "find_config", "run_name_of", "command_parser",
           "add_config_arguments", "add_overwrite_argument", "precheck_run", "resume_command",
           "OVERWRITE_HELP"]

OVERWRITE_HELP = ("when output_dir holds another run (or files that are not a run), move its "
                  "contents aside to <output_dir>.old-<time> first; nothing is deleted")

CONFIG_DIR = (Path(__file__).resolve().parents[1] / "configs").resolve()
_SUFFIX = ".yaml"


def shipped_configs() -> list[str]:
    """The names of the shipped configs, sorted: ["demo/demo", ..., "ssv2/adaptmlp", ...]."""
    if not CONFIG_DIR.is_dir():
        return []
    return sorted(p.relative_to(CONFIG_DIR).with_suffix("").as_posix()
                  for p in CONFIG_DIR.rglob(f"*{_SUFFIX}"))


def _close_names(name: str, names: list[str]) -> list[str]:
    """Shipped names like `name`: by spelling, then those with the same last part (`lora`)."""
    wanted = name.removesuffix(_SUFFIX).removeprefix("configs/")
    close = difflib.get_close_matches(wanted, names, n=4, cutoff=0.6)
    same_stem = [n for n in names if n.rsplit("/", 1)[-1] == wanted.rsplit("/", 1)[-1]]
    return list(dict.fromkeys(close + same_stem))[:6]


def find_config(name_or_path: str | os.PathLike) -> Path:
    """The YAML file of a CONFIG argument: an existing file, else the shipped config of that name.

    A name that is neither is one ConfigError line that lists the close shipped names.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = CONFIG_DIR / str(name_or_path).removesuffix(_SUFFIX)
    shipped = shipped.with_name(shipped.name + _SUFFIX)
    if shipped.is_file():
        return shipped
    names = shipped_configs()
    close = _close_names(str(name_or_path), names)
    hint = (f"close shipped names: {', '.join(close)}" if close else
            f"shipped: {', '.join(names) or 'none'}")
    raise ConfigError(f"config {str(name_or_path)!r}: no such file, and no shipped config of that "
                      f"name ({hint})", where="command line")


def run_name_of(config_path: str | os.PathLike | None) -> str:
    """The config file's stem ("adaptmlp" for configs/ssv2/adaptmlp.yaml; "run" without a file):
    the default output folder is runs/<stem>-<time>."""
    return Path(config_path).stem if config_path else "run"


def _shipped_summary() -> str:
    """The shipped names, grouped by folder: "ssv2/{adaptmlp,full,...}"."""
    groups: dict[str, list[str]] = {}
    for name in shipped_configs():
        folder, _, stem = name.rpartition("/")
        groups.setdefault(folder, []).append(stem)
    return ", ".join(f"{folder}/{{{','.join(stems)}}}" if folder else ",".join(stems)
                     for folder, stems in groups.items())


def command_parser(doc: str, prog: str | None, *, config_keys: bool = False
                   ) -> argparse.ArgumentParser:
    """A command's parser: its module docstring as the description; for a command that reads a
    config, the shipped config names and every config key with its default as the epilog."""
    epilog = None
    if config_keys:
        shipped = textwrap.fill(f"shipped configs (CONFIG by name): {_shipped_summary() or 'none'}",
                                width=100, subsequent_indent="  ", break_on_hyphens=False)
        epilog = f"{shipped}\n\n{config_keys_help()}"
    return argparse.ArgumentParser(prog=prog, description=doc, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_overwrite_argument(parser: argparse.ArgumentParser, help_text: str = OVERWRITE_HELP
                           ) -> None:
    """--overwrite: the one way to reuse a folder that holds another run (README, "Run folders")."""
    parser.add_argument("--overwrite", action="store_true", help=help_text)


def precheck_run(cfg: RunConfig, splits: dict[str, bool], out_dir: str | os.PathLike | None, *,
                 overwrite: bool = False, resumable: bool = True, num_classes: int = 0) -> None:
    """What the engine would refuse, answered before torch loads: each split read (`splits`:
    {split: trained on}; a layout that does not fit, no videos, missing files with
    ``data.on_missing: error``), the class count, and the verdict on `out_dir` (None: a new
    timestamped folder). Reads only; the engine's main rank checks again and acts."""
    first = None
    for split, train in splits.items():
        found = read_split(cfg.data, split, train=train)
        first = first or found
    if first is not None:
        check_num_classes(num_classes, first.classes)
    if out_dir:
        folder_verdict(inspect_folder(out_dir), cfg, resume=resumable and bool(cfg.train.resume),
                       overwrite=overwrite, resumable=resumable)


def resume_command(prog: str | None, argv: list[str] | None, output_dir: str) -> str:
    """The command that continues an interrupted run: the same one with ``output_dir=DIR`` and
    ``train.resume=auto`` (and without --overwrite, which would move the run aside)."""
    if prog:
        head = prog.split()
    else:  # tools/<name>.py or python -m videopeft
        head = [Path(sys.executable).name, sys.argv[0]] if sys.argv[0].endswith(".py") else \
            [sys.argv[0]]
    args = list(sys.argv[1:] if argv is None else argv)
    kept = [a for a in args if a != "--overwrite"
            and not a.startswith(("output_dir=", "train.resume="))]
    return shlex.join([*head, *kept, f"output_dir={output_dir}", "train.resume=auto"])


def add_config_arguments(parser: argparse.ArgumentParser, *, overrides_help: str) -> None:
    """CONFIG (a file or a shipped name) and the key=value overrides after it."""
    parser.add_argument("config", metavar="CONFIG",
                        help="YAML config file, or a shipped config's name such as ssv2/adaptmlp")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help=overrides_help)
