"""The GPU kit (benchmarks/gpu_kit.sh) runs end to end before any GPU sees it.

`--dry-run` is the same script at toy size on the CPU: every part must succeed and leave what the
device tool can bring back (at most 8 plain files of at most 16 MiB in $OUT, names of letters,
digits, '.', '_', '-'). Without --dry-run on a machine without CUDA the kit must stop after
recording the machine, not start a ViT-B run on the CPU. The GPU-size settings that the dry run
cannot exercise are checked as data: the parts' time limits fit in 8 minutes and the GPU study
config builds every cell.
"""
from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from engine_fixtures import REPO, tool_env
from videopeft.config import load_config

KIT = REPO / "benchmarks" / "gpu_kit.sh"
SLOW = pytest.mark.slow  # the dry run: ~2 min on 2 cores (GPU suite 50 s, frame study 30 s)
FILES = {"summary.md", "kit.json", "kit.log", "gpu_suite.md", "frame_study.png",
         "kit_results.tar.gz"}


def run_kit(out: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = tool_env() | {"OUT": str(out), "PYTHON": sys.executable}
    return subprocess.run(["bash", str(KIT), *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kit") / "out"
    proc = run_kit(out, "--dry-run")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    return out


@SLOW
def test_the_dry_run_leaves_what_the_device_tool_brings_back(dry_run):
    entries = list(dry_run.iterdir())
    assert {p.name for p in entries} == FILES
    assert len(entries) <= 8
    for path in entries:
        assert path.is_file() and 0 < path.stat().st_size <= 16 * 2**20, path
        assert re.fullmatch(r"[A-Za-z0-9._-]+", path.name), path


@SLOW
def test_every_part_of_the_dry_run_succeeds_and_is_reported(dry_run):
    record = json.loads((dry_run / "kit.json").read_text())
    status = {p["part"]: p["status"] for p in record["parts"]}
    assert status.pop("install") == "skipped"
    assert status == {"env": "ok", "gpu": "ok", "tests": "ok", "data": "ok", "synthetic": "ok",
                      "study": "ok"}
    assert record["env"]["torch"] and record["env"]["packages"]["av"]
    gpu = record["gpu"]
    assert not gpu["meta"].get("partial")
    assert all("error" not in m for m in gpu["methods"].values())
    assert {g["key"] for g in gpu["goals"]} >= {"mfu_adaptmlp", "vs_full_throughput"}
    rows = record["frame_study"]
    assert sorted((r["method"], int(r["frames"])) for r in rows) == sorted(
        (m, f) for m in ("adaptmlp", "vpt", "linear") for f in (4, 8, 16))
    # the CUDA tests: the hot path's variants, RandAugment's and the device augmentation's
    assert "7 skipped" in record["tests"]
    summary = (dry_run / "summary.md").read_text()
    for heading in ("## Parts", "## GPU suite", "## Device tests", "## Data suite",
                    "## Frame study"):
        assert heading in summary, heading
    data = record["data"]["data"]
    assert data["size"]["name"] == "quick"
    b = data["profiles"]["kinetics-320p"]["rows"]["b"]
    assert f"| kinetics-320p | b: {b['name']} | {b['clips_per_s']['median']:.2f} |" in summary


@SLOW
def test_the_bundle_holds_every_part_but_no_videos_or_weights(dry_run):
    with tarfile.open(dry_run / "kit_results.tar.gz") as tar:
        names = tar.getnames()
    for pattern in (r"\./gpu/.*-gpu-quick\.json", r"\./gpu/.*-profile\.txt",
                    r"\./data/.*-data-quick\.json", r"\./data/.*-data-quick\.md",
                    r"\./study/frame_study\.csv", r"\./study/adaptmlp-f16-s0/results\.json",
                    r"\./logs/study\.log", r"\./env\.json", r"\./parts\.tsv"):
        assert any(re.fullmatch(pattern, n) for n in names), pattern
    assert not [n for n in names if n.endswith((".pt", ".mp4", ".whl", ".safetensors"))]


@SLOW
def test_without_a_gpu_the_full_kit_stops_after_recording_the_machine(tmp_path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the full kit would run")
    proc = run_kit(tmp_path / "out", timeout=300)
    assert proc.returncode == 1
    record = json.loads((tmp_path / "out" / "kit.json").read_text())
    status = {p["part"]: p["status"] for p in record["parts"]}
    assert status["env"] == "ok"
    assert {status[p] for p in ("gpu", "tests", "data", "synthetic", "study")} == {"skipped"}
    assert "torch sees no CUDA device" in proc.stdout


def _gpu_limits() -> dict[str, int]:
    """The GPU machine's time limits as the script sets them (the line without the dry run's)."""
    text = KIT.read_text()
    line = next(line for line in text.splitlines()
                if line.strip().startswith("T_INSTALL=") and "T_INSTALL=0" not in line)
    return {k: int(v) for k, v in re.findall(r"(T_\w+)=(\d+)", line)}


def test_the_gpu_parts_fit_in_eight_minutes():
    limits = _gpu_limits()
    assert set(limits) == {"T_INSTALL", "T_ENV", "T_GPU", "T_TESTS", "T_DATA", "T_SYNTH",
                           "T_STUDY"}
    assert sum(limits.values()) <= 8 * 60 - 10  # the report and the bundle take seconds


def test_the_gpu_data_part_asks_for_a_size_the_data_suite_has():
    from benchmarks.data import SIZES

    sizes = re.findall(r"--data-size (\w+)", KIT.read_text())
    assert sizes == ["kit"] and sizes[0] in SIZES


def test_the_gpu_study_config_builds_every_cell(tmp_path):
    from videopeft.studies.frame_study import cell_config

    cfg = load_config(REPO / "configs/synthetic/frame_study_gpu.yaml", check_paths=False)
    assert (cfg.model.name, cfg.data.img_size) == ("videomae_base", 224)
    for method in ("adaptmlp", "vpt", "linear"):
        for frames in (4, 8, 16):
            cell = cell_config(cfg, method, frames, 0, tmp_path / f"{method}-{frames}")
            assert (cell.data.num_frames, cell.method.name) == (frames, method)
    dry = load_config(REPO / "configs/synthetic/frame_study_gpu_dry.yaml", check_paths=False)
    assert dry.method == dataclasses.replace(cfg.method, bottleneck=dry.method.bottleneck)
    assert (dry.data.num_frames, dry.train.amp, dry.eval.split) == (
        cfg.data.num_frames, cfg.train.amp, cfg.eval.split)
