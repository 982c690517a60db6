"""The bad-video zoo end to end: training over a set that contains it runs to the end, every bad
file is in manifest.json with its error (or, when it decodes, in its "warnings" list), and the
final evaluation counts the undecodable validation files in `num_failed`, scores the rest and
never scores a failed video or puts another video in its place. Once per installed backend and
with `auto`.

The set: 12 good videos (3 classes; 9 train, 3 val) plus the 8-file zoo in each split (zero-byte,
truncated mid-stream, garbage bytes, missing, one-frame, audio-only, wrong extension, no read
permission): 16 zoo files. As an MP4 `list` set, 5 per split fail with every backend
(no_permission decodes when running as root and is then a warning, else a failure) and the rest
are warnings. The missing training file is left out up front (`data.on_missing: skip`); batch 1
and 2 epochs, so every other training file is drawn (the sampler only drops a last partial
batch) - 32 steps. The missing validation file is counted as failed, as evaluation never drops
a listed video.
"""
from __future__ import annotations

import csv

import pytest

from engine_fixtures import read_json, tiny_config
from videopeft.data.decoders import available_backends
from videopeft.data.synthetic import write_synthetic

BACKENDS = [*available_backends(), "auto"]
EPOCHS, TRAIN_GOOD, VAL_GOOD, ZOO_PER_SPLIT = 2, 9, 3, 8
_SET: dict = {}


@pytest.fixture(scope="module")
def zoo_set(tmp_path_factory):
    if "set" not in _SET:
        _SET["set"] = write_synthetic(tmp_path_factory.mktemp("zoo_set"), "list", videos=12,
                                      num_classes=3, seed=0, size=32, frames_range=(8, 12),
                                      bad_zoo=True, progress=False)
    return _SET["set"]


def _expected(info, split: str, backend: str) -> tuple[set[str], set[str]]:
    """(paths that must fail, paths that must decode with a warning) per bad_zoo.json."""
    failed = {z["path"] for z in info.zoo if z["split"] == split
              and (z["expect"] == "fail" or backend in z["fails_with"])}
    warned = {z["path"] for z in info.zoo if z["split"] == split} - failed
    return failed, warned


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_and_evaluation_over_the_bad_zoo(zoo_set, tmp_path, backend):
    from videopeft.engine.checkpoint import load_checkpoint
    from videopeft.engine.train import train

    assert len(zoo_set.zoo) == 2 * ZOO_PER_SPLIT
    run = tmp_path / "run"
    cfg = tiny_config(zoo_set, run, method={"name": "lora", "rank": 4, "head_bn": False},
                      data={"backend": backend},
                      train={"batch_size": 1, "epochs": EPOCHS, "eval_every": 0,
                             "log_every": 17},
                      eval={"views_temporal": 1, "views_spatial": 1})
    results = train(cfg)

    # training ran to the end: every step of both epochs, the missing file left out
    steps = EPOCHS * (TRAIN_GOOD + ZOO_PER_SPLIT - 1)
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == steps

    # manifest.json: each failing zoo file once, with its error; decodable ones as warnings
    manifest = read_json(run / "manifest.json")
    assert set(manifest) == {"train", "val", "warnings"}
    warnings = manifest["warnings"]
    for split in ("train", "val"):
        failed, warned = _expected(zoo_set, split, backend)
        if split == "train":  # left out before training: never drawn, never failed
            failed = {p for p in failed if "zoo_missing" not in p}
        assert failed, split
        rows = manifest[split]
        assert sorted(r["path"] for r in rows) == sorted(failed)  # no good video, no duplicate
        assert all(r["error"].strip() for r in rows)
        if split == "val":
            missing = next(r for r in rows if "zoo_missing" in r["path"])
            assert "No such file" in missing["error"] or "Error reading" in missing["error"]
        split_warnings = {w["path"]: w["problem"] for w in warnings if w["split"] == split}
        assert set(split_warnings) == warned
        assert all(problem for problem in split_warnings.values())

    # evaluation: the failing val files counted, the rest scored, nothing substituted
    val_failed, _ = _expected(zoo_set, "val", backend)
    total_val = VAL_GOOD + ZOO_PER_SPLIT
    final = read_json(run / "results.json")
    assert final["num_failed"] == results["num_failed"] == len(val_failed)
    assert final["num_videos"] == total_val  # every video of the split, failed ones included
    rows = list(csv.DictReader((run / "predictions.csv").open()))
    assert [int(r["index"]) for r in rows] == list(range(total_val))
    assert len({r["path"] for r in rows}) == total_val  # each video once, as itself
    scored = [r for r in rows if r["ok"] == "1"]
    unscored = [r for r in rows if r["ok"] == "0"]
    assert len(scored) == total_val - len(val_failed)
    assert {r["path"] for r in unscored} == val_failed
    assert all(r["pred"] == "" and r["score"] == "" for r in unscored)  # no prediction for them
    assert not val_failed & {r["path"] for r in scored}
    assert all(r["pred"] != "" for r in scored)
    # each scored row ranks every class (3 here) with its probability: they sum to 1
    for r in scored:
        probs = [float(r[f"score{k}"]) for k in ("", "2", "3")]
        assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1) < 1e-4
        assert {r["pred_name"], r["pred2_name"], r["pred3_name"]} == set(zoo_set.class_names)
