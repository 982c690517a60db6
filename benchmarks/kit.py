"""The GPU kit's two Python steps (benchmarks/gpu_kit.sh runs them; see benchmarks/README.md).

    python -m benchmarks.kit env FILE          # the machine and software, as JSON, and printed
    python -m benchmarks.kit report WORK OUT   # gather the parts' results: OUT/kit.json,
                                               # OUT/summary.md, printed

`report` reads what the kit's parts left in WORK, whether they finished or not: `parts.tsv` (one
line per part: name, exit status, seconds), `env.json`, the GPU suite's JSON in `gpu/` (a
partial one when the suite was stopped by its time limit), the data suite's JSON in `data/`, the
frame study's `study/frame_study.csv` and the device tests' log `logs/tests.log`. A missing
piece is reported as missing, never invented.
"""
from __future__ import annotations

import csv
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

KIT_FILES = ("kit.json", "summary.md")


# ----------------------------------------------------------------------------- env

NVIDIA_SMI_QUERY = ("name,driver_version,memory.total,memory.used,clocks.sm,clocks.max.sm,"
                    "clocks.mem,power.draw,power.limit,temperature.gpu,utilization.gpu")


def nvidia_smi() -> dict[str, str] | None:
    """nvidia-smi's full screen and its CSV query of the card's state (None without nvidia-smi);
    read only: the kit never changes the card's settings."""
    if shutil.which("nvidia-smi") is None:
        return None

    def run(*args: str) -> str:
        try:
            done = subprocess.run(["nvidia-smi", *args], capture_output=True, text=True,
                                  timeout=20)
            return done.stdout + done.stderr
        except (OSError, subprocess.SubprocessError) as err:
            return f"nvidia-smi failed: {err}"
    return {"screen": run(), "query": run(f"--query-gpu={NVIDIA_SMI_QUERY}", "--format=csv")}


def environment() -> dict[str, Any]:
    """Device, software versions (from package metadata: nothing heavy is imported) and whether
    the carried decoders load (None for what is missing)."""
    import importlib
    import importlib.metadata

    import torch

    def version(dist: str) -> str | None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    def loads(module: str) -> bool:
        try:
            importlib.import_module(module)
            return True
        except Exception:  # noqa: BLE001 - a broken install is as good as a missing one here
            return False

    env: dict[str, Any] = {
        "python": platform.python_version(), "executable": sys.executable,
        "cpu_cores": len(os.sched_getaffinity(0)),
        # DataLoader workers hand batches over in shared memory: a small /dev/shm breaks them
        "shm_gib": (shutil.disk_usage("/dev/shm").total / 2**30 if os.path.isdir("/dev/shm")
                    else None),
        "torch": torch.__version__,
        "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "packages": {name: version(dist) for name, dist in (
            ("decord", "decord"), ("av", "av"), ("transformers", "transformers"),
            ("timm", "timm"), ("einops", "einops"), ("safetensors", "safetensors"),
            ("numpy", "numpy"), ("matplotlib", "matplotlib"), ("yaml", "PyYAML"),
            ("pytest", "pytest"), ("triton", "triton"))},
        # av before decord: videopeft.data.decoders says why
        "decoders_load": {name: loads(name) for name in ("av", "decord")},
        "nvidia_smi": nvidia_smi(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env["gpu"] = {"name": props.name, "memory_gib": props.total_memory / 2**30,
                      "capability": f"{props.major}.{props.minor}",
                      "multiprocessors": props.multi_processor_count}
    return env


# ----------------------------------------------------------------------------- report

def _read_parts(work: Path) -> list[dict]:
    path = work / "parts.tsv"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        name, status, seconds, *note = line.split("\t")
        rows.append({"part": name, "status": status, "seconds": float(seconds),
                     "note": note[0] if note else ""})
    return rows


def _read_json(folder: Path) -> dict | None:
    """The one JSON record a suite wrote in `folder` (None when there is none)."""
    found = sorted(folder.glob("*.json")) if folder.is_dir() else []
    return json.loads(found[-1].read_text()) if found else None


def _read_study(work: Path) -> list[dict] | None:
    """The frame study's table; when the study was stopped before writing it, the rows of the
    cells that finished (each cell folder with a results.json), as the study itself builds them."""
    folder = work / "study"
    path = folder / "frame_study.csv"
    if path.is_file():
        with path.open() as f:
            return list(csv.DictReader(f))
    rows = []
    for cell in sorted(folder.glob("*-f*-s*")):
        if (cell / "results.json").is_file():
            from videopeft.studies.frame_study import collect_row

            method, frames, seed = cell.name.rsplit("-", 2)
            rows.append(collect_row(cell, method, int(frames[1:]), int(seed[1:])))
    return [{k: "" if v is None else str(v) for k, v in r.items()} for r in rows] or None


def _tests_line(work: Path) -> str | None:
    path = work / "logs" / "tests.log"
    if not path.is_file():
        return None
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return lines[-1] if lines else None


def gather(work: Path) -> dict[str, Any]:
    """Everything the parts left in WORK, as one record."""
    env_path = work / "env.json"
    return {"env": json.loads(env_path.read_text()) if env_path.is_file() else None,
            "parts": _read_parts(work), "gpu": _read_json(work / "gpu"),
            "data": _read_json(work / "data"), "frame_study": _read_study(work),
            "tests": _tests_line(work)}


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _number(text: str, spec: str) -> str:
    """A CSV cell as a formatted number ("" stays n/a)."""
    try:
        return format(float(text), spec)
    except ValueError:
        return "n/a"


def _gib(mib: float | None) -> str:
    return _fmt(None if mib is None else mib / 1024, ".1f")


def _gpu_lines(gpu: dict | None) -> list[str]:
    if gpu is None:
        return ["No GPU suite record (see the gpu part's log)."]
    meta, lines = gpu.get("meta", {}), []
    if meta.get("partial"):
        lines += ["**Partial record**: the suite was stopped before its end; what follows is "
                  "what it had measured.", ""]
    o = gpu.get("options", {})
    shape = o.get("shape", {})
    lines += [f"{meta.get('device', {}).get('name')}: {shape.get('arch')} {shape.get('frames')}x"
              f"{shape.get('img_size')}, batch {shape.get('batch')} ({o.get('batch_source')}), "
              f"amp {o.get('amp')}, peak {o.get('peak_tflops')} TFLOP/s ({o.get('peak_source')}).",
              "", "| method | clips/s | TFLOP/s | MFU | peak GiB |", "|---|---:|---:|---:|---:|"]
    for name, m in gpu.get("methods", {}).items():
        if "error" in m:
            lines.append(f"| {name} | failed: `{m['error']}` | | | |")
            continue
        lines.append(f"| {name} | {m['clips_per_s']:.1f} | {m['achieved_tflops']:.1f} "
                     f"| {_fmt(m.get('mfu'), '.1%')} | {_gib(m.get('peak_memory_mib'))} |")
    lines += ["", "| goal | value | target | result |", "|---|---:|---:|---|"]
    for g in gpu.get("goals", []):
        verdict = {True: "pass", False: "FAIL", None: "not measured"}[g["passed"]]
        lines.append(f"| {g['description']} | {_fmt(g['value'], '.3g')} | {g['op']} "
                     f"{g['target']:g} | {verdict} |")
    r = gpu.get("ratios", {})
    lines += ["", "saved activations per clip, AdaptMLP vs full: "
              f"{_fmt(r.get('adaptmlp_vs_full_saved_activations'), '.3f')}"]
    for key, label in (("compile", "torch.compile speed-up"),
                       ("checkpointing", "checkpointing clips/s ratio on/off")):
        section = gpu.get(key)
        if section is None:
            lines.append(f"{label}: not reached")
        elif "error" in section:
            lines.append(f"{label}: `{section['error']}`")
        else:
            value = section.get("speedup", section.get("throughput_ratio_on_vs_off"))
            lines.append(f"{label}: {_fmt(value, '.2f')}")
    frames = gpu.get("frames")
    if frames:
        lines += ["", "| method | frames | clips/s | MFU | peak GiB | attention share |",
                  "|---|---:|---:|---:|---:|---:|"]
        for method, rows in frames.items():
            for m in rows:
                if "error" in m:
                    lines.append(f"| {method} | {m['frames']} | `{m['error']}` | | | |")
                    continue
                lines.append(f"| {method} | {m['frames']} | {m['clips_per_s']:.1f} "
                             f"| {_fmt(m.get('mfu'), '.1%')} | {_gib(m.get('peak_memory_mib'))} "
                             f"| {_fmt(m.get('attention_share'), '.1%')} |")
    return lines


def _study_lines(rows: list[dict] | None) -> list[str]:
    if rows is None:
        return ["No frame study table (see the study part's log)."]
    lines = ["| method | frames | video top-1 | GFLOPs/view | clips/s | peak MiB |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['frames']} | {_number(r['video_top1'], '.1f')} "
                     f"| {_number(r['gflops_per_view'], '.4g')} "
                     f"| {_number(r['clips_per_s'], '.1f')} "
                     f"| {_number(r['peak_memory_mb'], '.0f')} |")
    return lines


def _data_lines(data: dict | None) -> list[str]:
    """The data suite's rows: clips/s per core, the ratio to the plain decord loop, and the cores
    that would feed the GPU at each target rate."""
    if data is None or "data" not in data:
        return ["No data suite record (see the data part's log)."]
    section = data["data"]
    targets = section.get("feed_targets", [])
    lines = ["**Partial record**: the suite was stopped before its end; what follows is what it "
             "had measured.", ""] if data.get("meta", {}).get("partial") else []
    lines += [f"Size `{section['size']['name']}`, one core per row (one torch thread, no "
             "DataLoader); `vs a` = over the plain decord loop on the same frames.", "",
             "| set | row | clips/s per core | vs a | cores for "
             + " / ".join(str(n) for n in targets) + " clips/s |", "|---|---|---:|---:|---:|"]
    for profile, p in section["profiles"].items():
        for key, row in p["rows"].items():
            if "skipped" in row:
                lines.append(f"| {profile} | {key}: {row['name']} | skipped: {row['skipped']} "
                             "| | |")
                continue
            cores = row.get("cores_needed")
            lines.append(f"| {profile} | {key}: {row['name']} "
                         f"| {row['clips_per_s']['median']:.2f} | {_fmt(row.get('vs_a'), '.2f')} "
                         f"| {' / '.join(str(cores[str(n)]) for n in targets) if cores else ''} |")
    lines.append("")
    for profile, p in section["profiles"].items():
        lines.append(f"{profile}: {p['videos']} videos at {p['mean_kbps']:.0f} kb/s, written in "
                     f"{p['write_s']:.1f} s by {p['write_workers']} processes "
                     f"({p['write_s_per_video']:.2f} s per video).")
    dev = section.get("device_augmentation", {})
    if dev:
        lines.append(f"Device-side augmentation, {dev.get('batch')} clips of 16x224 on "
                     f"{dev.get('device')}: " + (dev["skipped"] if "skipped" in dev else
                                                 f"{dev['seconds']['median'] * 1e3:.1f} ms"))
    return lines


def summary(record: dict[str, Any]) -> str:
    """The Markdown summary of a gathered record."""
    env = record["env"] or {}
    gpu = env.get("gpu") or {}
    lines = ["# GPU kit summary", "",
             f"Device: {gpu.get('name', 'no GPU')} ({_fmt(gpu.get('memory_gib'), '.0f')} GiB); "
             f"torch {env.get('torch')}, CUDA {env.get('cuda')}, Python {env.get('python')}, "
             f"{env.get('cpu_cores')} CPU cores, /dev/shm {_fmt(env.get('shm_gib'), '.0f')} GiB; "
             f"decord {env.get('packages', {}).get('decord')}, "
             f"av {env.get('packages', {}).get('av')}; "
             + ", ".join(f"{name} {'loads' if ok else 'does NOT load'}"
                         for name, ok in (env.get("decoders_load") or {}).items()) + ".", "",
             *(["```", env["nvidia_smi"]["query"].strip(), "```", ""]
               if env.get("nvidia_smi") else []),
             "## Parts", "", "| part | status | seconds | note |", "|---|---|---:|---|"]
    lines += [f"| {p['part']} | {p['status']} | {p['seconds']:.0f} | {p['note']} |"
              for p in record["parts"]]
    lines += ["", "## GPU suite", "", *_gpu_lines(record["gpu"]),
              "", "## Device tests", "", record["tests"] or "no test log",
              "", "## Data suite", "", *_data_lines(record["data"]),
              "", "## Frame study", "", *_study_lines(record["frame_study"])]
    return "\n".join(lines) + "\n"


def report(work: Path, out: Path) -> str:
    """Write OUT/kit.json and OUT/summary.md from WORK; returns the summary."""
    record = gather(work)
    out.mkdir(parents=True, exist_ok=True)
    (out / "kit.json").write_text(json.dumps(record, indent=1) + "\n")
    text = summary(record)
    (out / "summary.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "env":
        env = environment()
        Path(args[1]).write_text(json.dumps(env, indent=1) + "\n")
        smi = env.pop("nvidia_smi") or {"screen": "nvidia-smi: not found\n", "query": ""}
        print(smi["screen"] + smi["query"] + json.dumps(env, indent=1))
        return 0
    if len(args) == 3 and args[0] == "report":
        print(report(Path(args[1]), Path(args[2])))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
