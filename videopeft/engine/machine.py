"""Facts about the machine and software a run or a measurement happened on, named the same way
everywhere (run reports and run.json, the demo's REPORT.md, benchmark records)."""
from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import torch

import videopeft

__all__ = ["cpu_name", "cpu_cores", "device_name", "machine_summary", "LIBRARIES", "library_versions",
           "source_version", "software"]

# the libraries whose versions decide what a run computes and decodes (run.json names each)
LIBRARIES = ("torch", "timm", "numpy", "decord", "av", "torchcodec", "transformers", "peft")


def cpu_name() -> str:
    """The CPU model from lscpu, falling back to /proc/cpuinfo, then platform.processor()."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_cores() -> int:
    """Cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def device_name(device: torch.device) -> str:
    """The GPU's name for a CUDA device, the CPU model otherwise."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()


def machine_summary() -> str:
    """One line: CPU, cores, torch threads, GPU, Python, torch and OS versions."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu_name()}, {os.cpu_count()} logical cores (torch threads "
            f"{torch.get_num_threads()}), {gpu}; Python {platform.python_version()}, torch "
            f"{torch.__version__}, {platform.system()}")


def library_versions() -> dict[str, str | None]:
    """The installed version of each of `LIBRARIES` (None when it is not installed)."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _git(checkout: Path, *args: str) -> str | None:
    """`git -C checkout ARGS` output, or None when git or the repository cannot answer."""
    try:
        return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True,
                              text=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def source_version() -> dict[str, str | bool | None]:
    """{"version", "commit", "dirty"} of the videopeft code running; commit and dirty (uncommitted
    changes, untracked files included) only when it runs from a git checkout, else None."""
    checkout = Path(videopeft.__file__).resolve().parents[1]
    commit = dirty = None
    if (checkout / ".git").exists():  # a directory, or a file in a worktree
        head = _git(checkout, "rev-parse", "HEAD")
        status = _git(checkout, "status", "--porcelain")
        commit = head.strip() if head else None
        dirty = bool(status.strip()) if status is not None and commit else None
    return {"version": videopeft.__version__, "commit": commit, "dirty": dirty}


def software() -> dict:
    """The software a run used: {"videopeft": source_version(), "python", "platform",
    "libraries": library_versions()} (run.json's first fields)."""
    return {"videopeft": source_version(), "python": platform.python_version(),
            "platform": platform.platform(), "libraries": library_versions()}
