"""Shared pieces of the engine and tool tests: a tiny synthetic set, tiny configs, one trained run.

Import the fixtures into a test module (`from engine_fixtures import tiny_set  # noqa: F401`).
Expensive things (the video set, the trained run) are built once per test session: the cache
below is shared by every module that imports the fixtures.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from videopeft.config import RunConfig, load_config
from videopeft.data.synthetic import SyntheticDataset, write_synthetic

REPO = Path(__file__).resolve().parents[1]
_CACHE: dict[str, Any] = {}

# 12 videos of 3 classes: 9 train, 3 val (an odd number, for uneven distributed shards)
NUM_VIDEOS, NUM_CLASSES = 12, 3


def tiny_settings(dataset: SyntheticDataset, out_dir: Path | str, **sections: dict) -> dict:
    """A CPU-sized run as a nested dict: videomae_tiny, 4 frames of 32 px, 3 clips per step."""
    cfg: dict = {
        "data": {"layout": dataset.layout, "root": dataset.root, "annotation": dataset.annotation,
                 "num_frames": 4, "img_size": 32, "sampling": "segment", "workers": 0,
                 "scale": [0.5, 1.0]},
        "model": {"name": "videomae_tiny"},
        "method": {"name": "lora", "rank": 4, "head_bn": True},
        "train": {"epochs": 2, "batch_size": 3, "opt": "adamw", "lr": 0.01, "min_lr": 0.0,
                  "warmup_epochs": 0, "weight_decay": 0.0, "log_every": 1, "eval_every": 1},
        "eval": {"views_temporal": 2, "views_spatial": 3, "batch_size": 2},
        "output_dir": str(out_dir),
        "seed": 0,
    }
    for section, values in sections.items():
        if isinstance(values, dict) and isinstance(cfg.get(section), dict) and section != "method":
            cfg[section].update(values)
        else:
            cfg[section] = values
    return cfg


def tiny_config(dataset: SyntheticDataset, out_dir: Path | str, **sections: dict) -> RunConfig:
    """`tiny_settings` loaded through load_config (so it is validated like a file)."""
    return load_config(None, tiny_settings(dataset, out_dir, **sections))


def write_yaml(path: Path, settings: dict) -> Path:
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


def tool_env() -> dict[str, str]:
    """Environment for tool subprocesses: the checkout importable, one thread, no progress bars."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["TQDM_DISABLE"] = "1"
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def python() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory) -> SyntheticDataset:
    """The synthetic motion set in the `list` layout: 12 videos, 3 classes (9 train, 3 val)."""
    if "set" not in _CACHE:
        folder = tmp_path_factory.mktemp("engine_synthetic")
        _CACHE["set"] = write_synthetic(folder, "list", videos=NUM_VIDEOS, num_classes=NUM_CLASSES,
                                        seed=0, size=32, frames_range=(8, 12), progress=False)
    return _CACHE["set"]


@pytest.fixture(scope="session")
def trained_run(tiny_set, tmp_path_factory) -> Path:
    """One finished tiny training run (lora + BN head, 2 epochs); its folder."""
    if "run" not in _CACHE:
        from videopeft.engine.train import train

        out = tmp_path_factory.mktemp("trained") / "run"
        train(tiny_config(tiny_set, out))
        _CACHE["run"] = out
    return _CACHE["run"]


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())
