"""A probe for host reads of tensor values: what would make the host wait for a GPU.

`HostReads` records, while active, every operation that needs a tensor's *values* on the host:
`.item()`, `bool()`, `int()`, `float()` (all reach `aten._local_scalar_dense`), `.tolist()`,
`.numpy()`, boolean-mask indexing and `nonzero` (their output shape depends on the values), and
copies to the CPU. On a GPU each one is a synchronisation; on a CPU nothing waits, but the same
code path would, so the probe finds them in a CPU test. Tensors listed in `allowed` (by identity,
e.g. optimizer step counters, which live on the CPU even in a GPU run) are not counted.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

_VALUE_OPS = {aten._local_scalar_dense.default, aten.nonzero.default, aten.masked_select.default,
              aten.equal.default}
_INDEX_OPS = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default}
_PY_READS = ("tolist", "numpy")


def _bool_index(args: tuple) -> bool:
    indices = args[1] if len(args) > 1 else ()
    return any(isinstance(t, torch.Tensor) and t.dtype in (torch.bool, torch.uint8)
               for t in (indices or ()))


class HostReads(TorchDispatchMode):
    """Records host reads of tensor values (see the module docstring) in `reads`."""

    def __init__(self, allowed: tuple[torch.Tensor, ...] = ()) -> None:
        super().__init__()
        self.allowed = {id(t) for t in allowed}
        self.reads: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        first = args[0] if args else None
        if id(first) not in self.allowed:
            if func in _VALUE_OPS or (func in _INDEX_OPS and _bool_index(args)):
                self.reads.append(str(func))
            elif func in (aten._to_copy.default, aten.copy_.default):
                self._check_copy(func, args, kwargs)
        return func(*args, **kwargs)

    def _check_copy(self, func: Any, args: tuple, kwargs: dict) -> None:
        """A device -> CPU copy (only possible on a GPU run)."""
        if func is aten._to_copy.default:
            src, dst = args[0], kwargs.get("device")
        else:
            dst, src = args[0].device, args[1]
        if isinstance(src, torch.Tensor) and src.device.type != "cpu" and dst is not None \
                and torch.device(dst).type == "cpu":
            self.reads.append(f"{func} to cpu")


@contextlib.contextmanager
def host_reads(allowed: tuple[torch.Tensor, ...] = ()) -> Iterator[list[str]]:
    """Inside: every host read of tensor values is appended to the yielded list (see HostReads).
    `.tolist()` and `.numpy()` never reach the dispatcher: they are caught at the Python level."""
    mode = HostReads(allowed)
    originals = {name: getattr(torch.Tensor, name) for name in _PY_READS}

    def recorder(name: str) -> Any:
        def read(self: torch.Tensor, *a: Any, **kw: Any) -> Any:
            if id(self) not in mode.allowed:
                mode.reads.append(f"Tensor.{name}")
            return originals[name](self, *a, **kw)
        return read

    try:
        for name in _PY_READS:
            setattr(torch.Tensor, name, recorder(name))
        with mode:
            yield mode.reads
    finally:
        for name, fn in originals.items():
            setattr(torch.Tensor, name, fn)
