"""run.json, the reproducibility record: every field says what made the run (code, libraries,
device, command line, data), and the per-split counts add up across DataLoader worker processes.
"""
from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import videopeft
from data_fixtures import synthetic_sets  # noqa: F401  (a fixture)
from engine_fixtures import REPO, read_json, tiny_config, tiny_set  # noqa: F401
from videopeft.data.annotations import annotation_files, read_annotations
from videopeft.data.decoders import available_backends
from videopeft.data.manifest import Manifest, sum_decode_counts
from videopeft.engine import machine
from videopeft.engine.evaluate import evaluate
from videopeft.engine.logging import read_jsonl
from videopeft.engine.machine import cpu_name, source_version
from videopeft.engine.run_record import RUN_RECORD_KEYS
from videopeft.engine.train import train


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                              check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


def _with_bad_val_videos(dataset, folder: Path) -> Path:
    """A copy of the tiny set's list annotation whose val split also lists a missing file and an
    undecodable one (val: 3 good + 2 bad; train unchanged)."""
    ann = folder / "annotations"
    shutil.copytree(dataset.annotation, ann)
    junk = folder / "junk.mp4"
    junk.write_bytes(b"\x00" * 256)
    with (ann / "val.txt").open("a") as f:
        f.write(f"{folder / 'missing.mp4'} 0\n{junk} 1\n")
    return ann


def test_a_training_run_records_code_libraries_device_command_and_data(tiny_set, tmp_path):
    ann = _with_bad_val_videos(tiny_set, tmp_path)
    run = tmp_path / "run"
    cfg = tiny_config(tiny_set, run, data={"annotation": str(ann), "workers": 1},
                      train={"epochs": 2, "eval_every": 1},
                      eval={"views_temporal": 1, "views_spatial": 1})
    results = train(cfg)
    record = read_json(run / "run.json")

    assert list(record) == list(RUN_RECORD_KEYS)
    assert read_json(run / "results.json")["run_record"] == "run.json"
    # the code: version, and the commit with its dirty flag because this runs from a checkout
    head, status = _git("rev-parse", "HEAD"), _git("status", "--porcelain")
    assert record["videopeft"] == {"version": videopeft.__version__,
                                   "commit": head.strip() if head else None,
                                   "dirty": bool(status.strip()) if head else None}
    # the software and the machine
    assert record["python"] == platform.python_version()
    assert record["platform"] == platform.platform()
    assert {"torch", "timm", "decord", "av", "transformers"} <= set(record["libraries"])
    for name, version in record["libraries"].items():
        try:
            assert version == importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            assert version is None
    assert (record["device"], record["device_name"], record["world_size"]) == (
        "cpu", cpu_name(), 1)
    # the command line, where it ran, when, and that it finished
    assert (record["argv"], record["cwd"]) == (sys.argv, os.getcwd())
    started = datetime.datetime.strptime(record["started"], "%Y-%m-%dT%H:%M:%S%z")
    ended = datetime.datetime.strptime(record["ended"], "%Y-%m-%dT%H:%M:%S%z")
    assert started <= ended and record["finished"] is True

    # the data, per split: which annotation files (sha256), videos listed / present / failed
    splits = record["splits"]
    assert list(splits) == ["train", "val"]
    for split in ("train", "val"):
        assert splits[split]["annotation"] == {
            str(ann / f"{split}.txt"): _sha256(ann / f"{split}.txt"),
            str(ann / "classes.txt"): _sha256(ann / "classes.txt")}
    assert splits["train"]["videos"] == {"listed": 9, "present": 9, "failed": 0}
    assert splits["val"]["videos"] == {"listed": 5, "present": 4, "failed": 2}
    assert results["num_failed"] == 2 and len(read_json(run / "manifest.json")["val"]) == 2
    # every successful decode, counted in the DataLoader worker processes that did it: train
    # 2 epochs x 3 steps x 3 clips; val 3 good videos per validation pass and in the final test
    decodes = {split: splits[split]["decodes"] for split in splits}
    assert set(decodes["train"]) | set(decodes["val"]) <= set(available_backends())
    val_passes = sum(e["event"] == "val" for e in read_jsonl(run / "log.jsonl")) + 1
    assert sum(decodes["train"].values()) == 18
    assert sum(decodes["val"].values()) == 3 * val_passes

    # an evaluation of that run records its own run (only the split it read)
    out = tmp_path / "eval"
    evaluate(cfg, checkpoint=run / "adapter.safetensors", output_dir=out, progress=False)
    eval_record = read_json(out / "run.json")
    assert list(eval_record) == list(RUN_RECORD_KEYS) and eval_record["finished"] is True
    assert list(eval_record["splits"]) == ["val"]
    assert eval_record["splits"]["val"]["videos"] == splits["val"]["videos"]
    assert sum(eval_record["splits"]["val"]["decodes"].values()) == 3


def test_a_run_that_fails_keeps_its_record_marked_unfinished(tiny_set, tmp_path, monkeypatch):
    import videopeft.engine.train as train_module

    def fail(self):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(train_module.Recipe, "train", fail)
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="injected"):
        train(tiny_config(tiny_set, run))
    record = read_json(run / "run.json")
    assert record["finished"] is False and record["ended"] is not None
    assert record["splits"]["train"]["videos"] == {"listed": 9, "present": 9, "failed": 0}


def _count_in_child(manifest: Manifest, n: int) -> None:
    for _ in range(n):
        manifest.count_decode("train", "pyav")


def test_decode_counts_from_forked_processes_add_up(tmp_path):
    manifest = Manifest(tmp_path / "spool")
    manifest.count_decode("train", "decord")  # the parent's own count is not copied into children
    ctx = multiprocessing.get_context("fork")
    children = [ctx.Process(target=_count_in_child, args=(manifest, n)) for n in (3, 4)]
    for child in children:
        child.start()
    for child in children:
        child.join()
        assert child.exitcode == 0
    records = manifest.decode_records()
    assert len(records) == 3  # one file per counting process
    assert sum_decode_counts(records) == {"train": {"decord": 1, "pyav": 7}}


def test_a_spool_that_cannot_be_written_never_breaks_a_decode(tmp_path, caplog):
    manifest = Manifest(tmp_path / "spool")
    shutil.rmtree(tmp_path / "spool")
    for _ in range(3):
        manifest.count_decode("train", "pyav")  # no exception: the decode it counts stands
    assert sum("decode counts stop" in r.getMessage() for r in caplog.records) == 1


def test_source_version_outside_a_checkout_has_no_commit(tmp_path, monkeypatch):
    package = tmp_path / "site-packages" / "videopeft"
    package.mkdir(parents=True)
    monkeypatch.setattr(machine.videopeft, "__file__", str(package / "__init__.py"))
    assert source_version() == {"version": videopeft.__version__, "commit": None, "dirty": None}


@pytest.mark.parametrize("layout", ["ssv2", "hmdb51", "kinetics", "list"])
@pytest.mark.parametrize("split", ["train", "val"])
def test_annotation_files_are_the_files_the_reader_reads(synthetic_sets, layout, split,
                                                        monkeypatch):
    info = synthetic_sets[layout]
    opened: set[Path] = set()
    real_read_text, real_open = Path.read_text, Path.open

    def read_text(self, *args, **kwargs):
        opened.add(self)
        return real_read_text(self, *args, **kwargs)

    def open_(self, *args, **kwargs):
        opened.add(self)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    monkeypatch.setattr(Path, "open", open_)
    read_annotations(layout, info.root, info.annotation, split)
    monkeypatch.undo()
    files = annotation_files(layout, info.root, info.annotation, split)
    assert files and set(files) == {p for p in opened if p.is_file()}


def test_run_json_keys_are_documented_in_the_readme():
    readme = (REPO / "README.md").read_text()
    section = readme.split("run.json", 1)[1]
    missing = [key for key in RUN_RECORD_KEYS if f"`{key}`" not in section]
    assert missing == []

