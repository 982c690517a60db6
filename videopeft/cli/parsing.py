"""What the commands share: their argument parsers, configs found by path or by shipped name, and
the run name a config gives its default output folder.

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
import textwrap
from pathlib import Path

from videopeft.errors import ConfigError

from .keys import config_keys_help

__all__ = ["CONFIG_DIR", "shipped_configs", "find_config", "run_name_of", "command_parser",
           "add_config_arguments"]

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


def add_config_arguments(parser: argparse.ArgumentParser, *, overrides_help: str) -> None:
    """CONFIG (a file or a shipped name) and the key=value overrides after it."""
    parser.add_argument("config", metavar="CONFIG",
                        help="YAML config file, or a shipped config's name such as ssv2/adaptmlp")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help=overrides_help)
