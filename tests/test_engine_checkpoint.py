"""Checkpoint files: atomic writes, the newest valid one found after a crash, exact RNG round trips,
and refusal of a state that belongs to another model or method."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn as nn

from videopeft.engine.checkpoint import (CheckpointError, CheckpointManager, atomic_save,
                                         find_resume, load_checkpoint, load_model_state,
                                         model_state, rng_state, set_rng_state)


def test_atomic_save_leaves_no_temporary(tmp_path):
    atomic_save({"a": torch.ones(3)}, tmp_path / "x.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]
    assert torch.equal(torch.load(tmp_path / "x.pt")["a"], torch.ones(3))


def test_manager_keeps_last_k_and_links_last(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=2)
    for step in (1, 2, 3):
        manager.save({"step": step}, step)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["last.pt", "step_00000002.pt", "step_00000003.pt"]
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 3


def test_resume_skips_a_corrupt_newest_file_with_a_warning(tmp_path, caplog):
    manager = CheckpointManager(tmp_path, keep_last=3)
    for step in (1, 2):
        manager.save({"step": step}, step)
    data = (tmp_path / "step_00000002.pt").read_bytes()
    (tmp_path / "last.pt").unlink()
    (tmp_path / "step_00000002.pt").write_bytes(data[: len(data) // 2])  # torn by a disk error
    (tmp_path / "step_00000003.pt").write_bytes(b"garbage")
    path, state = find_resume(tmp_path)
    assert (path.name, state["step"]) == ("step_00000001.pt", 1)
    assert "step_00000003.pt" in caplog.text and "step_00000002.pt" in caplog.text


def test_hidden_temporaries_of_a_killed_write_are_ignored_and_cleaned(tmp_path):
    CheckpointManager(tmp_path).save({"step": 5}, 5)
    (tmp_path / ".step_00000009.tmp-123.pt").write_bytes(b"half a checkpoint")
    assert find_resume(tmp_path)[1]["step"] == 5
    CheckpointManager(tmp_path)  # a new run cleans them up
    assert not list(tmp_path.glob(".*"))


def test_no_checkpoint_means_no_resume(tmp_path):
    assert find_resume(tmp_path) is None
    assert find_resume(tmp_path / "absent") is None


def test_foreign_file_is_not_a_training_checkpoint(tmp_path):
    torch.save({"model": {}}, tmp_path / "weights.pt")
    with pytest.raises(CheckpointError, match="not a videopeft training checkpoint"):
        load_checkpoint(tmp_path / "weights.pt")


def test_rng_state_round_trip_is_exact(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    state = rng_state()
    atomic_save({"rng": state}, tmp_path / "r.pt")
    first = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    torch.manual_seed(99), np.random.seed(99), random.seed(99)
    set_rng_state(torch.load(tmp_path / "r.pt", weights_only=True)["rng"])
    again = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert first[2] == again[2]


def _model() -> nn.Module:
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    model.requires_grad_(False)
    model[2].requires_grad_(True)
    return model


def test_model_state_holds_trainable_params_and_buffers_only():
    keys = set(model_state(_model()))
    assert keys == {"2.weight", "2.bias", "1.running_mean", "1.running_var",
                    "1.num_batches_tracked"}


def test_loading_refuses_a_state_of_another_method():
    state = model_state(_model())
    other = _model()
    other[0].requires_grad_(True)  # this "method" also trains layer 0
    with pytest.raises(CheckpointError, match=r"missing trainable \[0.bias, 0.weight\]"):
        load_model_state(other, state)
    state["2.weight"] = torch.zeros(3, 4)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_model_state(_model(), state)
