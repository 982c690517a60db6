"""Two gloo processes train like one: `torchrun --nproc_per_node=2` with a per-rank batch of 2
gives the same trainable weights as one process with a batch of 4 (the same global batch).

(Two-process *evaluation* equal to one process on an odd number of videos is
tests/test_engine_distributed.py::test_two_gloo_processes_evaluate_exactly_like_one.)
"""
from __future__ import annotations

import shutil
import socket
import subprocess

import pytest
import torch

from engine_fixtures import (REPO, python, tiny_set, tiny_settings, tool_env,  # noqa: F401
                             write_yaml)

pytestmark = pytest.mark.slow  # one torchrun pair + one process, ~15-20 s on 2 shared cores

TOLERANCE = 1e-5


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launcher() -> list[str]:
    if shutil.which("torchrun"):
        return ["torchrun"]
    try:
        import torch.distributed.run  # noqa: F401
    except ImportError:
        pytest.skip("neither torchrun nor torch.distributed.run is available")
    return [python(), "-m", "torch.distributed.run"]


def test_two_gloo_processes_train_the_same_weights_as_one(tiny_set, tmp_path):
    """4 steps (2 epochs of 9 videos, global batch 4; the partial batch is dropped), AdamW, LoRA
    with a plain head (no BN: per-rank BN statistics would legitimately differ), no drop path."""
    import torch.distributed as torch_dist
    if not torch_dist.is_available() or not torch_dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    from videopeft.engine.checkpoint import load_checkpoint

    common = dict(method={"name": "lora", "rank": 4, "head_bn": False},
                  train={"epochs": 2, "lr": 0.01, "eval_every": 0},
                  eval={"views_temporal": 1, "views_spatial": 1})

    one = tmp_path / "one"
    cfg_one = write_yaml(tmp_path / "one.yaml",
                         tiny_settings(tiny_set, one, **{**common, "train": {**common["train"],
                                                                         "batch_size": 4}}))
    proc = subprocess.run([python(), str(REPO / "tools" / "train.py"), str(cfg_one)],
                          env=tool_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    two = tmp_path / "two"
    cfg_two = write_yaml(tmp_path / "two.yaml",
                         tiny_settings(tiny_set, two, **{**common, "train": {**common["train"],
                                                                         "batch_size": 2}}))
    cmd = [*_launcher(), "--nnodes=1", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", str(REPO / "tools" / "train.py"), str(cfg_two)]
    proc = subprocess.run(cmd, env=tool_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    s1 = load_checkpoint(one / "checkpoints" / "last.pt")
    s2 = load_checkpoint(two / "checkpoints" / "last.pt")
    assert s1["step"] == s2["step"] == 4
    a, b = s1["model"], s2["model"]
    assert a.keys() == b.keys() and any("lora" in k for k in a)
    diffs = {key: (a[key].float() - b[key].float()).abs().max().item() for key in a}
    print(f"\nmax |one - two| over {len(a)} tensors: {max(diffs.values()):.3g}")
    for key, diff in diffs.items():
        assert diff <= TOLERANCE, (key, diff)
    # the weights did move (the comparison is not between two untouched initialisations)
    from videopeft.engine.logging import read_jsonl
    setup = next(e for e in read_jsonl(two / "log.jsonl") if e["event"] == "setup")
    assert setup["world_size"] == 2 and setup["global_batch"] == 4
    ups = [k for k in a if "lora_up" in k]  # LoRA's up projection starts at zero
    assert ups and all(a[k].abs().max() > 0 for k in ups)
    torch.testing.assert_close(a, b, rtol=0, atol=TOLERANCE)
