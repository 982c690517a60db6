"""The package's shape: every module imports on its own, imports sit at the top of the file (so a
file shows what it depends on), and the config layer stays free of torch.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "videopeft"
MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for p in PACKAGE.rglob("*.py"))

# modules the command line imports before any work: they must not pull in torch (seconds to load)
LIGHT_MODULES = ["videopeft", "videopeft.config", "videopeft.errors", "videopeft.io",
                 "videopeft.constants", "videopeft.models.archs", "videopeft.peft.config",
                 "videopeft.engine.cli", "videopeft.engine.logging", "videopeft.__main__",
                 *sorted(m for m in MODULES if m.startswith("videopeft.cli"))]

# third-party packages loaded once in the parent, so each child pays only for videopeft itself
_PRELOAD = ("torch", "timm", "numpy", "yaml", "einops", "safetensors", "tqdm", "av", "decord",
            "matplotlib")


def _function_level_imports(path: Path) -> list[str]:
    """`import videopeft...` / relative imports written inside a function or method."""
    tree = ast.parse(path.read_text())
    found = []
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.ImportFrom) and (node.level > 0 or (
                    node.module or "").startswith("videopeft")):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            elif isinstance(node, ast.Import) and any(
                    a.name.startswith("videopeft") for a in node.names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_module_imports_videopeft_inside_a_function():
    """A deferred import hides a dependency (and, before, an import cycle): there are none."""
    found = [hit for p in sorted(PACKAGE.rglob("*.py")) for hit in _function_level_imports(p)]
    assert found == []


def test_every_module_imports_alone_in_a_fresh_interpreter():
    """Each module is imported first in its own process (forked from one that holds only the
    third-party libraries), so an import cycle between videopeft modules cannot hide behind
    the order in which other modules happened to be imported."""
    code = f"""
import importlib, os, sys, traceback
for name in {_PRELOAD!r}:
    try:
        importlib.import_module(name)
    except ImportError:
        pass
assert not any(m.startswith("videopeft") for m in sys.modules)
failed = []
for module in {MODULES!r}:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(module)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status:
        failed.append(module)
print("FAILED", failed)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "FAILED []", proc.stderr[-3000:]


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_the_config_layer_does_not_import_torch(module):
    code = (f"import sys, {module}; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'timm')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_package_namespaces_resolve_their_public_names():
    import videopeft
    from videopeft import data, models, peft

    for package in (videopeft, data, models, peft):
        for name in package.__all__:
            assert getattr(package, name) is not None, f"{package.__name__}.{name}"
