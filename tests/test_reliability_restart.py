"""The cluster path: torchrun's c10d rendezvous with `--max-restarts`, and the SLURM script.

One of two gloo workers is SIGKILLed after its third optimizer step (a failed node, as far as
torchrun can tell); torchrun stops the other worker, restarts both, `train.resume=auto` continues
from the last complete checkpoint, and the final adapter and checkpoint tensors equal an
uninterrupted run's. The failure is injected by a test-only wrapper of tools/train.py: a global
optimizer step hook (torch.optim.optimizer) that kills rank 1 once, leaving a marker file so the
restarted worker runs on. TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1, as in tools/slurm_train.sbatch:
with the rendezvous store shared (torch's default), a restarted worker can read the previous
attempt's gloo address and fail to connect (pytorch/pytorch#135712; 2 of 5 restarts here).

tools/slurm_train.sbatch is run with stand-in `scontrol` / `srun` / python that record the
command line it builds from SLURM's variables.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from engine_fixtures import REPO, python, tiny_set, tiny_settings, tool_env, write_yaml  # noqa: F401
from videopeft.engine.logging import read_jsonl

WRAPPER = textwrap.dedent('''
    """tools/train.py, with rank $VP_FAIL_RANK SIGKILLing itself after optimizer step
    $VP_FAIL_STEP, once: the marker file $VP_FAIL_MARKER records that it happened."""
    import os, runpy, signal, sys
    from pathlib import Path

    from torch.optim.optimizer import register_optimizer_step_post_hook

    rank, step = int(os.environ["VP_FAIL_RANK"]), int(os.environ["VP_FAIL_STEP"])
    marker = Path(os.environ["VP_FAIL_MARKER"])
    steps = 0

    def fail_once(optimizer, args, kwargs):
        global steps
        steps += 1
        if int(os.environ.get("RANK", "0")) == rank and steps == step and not marker.exists():
            marker.write_text(f"rank {rank} killed after optimizer step {step}\\n")
            sys.stdout.flush(); sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    register_optimizer_step_post_hook(fail_once)
    sys.argv = [str(Path(os.environ["VP_REPO"]) / "tools" / "train.py")] + sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
''')

STEPS = 4  # 9 train videos, global batch 4 (2 per rank), 2 epochs; the partial batch is dropped
TOLERANCE = 1e-5


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(script: Path, config: Path, env: dict) -> subprocess.CompletedProcess:
    cmd = [python(), "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
           "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{_free_port()}",
           "--rdzv-id", "restart-test", "--max-restarts", "1", "--monitor-interval", "0.2",
           str(script), str(config)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _settings(tiny_set, out: Path, batch_size: int) -> dict:
    return tiny_settings(tiny_set, out, method={"name": "lora", "rank": 4, "head_bn": False},
                         train={"epochs": 2, "batch_size": batch_size, "eval_every": 0,
                                "save_every_steps": 1, "resume": "auto"},
                         eval={"views_temporal": 1, "views_spatial": 1})


@pytest.mark.slow  # one torchrun pair started twice + one in-process run, ~30-60 s on 2 cores
@pytest.mark.skipif(not hasattr(os, "kill") or sys.platform == "win32", reason="needs POSIX SIGKILL")
def test_a_killed_rank_is_restarted_and_resumes_to_the_uninterrupted_weights(tiny_set, tmp_path):
    """The uninterrupted reference is one process with the same global batch, in this process
    (cheaper than another torchrun pair); one and two gloo processes agree to 1e-5
    (tests/test_reliability_distributed.py), a lost or repeated step would not."""
    import torch.distributed as torch_dist
    if not torch_dist.is_available() or not torch_dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    from safetensors.torch import load_file
    from videopeft.config import load_config
    from videopeft.engine.checkpoint import load_checkpoint
    from videopeft.engine.train import train

    straight = tmp_path / "straight"
    train(load_config(None, _settings(tiny_set, straight, batch_size=4)))

    restarted, marker = tmp_path / "restarted", tmp_path / "rank1.killed"
    wrapper = tmp_path / "failing_train.py"
    wrapper.write_text(WRAPPER)
    config = write_yaml(tmp_path / "restarted.yaml", _settings(tiny_set, restarted, batch_size=2))
    env = {**tool_env(), "VP_REPO": str(REPO), "VP_FAIL_RANK": "1", "VP_FAIL_STEP": "3",
           "VP_FAIL_MARKER": str(marker), "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    proc = _torchrun(wrapper, config, env)
    assert proc.returncode == 0, proc.stderr[-4000:]

    assert marker.is_file()  # the failure did happen, and the restarted group finished
    resumed = [e for e in read_jsonl(restarted / "log.jsonl") if e["event"] == "resume"]
    assert len(resumed) == 1 and 1 <= resumed[0]["step"] <= 3, resumed

    a = load_file(str(straight / "adapter.safetensors"))
    b = load_file(str(restarted / "adapter.safetensors"))
    assert a.keys() == b.keys() and any("lora_up" in k for k in a)
    assert all(a[k].abs().max() > 0 for k in a if "lora_up" in k)  # the weights did move
    torch.testing.assert_close(b, a, rtol=0, atol=TOLERANCE)
    sa = load_checkpoint(straight / "checkpoints" / "last.pt")
    sb = load_checkpoint(restarted / "checkpoints" / "last.pt")
    assert sa["step"] == sb["step"] == STEPS
    torch.testing.assert_close(sb["model"], sa["model"], rtol=0, atol=TOLERANCE)


STAND_INS = {
    "scontrol": '#!/bin/sh\nprintf "gpu-node-07\\ngpu-node-08\\n"\n',
    "srun": '#!/bin/sh\nwhile [ "${1#-}" != "$1" ]; do shift; done\nexec "$@"\n',
    "fakepython": ('#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGS_FILE"\n'
                   'echo "$TORCH_DISABLE_SHARE_RDZV_TCP_STORE $OMP_NUM_THREADS" > "$ARGS_FILE.env"\n'),
}


def test_the_slurm_script_sets_the_rendezvous_from_slurm_variables(tmp_path):
    for name, text in STAND_INS.items():
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o755)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "ARGS_FILE": str(tmp_path / "args"),
           "PYTHON_BIN": "fakepython", "SLURM_JOB_NODELIST": "gpu-node-[07-08]",
           "SLURM_NNODES": "2", "SLURM_JOB_ID": "4242", "SLURM_GPUS_ON_NODE": "8",
           "SLURM_CPUS_PER_TASK": "32", "SLURM_SUBMIT_DIR": str(REPO)}
    proc = subprocess.run(["bash", str(REPO / "tools" / "slurm_train.sbatch"),
                           "configs/ssv2/lora.yaml", "train.epochs=3"],
                          env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    args = (tmp_path / "args").read_text().split("\n")[:-1]
    assert args == ["-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "8",
                    "--rdzv-backend", "c10d", "--rdzv-endpoint", "gpu-node-07:29500",
                    "--rdzv-id", "4242", "--max-restarts", "3", f"{REPO}/tools/train.py",
                    "configs/ssv2/lora.yaml", "output_dir=runs/lora-4242", "train.resume=auto",
                    "train.epochs=3"]
    assert (tmp_path / "args.env").read_text().split() == ["1", "4"]  # no shared store; 32/8 threads
