"""Kill -9 mid-training, then `resume: auto`: the run ends exactly like one never interrupted.

`tools/train.py` runs in a subprocess through a small wrapper that SIGKILLs its own process at
a chosen point of the checkpoint code (deterministic, unlike a timer):

    tmp:N    inside `atomic_save` of step_N.pt: half the bytes are in the hidden temporary,
             fsync'ed, and the process dies before `os.replace` (a torn write);
    after:N  right after step_N.pt and last.pt are complete (a kill between two steps);
    link:N   inside the `last.pt` update for step N: the temporary hard link exists, the
             process dies before `os.replace`.

One run is killed three times in a row (tmp:2, after:3, link:4), resumed each time with
`train.resume=auto`, and finishes; a second run is SIGKILLed from outside by the test as soon as
its first checkpoint file appears (an arbitrary point), and resumed. Each time, the final
adapter.safetensors tensors, last.pt trainable tensors and results.json equal an uninterrupted
run's bit for bit; every resume starts from the newest *complete* step file; no temporary is
ever loaded and none is left at the end.
"""
from __future__ import annotations

import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from engine_fixtures import (REPO, python, read_json, tiny_set, tiny_settings,  # noqa: F401
                             tool_env, write_yaml)
from videopeft.engine.logging import read_jsonl

pytestmark = [pytest.mark.slow,  # 7 tool subprocesses, ~35 s on 2 shared cores
              pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")]

WRAPPER = textwrap.dedent('''
    """tools/train.py, with SIGKILL injected into the checkpoint code per $VP_KILL_AT."""
    import io, os, re, runpy, signal, sys
    from pathlib import Path

    sys.path.insert(0, os.environ["VP_REPO"])
    import torch
    from videopeft import io as vio
    from videopeft.engine import checkpoint as ck

    kind, _, step = os.environ.get("VP_KILL_AT", ":").partition(":")
    step = int(step or -1)

    def die():
        sys.stdout.flush(); sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    def step_of(path):
        m = re.match(r"^step_(\\d+)\\.pt$", Path(path).name)
        return int(m.group(1)) if m else None

    real_save, real_link = ck.atomic_save, ck.atomic_link
    real_manager_save = ck.CheckpointManager.save

    def atomic_save(obj, path):
        if kind == "tmp" and step_of(path) == step:
            buf = io.BytesIO()
            torch.save(obj, buf)
            data = buf.getvalue()
            tmp = vio._tmp_path(Path(path))
            with open(tmp, "wb") as f:  # half a checkpoint, then death before os.replace
                f.write(data[: len(data) // 2])
                f.flush()
                os.fsync(f.fileno())
            die()
        return real_save(obj, path)

    def atomic_link(src, dst):
        if kind == "link" and step_of(src) == step and Path(dst).name == "last.pt":
            tmp = vio._tmp_path(Path(dst))
            os.link(src, tmp)
            die()
        return real_link(src, dst)

    def manager_save(self, state, at_step):
        out = real_manager_save(self, state, at_step)
        if kind == "after" and at_step == step:
            die()
        return out

    ck.atomic_save, ck.atomic_link = atomic_save, atomic_link
    ck.CheckpointManager.save = manager_save
    sys.argv = [str(Path(os.environ["VP_REPO"]) / "tools" / "train.py")] + sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
''')

STEPS = 6  # 9 train videos, batch 3, 2 epochs
KILLS = [("tmp", 2), ("after", 3), ("link", 4)]


def _train(wrapper: Path, config: Path, out: Path,
           kill_at: str = "") -> subprocess.CompletedProcess:
    env = tool_env()
    env["VP_REPO"] = str(REPO)
    env["VP_KILL_AT"] = kill_at
    cmd = [python(), str(wrapper), str(config), f"output_dir={out}"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _adapter(run: Path) -> dict:
    from safetensors.torch import load_file
    return load_file(str(run / "adapter.safetensors"))


def _step_files(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").glob("step_*.pt"))


def _temporaries(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").glob(".*.tmp-*"))


@pytest.fixture(scope="module")
def kill_setup(tiny_set, tmp_path_factory) -> tuple[Path, Path, Path]:
    """(wrapper script, config, the uninterrupted run's folder)."""
    folder = tmp_path_factory.mktemp("kill")
    wrapper = folder / "killable_train.py"
    wrapper.write_text(WRAPPER)
    settings = tiny_settings(tiny_set, "unused",
                             model={"name": "videomae_tiny", "drop_path_rate": 0.1},
                             train={"save_every_steps": 1, "keep_last": 3, "resume": "auto",
                                    "eval_every": 0},
                             eval={"views_temporal": 1, "views_spatial": 1})
    config = write_yaml(folder / "tiny.yaml", settings)
    straight = folder / "straight"
    proc = _train(wrapper, config, straight)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return wrapper, config, straight


def _assert_same_final_state(straight: Path, run: Path) -> None:
    import torch
    from videopeft.engine.checkpoint import load_checkpoint

    assert _temporaries(run) == []
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == STEPS
    a, b = _adapter(straight), _adapter(run)
    assert a.keys() == b.keys() and any("lora" in k for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ca = load_checkpoint(straight / "checkpoints" / "last.pt")
    cb = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ca["model"].keys() == cb["model"].keys()
    for key in ca["model"]:
        assert torch.equal(ca["model"][key], cb["model"][key]), key
    assert read_json(straight / "results.json") == read_json(run / "results.json")


def test_sigkill_at_three_points_then_resume_auto_equals_the_uninterrupted_run(kill_setup,
                                                                               tmp_path):
    from videopeft.engine.checkpoint import load_checkpoint

    wrapper, config, straight = kill_setup
    run = tmp_path / "killed"
    # 1. torn write of step 2: a half temporary, no step_2 file; step 1 is the newest complete
    proc = _train(wrapper, config, run, "tmp:2")
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert _step_files(run) == ["step_00000001.pt"]
    assert [t.startswith(".step_00000002.tmp-") for t in _temporaries(run)] == [True]
    assert not (run / "results.json").exists()
    # 2. killed between steps, right after step 3 is complete (the stale temporary is removed)
    proc = _train(wrapper, config, run, "after:3")
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert _temporaries(run) == []
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 3
    # 3. killed inside the last.pt update of step 4: step_4 complete, last.pt still step 3
    proc = _train(wrapper, config, run, "link:4")
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert "step_00000004.pt" in _step_files(run)
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 3
    assert [t.startswith(".last.tmp-") for t in _temporaries(run)] == [True]
    # 4. the final resume runs to the end
    proc = _train(wrapper, config, run)
    assert proc.returncode == 0, proc.stderr[-3000:]

    # every resume started at the newest complete step file, never at a temporary
    resumes = [e for e in read_jsonl(run / "log.jsonl") if e["event"] == "resume"]
    assert [e["step"] for e in resumes] == [1, 3, 4]
    assert all(Path(e["checkpoint"]).name.startswith("step_") for e in resumes)
    _assert_same_final_state(straight, run)


def test_external_sigkill_once_the_first_checkpoint_appears_then_resume_auto(kill_setup,
                                                                             tmp_path):
    """The parent kills the training process from outside as soon as step_00000001.pt exists
    (wherever the child then is: in step 2, or writing its checkpoint), then resumes."""
    wrapper, config, straight = kill_setup
    run = tmp_path / "killed"
    env = tool_env()
    env["VP_REPO"], env["VP_KILL_AT"] = str(REPO), ""
    child = subprocess.Popen([python(), str(wrapper), str(config), f"output_dir={run}"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = run / "checkpoints" / "step_00000001.pt"
    deadline = time.monotonic() + 240
    try:
        while not first.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        child.send_signal(signal.SIGKILL)
    finally:
        _, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, err[-3000:]  # killed, not finished
    assert not (run / "results.json").exists()

    proc = _train(wrapper, config, run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumes = [e for e in read_jsonl(run / "log.jsonl") if e["event"] == "resume"]
    assert len(resumes) == 1 and resumes[0]["step"] >= 1
    print(f"\nexternal SIGKILL: resumed from {Path(resumes[0]['checkpoint']).name}")
    _assert_same_final_state(straight, run)
