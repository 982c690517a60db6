"""Shared pieces of the benchmark suite: statistics, timers, device facts, child processes.

Every section module measures with these, so a number means the same thing everywhere: a `Stat`
is the median of n repeats (with min, max and every value kept), a step time is seconds per call
measured with CUDA events on a GPU and `time.perf_counter` on a CPU, and peak memory is
`torch.cuda.max_memory_allocated` on a GPU and the peak RSS of a dedicated child process on a CPU.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from videopeft.engine.machine import cpu_cores, cpu_name, device_name  # noqa: F401 (re-exported)

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- statistics

@dataclass
class Stat:
    """The median of `n` measured values, with their min, max and the values themselves."""

    median: float
    n: int
    min: float
    max: float
    values: list[float]

    @staticmethod
    def of(values: Sequence[float]) -> "Stat":
        vals = [float(v) for v in values]
        if not vals:
            raise ValueError("a Stat needs at least one value")
        return Stat(statistics.median(vals), len(vals), min(vals), max(vals), vals)

    def to_dict(self) -> dict:
        return asdict(self)


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing (a measurement skipped on this device)."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def clean_rounds(times: dict[str, list[float]], slack: float = 1.3) -> list[int]:
    """Rounds (one call of every entry) not disturbed by other jobs: total time within `slack`
    x the best round's. On a shared CPU a disturbed round can take 10x longer."""
    totals = [sum(v[i] for v in times.values()) for i in range(len(next(iter(times.values()))))]
    best = min(totals)
    return [i for i, t in enumerate(totals) if t <= slack * best]


# ----------------------------------------------------------------------------- timing

def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], Any], device: torch.device, inner: int = 1) -> float:
    """Seconds per call of `fn`, averaged over `inner` back-to-back calls.

    GPU: CUDA events around the calls, then one synchronize (so no host sync inside the calls is
    added by the timer). CPU: wall clock.
    """
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / inner
    begin = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - begin) / inner


def repeat_timed(fn: Callable[[], Any], device: torch.device, *, warmup: int, repeats: int,
                 inner: int = 1) -> Stat:
    """`warmup` untimed calls, then `repeats` timings of `inner` calls each: seconds per call."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    return Stat.of([time_calls(fn, device, inner) for _ in range(repeats)])


# ----------------------------------------------------------------------------- memory

def peak_rss_mb() -> float:
    """This process's peak resident set size so far, MiB.

    Reads VmHWM from /proc/self/status: Linux keeps `ru_maxrss` across fork and exec, so a child
    started by a big parent would report the parent's peak; VmHWM belongs to the new address
    space. Falls back to getrusage (KiB on Linux) where /proc is missing.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """This process's resident set size now, MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_child(module: str, args: list[str], *, threads: int, timeout: float = 900) -> dict:
    """Run `python -m <module> --child ARGS` in a fresh process and return the JSON object it
    prints last; a fresh process keeps one measurement's memory apart from another's."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = str(threads)
    proc = subprocess.run([sys.executable, "-m", module, "--child", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{module} child {args} failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- device facts

def slug(text: str) -> str:
    """Lower case, runs of anything but letters and digits -> '-': 'NVIDIA H100 80GB' ->
    'nvidia-h100-80gb'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def device_slug(device: torch.device) -> str:
    """The device part of a result file name: 'cpu-2core' or the slugged GPU name."""
    if device.type == "cuda":
        return slug(torch.cuda.get_device_name(device))
    return f"cpu-{cpu_cores()}core"


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; anything else as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def run_meta(device: torch.device, suite: str, quick: bool, argv: list[str]) -> dict:
    """What the record says about the run: date, device, software, threads, load."""
    try:
        import transformers
        hf_version: str | None = transformers.__version__
    except ImportError:
        hf_version = None
    return {
        "suite": suite, "quick": quick, "date": datetime.date.today().isoformat(),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "device": {"type": device.type, "name": device_name(device), "slug": device_slug(device),
                   "cores": cpu_cores(), "cpu": cpu_name()},
        "torch": torch.__version__, "transformers": hf_version,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "gpu_memory_gib": (torch.cuda.get_device_properties(device).total_memory / 2**30
                           if device.type == "cuda" else None),
        "python": platform.python_version(), "threads": torch.get_num_threads(),
        "load_average_start": os.getloadavg()[0], "command": " ".join(argv),
    }
