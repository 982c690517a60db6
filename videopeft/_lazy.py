"""Package namespaces that import their submodules on first use (PEP 562).

`import videopeft.config` (and so a command line's `--help` and config checks) must not pay for
torch + timm, which take seconds to import; the packages' public names therefore resolve when
first touched: `videopeft.create_model` imports `videopeft.models.vit` at that moment.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

__all__ = ["lazy_exports"]


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
