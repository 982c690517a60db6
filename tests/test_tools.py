"""The command-line tools end to end: the run folder (README.md, "What a run writes") file by
file, the results.json schema, one-line errors without tracebacks, a resumable frame study,
inference and LoRA merging."""
from __future__ import annotations

import csv
import importlib.util
import subprocess

import pytest
import torch
import yaml

from engine_fixtures import (REPO, python, read_json, tiny_set, tiny_settings,  # noqa: F401
                             tool_env, trained_run, write_yaml)

SCHEMA = {"dataset": str, "split": str, "num_videos": int, "num_failed": int, "views": dict,
          "fusion": str, "clip_top1": float, "clip_top5": float, "video_top1": float,
          "video_top5": float, "per_class_top1": dict, "params": dict, "gflops_per_view": float,
          "method": dict, "num_frames": int, "run_record": str}


def run_tool(name: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [python(), str(REPO / "tools" / f"{name}.py"), *map(str, args)]
    return subprocess.run(cmd, env=tool_env(), capture_output=True, text=True, timeout=600)


def load_tool(name: str):
    """A tool script as a module, to call its main(argv) in-process (fast)."""
    spec = importlib.util.spec_from_file_location(f"tool_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_main(name: str, argv: list[str]) -> int:
    from videopeft.engine.cli import run_main as cli_run_main
    with pytest.raises(SystemExit) as exit_info:
        cli_run_main(load_tool(name).main, argv)
    return exit_info.value.code


def error_lines(stderr: str) -> list[str]:
    """The `error:` lines of a tool's stderr (log lines may precede them), after no traceback."""
    assert "Traceback" not in stderr
    return [ln for ln in stderr.splitlines() if ln.startswith("error:")]


TRAINING = {"steps": int, "global_batch": int, "num_sample": int, "clips_per_step": int,
            "augment": str, "lr": float, "world_size": int}  # a training run's results only


def check_results_schema(results: dict, num_videos: int) -> None:
    if "training" in results:
        assert {k: type(v) for k, v in results.pop("training").items()} == TRAINING
    assert list(results) == list(SCHEMA)
    for key, kind in SCHEMA.items():
        assert isinstance(results[key], kind), (key, results[key])
    assert set(results["views"]) == {"temporal", "spatial"}
    assert set(results["params"]) == {"total", "trainable"}
    assert 0 < results["params"]["trainable"] < results["params"]["total"]
    assert results["fusion"] in ("softmax_mean", "logit_mean", "max")
    assert results["num_videos"] == num_videos and results["num_failed"] == 0
    assert all(0.0 <= results[k] <= 100.0 for k in ("clip_top1", "clip_top5", "video_top1",
                                                     "video_top5"))
    assert results["gflops_per_view"] > 0 and results["method"]["name"] == "lora"


# ----------------------------------------------------------------------------- train + eval

def test_train_and_eval_tools_write_the_whole_run_layout(tiny_set, tmp_path):
    run = tmp_path / "run"
    config = write_yaml(tmp_path / "tiny.yaml", tiny_settings(tiny_set, "unused"))
    proc = run_tool("train", config, f"output_dir={run}", "train.epochs=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"results: {run}/results.json" in proc.stdout

    # config.yaml: the resolved config, exactly as run
    from videopeft.config import load_config
    saved = load_config(run / "config.yaml")
    assert saved == load_config(config, [f"output_dir={run}", "train.epochs=2"])
    # log.jsonl: one JSON object per event, epochs counted from 1
    log = list(map(yaml.safe_load, (run / "log.jsonl").read_text().splitlines()))
    events = [e["event"] for e in log]
    assert events[0] == "setup" and events.count("train") == 6 and events.count("val") == 2
    assert {"efficiency", "test"} <= set(events)
    assert [e["epoch"] for e in log if e["event"] == "val"] == [1, 2]
    assert [e["epoch"] for e in log if e["event"] == "train"] == [1, 1, 1, 2, 2, 2]
    # the validation line says its protocol and that the final number will differ
    assert "epoch 1: val top-1 " in proc.stderr and ("(1 temporal x 1 spatial view, centre crop; "
                                                     "the final 2x3-view evaluation will differ)"
                                                     in proc.stderr)
    assert list(run.glob("events.out.tfevents*"))
    # checkpoints and the adapter
    from videopeft.engine.checkpoint import load_checkpoint
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 6
    best = load_checkpoint(run / "checkpoints" / "best.pt")["best"]
    assert (best["step"], best["epoch"]) in ((3, 1), (6, 2))
    from videopeft.peft import read_adapter_metadata
    # adapter.safetensors: the final state; adapter_best.safetensors: the best validation's
    assert read_adapter_metadata(run / "adapter_best.safetensors")["method"]["name"] == "lora"
    meta = read_adapter_metadata(run / "adapter.safetensors")
    assert meta["class_names"] == tiny_set.class_names and meta["sampling"]["num_frames"] == 4
    # results.json: the schema of README.md
    results = read_json(run / "results.json")
    assert "training" in results
    check_results_schema(results, num_videos=3)
    assert (results["views"], results["num_frames"]) == ({"temporal": 2, "spatial": 3}, 4)
    assert read_json(run / "manifest.json") == {}
    # run.json: the exact command line (tests/test_run_record.py checks every other field)
    assert results["run_record"] == "run.json"
    assert read_json(run / "run.json")["argv"] == [
        str(REPO / "tools" / "train.py"), str(config), f"output_dir={run}", "train.epochs=2"]
    for plot in ("loss", "lr", "accuracy", "confusion_matrix"):
        assert (run / "plots" / f"{plot}.png").stat().st_size > 1000
    rows = list(csv.DictReader((run / "predictions.csv").open()))
    assert len(rows) == 3 and {r["ok"] for r in rows} == {"1"}

    # eval of the final checkpoint reproduces the end-of-training evaluation exactly
    out = tmp_path / "eval"
    proc = run_tool("eval", config, f"checkpoint={run}/checkpoints/last.pt", f"output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"results: {out}/results.json" in proc.stdout
    assert read_json(out / "results.json") == results
    assert (out / "predictions.csv").read_text() == (run / "predictions.csv").read_text()
    assert (out / "plots" / "confusion_matrix.png").is_file() and (out / "manifest.json").is_file()
    assert read_json(out / "run.json")["argv"][1:] == [
        str(config), f"checkpoint={run}/checkpoints/last.pt", f"output_dir={out}"]


def test_a_config_error_is_one_line_on_stderr_and_exit_2(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("data:\n  layout: list\n  num_frame: 8\n")
    proc = run_tool("train", config)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: {config}:3: data.num_frame: unknown key (did you mean data.num_frames?) (keys of "
        f"data: layout, root, ")
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("make_args, message", [
    (lambda d, run: [str(d / "cfg.yaml"), f"checkpoint={d / 'missing.pt'}"], "checkpoint not found"),
    (lambda d, run: [str(d / "cfg.yaml")], "checkpoint: expected checkpoint=PATH"),
    (lambda d, run: [str(d / "cfg.yaml"), f"checkpoint={d / 'junk.pt'}"], "junk.pt"),
    (lambda d, run: [str(d / "cfg.yaml"), f"checkpoint={run / 'adapter.safetensors'}",
                     "model.overrides={depth: 3}"], "adapter.safetensors"),
])
def test_eval_input_errors_are_one_line(tiny_set, trained_run, tmp_path, capsys, make_args,
                                        message):
    write_yaml(tmp_path / "cfg.yaml", tiny_settings(tiny_set, tmp_path / "out"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert run_main("eval", make_args(tmp_path, trained_run)) == 2
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and message in err[0], err


# ----------------------------------------------------------------------------- frame study

def test_frame_study_runs_a_grid_and_a_rerun_skips_finished_cells(tiny_set, tmp_path, capsys,
                                                                  monkeypatch):
    config = write_yaml(tmp_path / "base.yaml", tiny_settings(
        tiny_set, tmp_path / "study", train={"epochs": 1, "eval_every": 0},
        eval={"views_temporal": 1, "views_spatial": 1}))
    argv = [str(config), "frames=[2,4]", "methods=[linear,lora]"]
    assert run_main("frame_study", argv) == 0
    study = tmp_path / "study"
    rows = list(csv.DictReader((study / "frame_study.csv").open()))
    assert [(r["method"], r["frames"]) for r in rows] == [
        ("linear", "2"), ("linear", "4"), ("lora", "2"), ("lora", "4")]
    assert all(float(r["clips_per_s"]) > 0 and float(r["peak_memory_mb"]) > 0 for r in rows)
    assert float(rows[0]["gflops_per_view"]) < float(rows[1]["gflops_per_view"])  # 2 < 4 frames
    assert (study / "frame_study.png").stat().st_size > 1000
    assert "| linear | 2 |" in (study / "frame_study.md").read_text()
    assert "frame_study.md" in capsys.readouterr().out

    import videopeft.studies.frame_study as frame_study

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr(frame_study, "train", must_not_run)
    before = (study / "lora-f4-s0" / "results.json").stat().st_mtime_ns
    assert run_main("frame_study", argv) == 0
    assert (study / "lora-f4-s0" / "results.json").stat().st_mtime_ns == before


# ----------------------------------------------------------------------------- infer and merge

def test_infer_prints_the_top_k_labels(tiny_set, trained_run, capsys):
    from videopeft.engine.infer import infer

    video = next(v.path for v in tiny_set.videos if v.split == "val")
    top = infer(video, trained_run / "adapter.safetensors", topk=2)
    assert len(top) == 2 and all(label in tiny_set.class_names for label, _ in top)
    assert top[0][1] >= top[1][1] and 0.0 < sum(s for _, s in top) <= 1.0 + 1e-6

    assert run_main("infer", [video, "--adapter", str(trained_run / "adapter.safetensors"),
                              "--topk", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{video}:" and len(out) == 4 and out[1].split()[1] == top[0][0]


def test_infer_on_an_unreadable_video_is_one_line(trained_run, tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    assert run_main("infer", [str(bad), "--adapter", str(trained_run / "adapter.safetensors")]) == 2
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and err[0].startswith(f"error: {bad}: cannot decode"), err


def test_merged_lora_checkpoint_evaluates_like_the_adapter(tiny_set, trained_run, tmp_path,
                                                           capsys):
    merged = tmp_path / "merged.pth"
    assert run_main("merge", ["--adapter", str(trained_run / "adapter.safetensors"),
                              "--out", str(merged)]) == 0
    assert str(merged) in capsys.readouterr().out

    from videopeft.engine.evaluate import evaluate
    from engine_fixtures import tiny_config
    a = evaluate(tiny_config(tiny_set, tmp_path / "a"), checkpoint=trained_run / "adapter.safetensors",
                 progress=False)
    b = evaluate(tiny_config(tiny_set, tmp_path / "b"), checkpoint=merged, progress=False)
    assert (a["video_top1"], a["clip_top1"]) == (b["video_top1"], b["clip_top1"])
    pa = [r["pred"] for r in csv.DictReader((tmp_path / "a" / "predictions.csv").open())]
    pb = [r["pred"] for r in csv.DictReader((tmp_path / "b" / "predictions.csv").open())]
    assert pa == pb
    # the merged file is a plain model: no LoRA or BatchNorm-head tensors left
    state = torch.load(merged, weights_only=True)["model"]
    assert not any("lora" in k or k.startswith("head.bn") for k in state)


def test_merging_a_method_without_a_plain_form_is_refused(tiny_set, tmp_path, capsys):
    from videopeft.engine.train import train
    from engine_fixtures import tiny_config

    run = tmp_path / "vpt"
    train(tiny_config(tiny_set, run, method={"name": "vpt", "num_prompts": 2},
                      train={"epochs": 1, "eval_every": 0},
                      eval={"views_temporal": 1, "views_spatial": 1}))
    assert run_main("merge", ["--adapter", str(run / "adapter.safetensors"),
                              "--out", str(tmp_path / "m.pth")]) == 2
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "method 'vpt'" in err[0] and "no slot" in err[0], err
