"""The config keys and their defaults, as a command's `--help` lists them.

Generated from the config dataclasses (`videopeft.config.RunConfig` and its sections, the method
classes of `videopeft.peft.config`): names and defaults from the classes, the note after each key
from the `# comment` on its line in the source. So a key added to a dataclass shows up here
without an edit. Torch-free, like the config layer.
"""
from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from typing import Any

import yaml

from videopeft.config import RunConfig
from videopeft.peft.config import METHOD_CONFIGS, PeftConfig

__all__ = ["config_keys_help", "yaml_value"]

_FIELD_LINE = re.compile(r"^\s{4}(\w+)\s*:[^#]*#\s?(.*)$")  # "    name: type = default  # note"


def yaml_value(value: Any) -> str:
    """`value` as it is written in YAML or after `key=` on the command line (1.0e-06, true, '')."""
    plain = list(value) if isinstance(value, tuple) else value
    text = yaml.safe_dump(plain, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("...").strip()


def _field_notes(cls: type) -> dict[str, str]:
    """The comment written after each field of dataclass `cls` ({} when the source is absent)."""
    try:
        lines, _ = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return {}
    names = {f.name for f in dataclasses.fields(cls)}
    notes: dict[str, str] = {}
    for line in lines:
        match = _FIELD_LINE.match(line)
        if match and match.group(1) in names:
            notes.setdefault(match.group(1), match.group(2).strip())
    return notes


def _section_lines(prefix: str, cls: type) -> list[tuple[str, str]]:
    """(`prefix.key = default`, note) for every field of config dataclass `cls`."""
    defaults, notes = cls(), _field_notes(cls)
    return [(f"{prefix}{f.name} = {yaml_value(getattr(defaults, f.name))}", notes.get(f.name, ""))
            for f in dataclasses.fields(cls) if f.init]


def _method_lines() -> list[tuple[str, str]]:
    """method.name, the keys every method has, then each method's own keys with defaults."""
    common = [f.name for f in dataclasses.fields(PeftConfig)]
    default = RunConfig().method
    lines = [(f"method.name = {default.name}", " | ".join(METHOD_CONFIGS)),
             ("method.<every method>: " + ", ".join(
                 f"{k} = {yaml_value(getattr(default, k))}" for k in common), "")]
    for name, cls in METHOD_CONFIGS.items():
        own = cls()
        keys = [f"{f.name} = {yaml_value(getattr(own, f.name))}"
                for f in dataclasses.fields(cls) if f.name not in common]
        lines.append((f"method.name={name}: " + (", ".join(keys) or "no keys of its own"), ""))
    return lines


def config_keys_help() -> str:
    """The text that lists every config key with its default and note, section by section."""
    hints = typing.get_type_hints(RunConfig)
    defaults = RunConfig()
    rows: list[tuple[str, str]] = []
    notes = _field_notes(RunConfig)
    for f in dataclasses.fields(RunConfig):
        kind = hints[f.name]
        if f.name == "method":
            rows += _method_lines()
        elif dataclasses.is_dataclass(kind):
            rows += _section_lines(f"{f.name}.", kind)
        else:
            rows.append((f"{f.name} = {yaml_value(getattr(defaults, f.name))}",
                         notes.get(f.name, "")))
    width = min(max(len(key) for key, note in rows if note), 44)
    body = "\n".join(f"  {key:<{width}}  # {note}" if note else f"  {key}" for key, note in rows)
    return ("config keys with their defaults (set them in the YAML file, or as key=value after "
            "it;\nvalues are YAML):\n" + body)
