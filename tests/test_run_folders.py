"""Nothing lost, every mistake one line (README.md, "Run folders" and "Exit status"), as a user
meets them on the command line: an evaluation never writes into a training run, training never
into another run's folder (unless --overwrite, which moves it aside), a frame study re-run with
other settings is refused naming the key, Ctrl-C says how to continue, a run that stopped before
its first checkpoint leaves a folder a re-run reuses, and each input mistake is one `error:`
line, exit status 2, before torch is even imported.

The subprocess cases that refuse before any work run with a `torch` that cannot be imported: an
answer that needed torch would show up as a traceback.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from engine_fixtures import (REPO, python, read_json, tiny_config, tiny_set,  # noqa: F401
                             tiny_settings, tool_env, write_yaml)

QUICK = dict(train={"epochs": 1, "eval_every": 0}, eval={"views_temporal": 1, "views_spatial": 1})


def run_tool(name: str, *args, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [python(), str(REPO / "tools" / f"{name}.py"), *map(str, args)]
    return subprocess.run(cmd, env=env or tool_env(), capture_output=True, text=True, timeout=300)


def hashes(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under `folder`."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The whole stderr of a refused command: exactly one `error:` line, no traceback."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.fixture(scope="module")
def finished_run(tiny_set, tmp_path_factory) -> tuple[Path, Path]:
    """(a finished tiny training run's folder, a config file of the same settings)."""
    from videopeft.engine.train import train

    folder = tmp_path_factory.mktemp("runs")
    run = folder / "run"
    train(tiny_config(tiny_set, run, **QUICK))
    config = write_yaml(folder / "tiny.yaml", tiny_settings(tiny_set, "unused", **QUICK))
    return run, config


@pytest.fixture(scope="module")
def no_torch_env(tmp_path_factory) -> dict:
    """The tools' environment with a `torch` package whose import fails loudly."""
    fake = tmp_path_factory.mktemp("no_torch") / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise RuntimeError('torch was imported')\n")
    env = tool_env()
    env["PYTHONPATH"] = f"{fake.parent}:{env['PYTHONPATH']}"
    return env


# ----------------------------------------------------------------------------- evaluation

@pytest.mark.slow  # one evaluation subprocess, ~6 s on 2 shared cores
def test_eval_of_a_training_runs_config_changes_no_file_of_the_run(finished_run, capsys):
    run, _ = finished_run
    before = hashes(run)
    proc = run_tool("eval", run / "config.yaml", f"checkpoint={run}/checkpoints/best.pt")
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = hashes(run)
    assert {path: after[path] for path in before} == before  # byte-identical, every file
    added = sorted(set(after) - set(before))
    folders = {Path(path).parts[0] for path in added}
    assert len(folders) == 1 and folders.pop().startswith("eval-")  # RUN/eval-<time>/
    assert {"results.json", "predictions.csv", "run.json", "config.yaml", "manifest.json"} <= \
        {Path(path).name for path in added}
    assert f"results: {run}/eval-" in proc.stdout

    # an evaluation told to write into the training run is refused before any work
    from videopeft.cli import main
    from videopeft.engine.cli import run_main
    with pytest.raises(SystemExit) as stop:
        run_main(main, ["eval", str(run / "config.yaml"), f"checkpoint={run}/adapter.safetensors",
                        f"output_dir={run}"])
    assert stop.value.code == 2
    assert capsys.readouterr().err == (f"error: {run}: holds a training run (finished); an "
                                       f"evaluation writes a folder of its own: choose another "
                                       f"output_dir\n")
    assert hashes(run) == after


# ----------------------------------------------------------------------------- training

@pytest.mark.slow  # one training subprocess, ~7 s on 2 shared cores
def test_training_into_another_runs_folder_is_refused_and_overwrite_moves_it_aside(
        finished_run, tmp_path, no_torch_env):
    run, config = finished_run
    victim = tmp_path / "victim"
    shutil.copytree(run, victim)
    before = hashes(victim)

    proc = run_tool("train", config, f"output_dir={victim}", "train.lr=0.5", env=no_torch_env)
    assert one_error_line(proc) == (
        f"error: {victim}: holds another run (finished; train.lr changed); choose another "
        f"output_dir, or pass --overwrite to move its contents aside (nothing is deleted)")
    assert hashes(victim) == before and sorted(tmp_path.iterdir()) == [victim]

    proc = run_tool("train", config, f"output_dir={victim}", "train.lr=0.5", "--overwrite")
    assert proc.returncode == 0, proc.stderr[-3000:]
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("victim.old-")]
    assert len(moved) == 1 and hashes(moved[0]) == before  # the old run, whole, under a new name
    assert f"moved the old contents of {victim} to {moved[0]}" in proc.stderr
    assert read_json(victim / "run.json")["finished"] is True
    from videopeft.config import load_config
    assert load_config(victim / "config.yaml").train.lr == 0.5


def test_the_same_run_again_needs_resume_auto_and_another_method_is_named(finished_run, capsys):
    """In-process (the refusal needs no torch): the same settings without train.resume, and
    another method, each one line naming what to do or what changed."""
    from videopeft.cli import main
    from videopeft.engine.cli import run_main

    run, config = finished_run
    before = hashes(run)
    same = (f"error: {run}: holds this run already (finished); add train.resume=auto to "
            f"continue it, choose another output_dir, or pass --overwrite to move its "
            f"contents aside (nothing is deleted)")
    for extra, expected in (
            ([], same),
            # how the machine runs it is not another run: the clips do not depend on the workers
            (["data.workers=3", "data.decode_threads=2", "train.log_every=7"], same),
            (["method.name=vpt"], f"error: {run}: holds another run (finished; method.name "
                                  f"changed); choose another output_dir")):
        with pytest.raises(SystemExit) as stop:
            run_main(main, ["train", str(config), f"output_dir={run}", *extra])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.count("\n") == 1 and err.startswith(expected), err
    assert hashes(run) == before


def test_ctrl_c_prints_the_command_that_continues_the_run(tiny_set, tmp_path, capsys,
                                                          monkeypatch):
    """Ctrl-C after the first epoch: exit 130, one line with the exact command (output_dir and
    train.resume=auto); that command finishes the run from the checkpoint."""
    from videopeft.cli import main
    from videopeft.engine import train as train_module
    from videopeft.engine.cli import run_main

    config = write_yaml(tmp_path / "tiny.yaml", tiny_settings(
        tiny_set, "unused", train={"epochs": 2, "eval_every": 0},
        eval={"views_temporal": 1, "views_spatial": 1}))
    run = tmp_path / "run"
    end_epoch = train_module.Recipe._end_epoch

    def stop_after_first_epoch(self, epoch):
        end_epoch(self, epoch)
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module.Recipe, "_end_epoch", stop_after_first_epoch)
    with pytest.raises(SystemExit) as stop:
        run_main(main, ["train", str(config), f"output_dir={run}"])
    assert stop.value.code == 130
    command = f"videopeft train {config} output_dir={run} train.resume=auto"
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: interrupted (last checkpoint at step 3 in {run}); continue with: {command}")
    record = read_json(run / "run.json")
    assert (record["finished"], record["error"]) == (False, "interrupted")

    monkeypatch.undo()
    with pytest.raises(SystemExit) as stop:
        run_main(main, shlex.split(command)[1:])
    assert stop.value.code == 0
    events = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["event"] == "resume"] == [3]
    assert max(e["step"] for e in events) == 6 and read_json(run / "run.json")["finished"]


def test_a_run_that_stops_before_its_first_checkpoint_leaves_a_folder_a_rerun_reuses(
        tiny_set, tmp_path, monkeypatch):
    from videopeft.engine.tasks import ClassificationTask
    from videopeft.engine.train import train
    from videopeft.errors import CheckpointError

    def bad_weights(self, cfg, class_names):
        raise CheckpointError("weights.pth: unreadable checkpoint")

    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(ClassificationTask, "build", bad_weights)
        with pytest.raises(CheckpointError):
            train(tiny_config(tiny_set, run, **QUICK))
    record = read_json(run / "run.json")
    assert (record["finished"], record["error"]) == (False, "weights.pth: unreadable checkpoint")
    assert not list(run.glob("checkpoints/*.pt"))

    train(tiny_config(tiny_set, run, method={"name": "linear"}, **QUICK))  # other settings too
    assert read_json(run / "run.json")["finished"] is True
    events = [json.loads(line)["event"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert events.count("setup") == 1  # the failed attempt's lines are gone from the log


# ----------------------------------------------------------------------------- frame study

def test_a_frame_study_rerun_with_other_settings_is_refused_naming_the_key(tiny_set, tmp_path,
                                                                          no_torch_env):
    from videopeft.config import load_config
    from videopeft.studies.frame_study import run_frame_study

    study = tmp_path / "study"
    config = write_yaml(tmp_path / "base.yaml", tiny_settings(tiny_set, study, **QUICK))
    run_frame_study(load_config(config), [2], ["linear"], out_dir=study)
    before = hashes(study)
    proc = run_tool("frame_study", config, "frames=[2]", "methods=[linear]", "train.lr=0.5",
                    env=no_torch_env)
    assert one_error_line(proc) == (
        f"error: {study}: cells linear-f2-s0 were run with other settings (train.lr changed); "
        f"choose another output_dir, or pass --overwrite to move the study aside (nothing is "
        f"deleted)")
    assert hashes(study) == before


# ----------------------------------------------------------------------------- input mistakes

def _mistakes(tiny, tmp: Path) -> dict[str, tuple[str, list, str]]:
    """{case: (tool, arguments, what its one error line says)}."""
    config = write_yaml(tmp / "tiny.yaml", tiny_settings(tiny, tmp / "out", **QUICK))
    listed = tmp / "listed"
    shutil.copytree(tiny.annotation, listed)
    with (listed / "train.txt").open("a") as f:
        f.write("gone.mp4 1\n")
    named = tmp / "named"
    shutil.copytree(tiny.annotation, named)
    (named / "val.txt").write_text("v00000.mp4 move_rihgt\n")
    empty = tmp / "no_videos"
    empty.mkdir()
    return {
        "unknown model name": ("train", [config, "model.name=videomae_bse"],
                               "model.name: expected one of ['videomae_tiny', 'videomae_small', "
                               "'videomae_base', 'videomae_large', 'videomae_huge'], got "
                               "'videomae_bse' (did you mean videomae_base?)"),
        "frames vs tubelet": ("train", [config, "data.num_frames=5"],
                              "data.num_frames: expected a multiple of model.tubelet_size=2, "
                              "got 5"),
        "size vs patch": ("train", [config, "data.img_size=40"],
                          "data.img_size: expected a multiple of model.patch_size=16, got 40"),
        "lr not a number": ("train", [config, "train.lr=fast"],
                            "train.lr: expected float, got 'fast'"),
        "unknown key in a section": ("train", [config, "data.num_frame=4"],
                                     "data.num_frame: unknown key (did you mean data.num_frames?) "
                                     "(keys of data: layout, root, annotation,"),
        "command-line typo": ("train", [config, "trian.lr=0.1"],
                              "command line: trian.lr: unknown key (did you mean train.lr?)"),
        "layout vs folder": ("train", [config, "data.layout=ssv2"],
                             "something-something-v2-labels.json: annotation file not found for "
                             "layout ssv2; the folder holds classes.txt, train.txt, val.txt: "
                             "layout list?"),
        "missing listed file": ("train", [config, f"data.annotation={listed}",
                                          "data.on_missing=error"],
                                "data.on_missing: split 'train' at "),
        "unknown class name": ("train", [config, f"data.annotation={named}"],
                               "val.txt:1: label 'move_rihgt' is not a class of "),
        "eval checkpoint missing": ("eval", [config, f"checkpoint={tmp / 'nope.pt'}"],
                                    f"{tmp / 'nope.pt'}: checkpoint not found"),
        "check_videos target missing": ("check_videos", [tmp / "nothing"],
                                        f"{tmp / 'nothing'}: no such annotation file or folder"),
        "check_videos no video": ("check_videos", [empty], f"{empty}: no video files found"),
    }


def test_each_input_mistake_is_one_error_line_exit_2_before_torch(tiny_set, tmp_path,
                                                                  no_torch_env):
    """Every case as its own process with an unimportable torch: exit 2, stderr one `error:`
    line saying what is wrong, nothing written."""
    for case, (tool, args, expected) in _mistakes(tiny_set, tmp_path).items():
        proc = run_tool(tool, *args, env=no_torch_env)
        line = one_error_line(proc)
        assert expected in line, (case, line)
        assert proc.stdout == "", case
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- what runs say

def test_eval_uses_the_backbone_training_recorded_and_warns_at_another_clip(tiny_set, tmp_path,
                                                                           caplog):
    """An adapter trained on backbone weights evaluates with a config that names none (as
    `infer` does: the adapter's record), and says so when asked for other frames."""
    import torch

    import videopeft
    from videopeft.engine.evaluate import evaluate
    from videopeft.engine.train import train
    from videopeft.models.checkpoints import save_pretrained

    torch.manual_seed(7)
    weights = tmp_path / "backbone.safetensors"
    save_pretrained(videopeft.create_model("videomae_tiny", num_classes=0, num_frames=4,
                                           img_size=32), weights)
    train(tiny_config(tiny_set, tmp_path / "run", model={"name": "videomae_tiny",
                                                         "pretrained": str(weights)}, **QUICK))
    caplog.set_level(logging.INFO, logger="videopeft")
    result = evaluate(tiny_config(tiny_set, tmp_path / "eval", data={"num_frames": 2}, **QUICK),
                      checkpoint=tmp_path / "run" / "adapter.safetensors", progress=False)
    assert result["num_videos"] == 3 and result["num_frames"] == 2
    text = caplog.text
    assert f"backbone {weights}, as in training" in text
    assert "trained on clips of 4 frames x 32 px and is evaluated at 2 x 32" in text


def test_data_surprises_are_warned_once_up_front(tiny_set, tmp_path, caplog):
    """Missing files (count, the first few) and videos shorter than a clip's span, per split."""
    from videopeft.config import DataConfig
    from videopeft.data.preflight import SHOWN_MISSING, check_data

    listed = tmp_path / "listed"
    shutil.copytree(tiny_set.annotation, listed)
    with (listed / "train.txt").open("a") as f:
        f.writelines(f"gone{i}.mp4 1\n" for i in range(SHOWN_MISSING + 2))
    data = DataConfig(layout="list", root=tiny_set.root, annotation=str(listed), num_frames=16)
    caplog.set_level(logging.WARNING, logger="videopeft")
    found = check_data(data, {"train": True, "val": False})
    assert len(found["train"].records) == 9 and len(found["train"].missing) == SHOWN_MISSING + 2
    warned = [r.getMessage() for r in caplog.records]
    assert warned[0].startswith(f"train: {SHOWN_MISSING + 2} of the 14 videos it lists are not on "
                                f"disk ({tiny_set.root}/gone0.mp4, ")
    assert "and 2 more): left out of training" in warned[0]
    # the tiny set's videos have 8 to 12 frames: every one is shorter than 16
    assert warned[1] == ("train: 9 of the 9 videos whose length is known are shorter than a "
                         "clip's span of 16 frames: their frames repeat (data.short_video: "
                         "repeat_last)")
    assert len(warned) == 3 and warned[2].startswith("val: 3 of the 3 videos")


def test_the_readme_documents_the_list_format_the_folder_rules_and_the_exit_codes():
    from videopeft.data.annotations import LIST_FORMAT
    from videopeft.run_folder import NOT_COMPARED

    readme = (REPO / "README.md").read_text()
    assert LIST_FORMAT in readme.split("### List files", 1)[1]
    rules = readme.split("### Run folders", 1)[1].split("### Exit status", 1)[0]
    assert all(f"`{key}`" in rules for key in NOT_COMPARED)
    assert "train.resume=auto" in rules and "--overwrite" in rules and "eval-<time>" in rules
    codes = readme.split("### Exit status", 1)[1].split("###", 1)[0]
    assert [f"| {code} |" in codes for code in (0, 1, 2, 130)] == [True] * 4
