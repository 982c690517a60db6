"""Shared fixtures for the data tests: tiny generated videos, written once per session.

Import the fixtures into a test module (`from data_fixtures import pattern_videos  # noqa: F401`);
pytest finds them there. Nothing here is in tests/conftest.py, which belongs to the lead.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from videopeft.config import DataConfig
from videopeft.constants import LAYOUTS
from videopeft.data.decoders import available_backends
from videopeft.data.synthetic import SyntheticDataset, write_synthetic, write_video
from videopeft.data.synthetic.encode import CONTAINERS
from videopeft.engine.cli import run_main

REPO = Path(__file__).resolve().parents[1]

PATTERN_FRAMES = 24
PATTERN_STEP = 10  # frame i is painted grey level PATTERN_STEP * i (survives lossy coding)
PATTERN_HW = (32, 56)  # H != W, so a transposed decode shows
SYNTHETIC_VIDEOS = 20  # 2 per class: 1 train, 1 val
BACKENDS = tuple(available_backends())
BACKEND_CHOICES = BACKENDS + ("auto",)


def pattern_frames(num_frames: int = PATTERN_FRAMES,
                   hw: tuple[int, int] = PATTERN_HW) -> np.ndarray:
    """uint8 (T, H, W, 3) where every pixel of frame i has value PATTERN_STEP * i."""
    values = (np.arange(num_frames) * PATTERN_STEP).astype(np.uint8)
    return np.broadcast_to(values[:, None, None, None], (num_frames, *hw, 3)).copy()


def frame_numbers(frames) -> list[int]:
    """Recover each decoded frame's index from its grey level."""
    means = np.asarray(frames, dtype=np.float64).reshape(len(frames), -1).mean(1)
    return [int(round(m / PATTERN_STEP)) for m in means]


@pytest.fixture(scope="session")
def pattern_videos(tmp_path_factory) -> dict[str, Path]:
    """One 24-frame pattern video per container: {"webm": VP9, "mp4": H.264, "avi": MPEG-4}."""
    folder = tmp_path_factory.mktemp("pattern")
    paths = {}
    for container in CONTAINERS:
        paths[container] = folder / f"pattern.{container}"
        write_video(paths[container], pattern_frames(), 12, container)
    return paths


@pytest.fixture(scope="session")
def synthetic_sets(tmp_path_factory) -> dict[str, SyntheticDataset]:
    """The synthetic benchmark in every layout, with the bad zoo: 20 tiny videos each."""
    folder = tmp_path_factory.mktemp("synthetic")
    return {layout: write_synthetic(folder / layout, layout, videos=SYNTHETIC_VIDEOS, seed=0,
                                    size=32, frames_range=(6, 20), bad_zoo=True, progress=False)
            for layout in LAYOUTS}


def data_config(info: SyntheticDataset, **overrides) -> DataConfig:
    """A DataConfig reading a synthetic set: 4 frames of 32 px, light augmentation."""
    values = dict(layout=info.layout, root=info.root, annotation=info.annotation, num_frames=4,
                  img_size=32, sampling="segment", stride=2, workers=0, max_retries=10)
    values.update(overrides)
    return DataConfig(**values)


def run_tool(name: str, argv: list[str], capsys) -> tuple[int, list[str]]:
    """Run tools/<name>.py's main in-process under `run_main`, as its command line does: (exit
    status, its stderr's `error:` lines), after checking that it printed no traceback."""
    spec = importlib.util.spec_from_file_location(f"tool_{name}", REPO / "tools" / f"{name}.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    capsys.readouterr()  # drop what came before
    with pytest.raises(SystemExit) as exit_info:
        run_main(tool.main, argv)
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    return exit_info.value.code, [ln for ln in stderr.splitlines() if ln.startswith("error:")]
