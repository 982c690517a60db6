"""Facts about the machine a run or a measurement happened on, named the same way everywhere
(run reports, the demo's REPORT.md, benchmark records)."""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import torch

__all__ = ["cpu_name", "device_name", "machine_summary"]


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


def device_name(device: torch.device) -> str:
    """The GPU's name for a CUDA device, the CPU model otherwise."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()


def machine_summary() -> str:
    """One line: CPU, cores, torch threads, GPU, Python, torch and OS versions."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu_name()}, {os.cpu_count()} logical cores (torch threads "
            f"{torch.get_num_threads()}), {gpu}; Python {platform.python_version()}, torch "
            f"{torch.__version__}, {platform.system()}")
