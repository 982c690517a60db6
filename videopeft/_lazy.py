"""Package namespaces that import their submodules on first use (PEP 562).

`import videopeft.config` (and so a command line's `--help` and config checks) must not pay for
torch + timm, which take seconds to import; the packages' public names therefore resolve when
first touched: `videopeft.create_model` imports `videopeft.models.vit` at that moment.
`lazy_module` does the same for one module that a command-line entry point runs: the command
names it at the top of its file and pays for it only when the work starts.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any, Callable

__all__ = ["lazy_exports", "lazy_module", "LazyModule"]


def lazy_exports(package: str, exports: dict[str, list[str]]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """`__getattr__`, `__dir__` and `__all__` for `package`, exporting `exports[module]` names.

    Module names are relative to the package (".vit"); each export names exactly one module.
    """
    where: dict[str, str] = {}
    for module, names in exports.items():
        for name in names:
            if name in where:
                raise ValueError(f"{package}: {name!r} is exported by {where[name]} and {module}")
            where[name] = module
    public = sorted(where)

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name], package), name)
        setattr(importlib.import_module(package), name, value)  # later lookups skip this hook
        return value

    def __dir__() -> list[str]:
        return public

    return __getattr__, __dir__, public


class LazyModule:
    """Stands for module `name`, imported on the first attribute access (then every access reads
    the real module, so a test's monkeypatch of it is seen)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy_module(name: str) -> LazyModule:
    """Module `name` (absolute), imported when first used; a name that does not exist fails here.

    Finding the module imports its parent packages only (`videopeft.engine` for
    `videopeft.engine.train`), which are light.
    """
    if importlib.util.find_spec(name) is None:
        raise ModuleNotFoundError(f"no module named {name!r}", name=name)
    return LazyModule(name)
