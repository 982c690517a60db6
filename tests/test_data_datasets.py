"""Annotation readers, train/eval datasets, bad-video handling, the manifest and check_videos."""
from __future__ import annotations

import gc
import json
import multiprocessing as mp
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from data_fixtures import (  # noqa: F401  (synthetic_sets is a fixture)
    BACKEND_CHOICES,
    BACKENDS,
    LAYOUTS,
    data_config,
    run_tool,
    synthetic_sets,
)
from videopeft.config import ConfigError, DataConfig
from videopeft.data import (
    EvalVideoDataset,
    Manifest,
    TrainClipDataset,
    build_dataset,
    build_eval_transform,
    check_videos,
    decode,
    eval_collate,
    read_annotations,
)
from videopeft.data import datasets as datasets_module
from videopeft.data import decoders as decoders_module
from videopeft.data.datasets import clip_indices

REPO = Path(__file__).resolve().parents[1]


def _zoo(info, split: str, expect: str | None = None) -> set[str]:
    return {z["path"] for z in info.zoo if z["split"] == split and expect in (None, z["expect"])}


def _expected(info, split: str, backend: str = "auto") -> tuple[set[str], dict[str, str]]:
    """The bad zoo's expected manifest records of `split` with `backend`: (failed paths,
    {warned path: start of its problem}) per bad_zoo.json."""
    failed, warned = set(), {}
    for z in info.zoo:
        if z["split"] != split:
            continue
        if z["expect"] == "fail" or backend in z["fails_with"]:
            failed.add(z["path"])
        else:
            warned[z["path"]] = z["warning"]
    return failed, warned


def _missing(info, split: str) -> set[str]:
    """The bad zoo's files of `split` that the annotation lists but that are not on disk."""
    return {z["path"] for z in info.zoo if z["split"] == split and z["kind"] == "missing"}


def _assert_manifest_matches_zoo(manifest: Manifest, info, split: str, backend: str,
                                 left_out: set[str] = frozenset()) -> None:
    """Every bad-zoo file of `split` but those `left_out` up front (missing files of a training
    split built by `build_dataset`) has exactly one record, of the expected kind (a failure or a
    warning with the expected problem); no good video has any."""
    failed, warned = _expected(info, split, backend)
    failed -= left_out
    assert set(manifest.failed(split)) == failed
    problems = {w["path"]: w["problem"] for w in manifest.warning_entries if w["split"] == split}
    assert set(problems) == set(warned)  # good videos: no false positives
    for path, problem in problems.items():
        assert problem.startswith(warned[path]), (path, problem)
    assert not failed & set(problems) and failed | set(problems) == _zoo(info, split) - left_out


# ----------------------------------------------------------------------------- readers


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("split", ["train", "val"])
def test_each_generated_layout_reads_back_with_its_classes_and_labels(synthetic_sets, layout,
                                                                      split):
    info = synthetic_sets[layout]
    records, classes = read_annotations(layout, info.root, info.annotation, split)
    assert classes == info.class_names and len(classes) == 10
    truth = {v.path: v.label for v in info.videos if v.split == split}
    got = {r.path: r.label for r in records if r.path not in _zoo(info, split)}
    assert got == truth
    assert {r.path for r in records} - set(truth) == _zoo(info, split)
    assert set(truth.values()) == set(range(10))  # every class present in both splits


def test_hmdb51_other_official_splits_read_too(synthetic_sets):
    info = synthetic_sets["hmdb51"]
    for k in (2, 3):
        train, _ = read_annotations("hmdb51", info.root, info.annotation, "train", hmdb_split=k)
        val, _ = read_annotations("hmdb51", info.root, info.annotation, "val", hmdb_split=k)
        assert not {r.path for r in train} & {r.path for r in val}


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _ssv2_files(folder: Path, entries: list) -> Path:
    _write(folder / "something-something-v2-labels.json",
           json.dumps({"Moving something up": "0", "Pushing something": "1"}))
    return _write(folder / "something-something-v2-train.json", json.dumps(entries))


def _raises_one_line(call, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        call()
    assert str(info.value) == expected
    assert "\n" not in str(info.value)


def test_list_line_without_label_names_file_and_line(tmp_path):
    ann = _write(tmp_path / "train.txt", "".join(f"v{i}.mp4 0\n" for i in range(6)) + "a.mp4\n")
    _raises_one_line(lambda: read_annotations("list", tmp_path, ann, "train"),
                     f"{ann}:7: expected '<path> <label>', got 'a.mp4'")


def test_list_columns_are_split_at_tabs_or_any_run_of_spaces(tmp_path):
    """Tabs, repeated spaces and a trailing class name all read; with tabs a path may hold
    spaces (README.md, "List files")."""
    ann = _write(tmp_path / "train.txt",
                 "a.mp4  3\nb.mp4\t1\n  c.mp4 \t 0 \nmy clip.mp4\t2\tjump\n")
    records, classes = read_annotations("list", tmp_path, ann, "train")
    assert [(Path(r.path).name, r.label) for r in records] == [
        ("a.mp4", 3), ("b.mp4", 1), ("c.mp4", 0), ("my clip.mp4", 2)]
    assert classes == ["0", "1", "jump", "3"]  # a third column names its index
    _write(ann, "my clip.mp4 2\n")
    _raises_one_line(lambda: read_annotations("list", tmp_path, ann, "train"),
                     f"{ann}:1: expected a label, got 'clip.mp4' (a path with spaces? separate "
                     f"the columns with a tab)")


def test_list_labels_may_be_class_names_of_classes_txt(tmp_path):
    _write(tmp_path / "classes.txt", "run\njump\nwave\n")
    ann = _write(tmp_path / "train.txt", "a.mp4 jump\nb.mp4 2 wave\nc.mp4 run\n")
    records, classes = read_annotations("list", tmp_path, ann, "train")
    assert classes == ["run", "jump", "wave"] and [r.label for r in records] == [1, 2, 0]
    _write(ann, "a.mp4 jmup\n")
    _raises_one_line(lambda: read_annotations("list", tmp_path, ann, "train"),
                     f"{ann}:1: label 'jmup' is not a class of {tmp_path / 'classes.txt'} (did "
                     f"you mean jump?)")
    _write(ann, "a.mp4 1 wave\n")
    _raises_one_line(lambda: read_annotations("list", tmp_path, ann, "train"),
                     f"{ann}:1: class name 'wave' for label 1, but classes.txt names it 'jump'")


def test_a_class_name_label_without_classes_txt_names_the_file_to_write(tmp_path):
    ann = _write(tmp_path / "train.txt", "a.mp4 1\nb.mp4 x\n")
    _raises_one_line(lambda: read_annotations("list", tmp_path, ann, "train"),
                     f"{ann}:2: label 'x' is a class name, but there is no classes.txt beside the "
                     f"list to number the classes (write {tmp_path / 'classes.txt'}, one class "
                     f"per line in index order, or give integer labels)")


def test_list_label_outside_the_class_file(tmp_path):
    _write(tmp_path / "classes.txt", "a\nb\nc\n")
    ann = _write(tmp_path / "val.txt", "a.mp4 5\n")
    _raises_one_line(lambda: read_annotations("list", tmp_path, tmp_path, "val"),
                     f"{ann}:1: label 5 not in the class map (classes.txt has 3 classes)")


def test_list_without_class_file_numbers_the_classes(tmp_path):
    ann = _write(tmp_path / "train.txt", "a.mp4 2\n/abs/b.mp4 0\n\n")
    records, classes = read_annotations("list", tmp_path / "videos", ann, "train")
    assert classes == ["0", "1", "2"]
    assert [r.path for r in records] == [str(tmp_path / "videos" / "a.mp4"), "/abs/b.mp4"]


def test_ssv2_entry_missing_template(tmp_path):
    entries = [{"id": str(i), "template": "Moving [something] up"} for i in range(12)]
    ann = _ssv2_files(tmp_path, entries + [{"id": "12", "label": "x"}])
    _raises_one_line(lambda: read_annotations("ssv2", tmp_path, tmp_path, "train"),
                     f"{ann}: entry 12: missing field 'template'")


def test_ssv2_template_not_in_labels(tmp_path):
    ann = _ssv2_files(tmp_path, [{"id": "1", "template": "Juggling [something]"}])
    _raises_one_line(lambda: read_annotations("ssv2", tmp_path, tmp_path, "train"),
                     f"{ann}: entry 0: template 'Juggling something' not in "
                     f"something-something-v2-labels.json")


def test_ssv2_labels_use_the_template_without_brackets(tmp_path):
    _ssv2_files(tmp_path, [{"id": "7", "template": "Pushing [something]", "label": "Pushing a box",
                            "placeholders": ["a box"]}])
    records, classes = read_annotations("ssv2", tmp_path / "v", tmp_path, "train")
    assert classes == ["Moving something up", "Pushing something"]
    assert [(r.path, r.label) for r in records] == [(str(tmp_path / "v" / "7.webm"), 1)]


def test_ssv2_invalid_json_names_the_line(tmp_path):
    _ssv2_files(tmp_path, [])
    ann = _write(tmp_path / "something-something-v2-validation.json", '[\n{"id": "1",\n}\n]')
    with pytest.raises(ConfigError, match=rf"^{ann}:3: invalid JSON: "):
        read_annotations("ssv2", tmp_path, tmp_path, "val")


def test_hmdb51_unknown_split_code(tmp_path):
    ann = _write(tmp_path / "brush_hair_test_split1.txt", "a.avi 1 \nb.avi 2 \nc.avi 7 \n")
    _raises_one_line(lambda: read_annotations("hmdb51", tmp_path, tmp_path, "train"),
                     f"{ann}:3: unknown split code '7' (expected 0, 1 or 2)")


def test_hmdb51_line_with_extra_fields(tmp_path):
    ann = _write(tmp_path / "cartwheel_test_split1.txt", "a b.avi 1\n")
    _raises_one_line(lambda: read_annotations("hmdb51", tmp_path, tmp_path, "val"),
                     f"{ann}:1: expected '<clip>.avi <split code>', got 'a b.avi 1'")


def test_hmdb51_split_codes_select_train_and_test_and_sorted_folders_index(tmp_path):
    _write(tmp_path / "wave_test_split1.txt", "w1.avi 1 \nw2.avi 2 \nw3.avi 0 \n")
    _write(tmp_path / "clap_test_split1.txt", "c1.avi 2 \n")
    train, classes = read_annotations("hmdb51", tmp_path, tmp_path, "train")
    val, _ = read_annotations("hmdb51", tmp_path, tmp_path, "val")
    assert classes == ["clap", "wave"]
    assert [(Path(r.path).name, r.label) for r in train] == [("w1.avi", 1)]
    assert [(Path(r.path).name, r.label) for r in val] == [("c1.avi", 0), ("w2.avi", 1)]
    _raises_one_line(lambda: read_annotations("hmdb51", tmp_path, tmp_path, "val", hmdb_split=2),
                     f"{tmp_path}: no '*_test_split2.txt' split files for layout hmdb51; the "
                     f"folder holds clap_test_split1.txt, wave_test_split1.txt")


_K_HEADER = "label,youtube_id,time_start,time_end,split\n"


def test_kinetics_class_map_is_sorted_cleaned_train_labels(tmp_path):
    _write(tmp_path / "train.csv", _K_HEADER + '"riding a bike",abc,5,15,train\n'
           "abseiling,def,0,10,train\n")
    records, classes = read_annotations("kinetics", tmp_path / "v", tmp_path, "train")
    assert classes == ["abseiling", "riding_a_bike"]
    assert records[0].path == str(tmp_path / "v" / "riding_a_bike" / "abc_000005_000015.mp4")
    assert records[0].label == 1


def test_kinetics_val_label_missing_from_train(tmp_path):
    _write(tmp_path / "train.csv", _K_HEADER + "abseiling,def,0,10,train\n")
    ann = _write(tmp_path / "validate.csv", _K_HEADER + "abseiling,x,0,10,val\n"
                 "juggling fire,y,0,10,val\n")
    _raises_one_line(lambda: read_annotations("kinetics", tmp_path, tmp_path, "val"),
                     f"{ann}:3: label 'juggling_fire' not in the class map "
                     f"(the labels of train.csv)")


def test_kinetics_bad_header_and_bad_time(tmp_path):
    ann = _write(tmp_path / "train.csv", "name,id\nx,y\n")
    _raises_one_line(lambda: read_annotations("kinetics", tmp_path, tmp_path, "train"),
                     f"{ann}:1: expected header starting 'label,youtube_id,time_start,time_end', "
                     f"got 'name,id'")
    _write(ann, _K_HEADER + "a,b,zero,10,train\n")
    _raises_one_line(lambda: read_annotations("kinetics", tmp_path, tmp_path, "train"),
                     f"{ann}:2: time_start: expected an integer, got 'zero'")


def test_missing_annotation_and_bad_split(tmp_path):
    _raises_one_line(lambda: read_annotations("list", tmp_path, tmp_path, "train"),
                     f"{tmp_path / 'train.txt'}: annotation file not found for layout list; the "
                     f"folder is empty")
    _raises_one_line(lambda: read_annotations("list", tmp_path, tmp_path, "test"),
                     "split: expected 'train' or 'val', got 'test'")


# ----------------------------------------------------------------------------- datasets


def _train_dataset(info, backend, **cfg):
    records, _ = read_annotations(info.layout, info.root, info.annotation, "train")
    return TrainClipDataset(records, data_config(info, backend=backend, **cfg), Manifest())


@pytest.mark.parametrize("backend", BACKEND_CHOICES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_train_path_records_every_bad_video_and_draws_another(synthetic_sets, layout, backend):
    info = synthetic_sets[layout]
    dataset = _train_dataset(info, backend)
    for i in range(len(dataset)):
        clip, label, used = dataset[i]
        assert tuple(clip.shape) == (3, 4, 32, 32) and torch.isfinite(clip).all()
        assert label == dataset.records[used].label
    _assert_manifest_matches_zoo(dataset.manifest, info, "train", backend)
    entry = dataset.manifest.entries[0]
    assert set(entry) == {"split", "path", "backend", "error"} and entry["error"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_video_is_probed_once_per_process_from_its_header(synthetic_sets, monkeypatch,
                                                               backend):
    """Warnings cost no decoding: PyAV's reader already holds the header, other backends read it
    with one header-only open, once per video however often the video is drawn."""
    info = synthetic_sets["list"]
    header_reads = []
    real = decoders_module.read_header
    monkeypatch.setattr(decoders_module, "read_header",
                        lambda path: header_reads.append(path) or real(path))
    dataset = _train_dataset(info, backend)
    one_frame = next(z["path"] for z in info.zoo if z["kind"] == "one_frame"
                     and z["split"] == "train")
    paths = [r.path for r in dataset.records]
    picked = [i for i, p in enumerate(paths) if p not in _zoo(info, "train")][:3]
    picked.append(paths.index(one_frame))
    for _ in range(3):
        for i in picked:
            assert dataset[i][2] == i
    assert len(header_reads) == (0 if backend == "pyav" else len(picked))
    spooled = "".join(p.read_text() for p in Path(dataset.manifest.spool_dir).glob("*.jsonl"))
    assert spooled.count('"kind": "warning"') == 1  # the one-frame video, recorded once
    assert dataset.manifest.warned("train") == [one_frame]


def test_decoded_video_cache_gives_the_same_clips_and_decodes_each_video_once(synthetic_sets,
                                                                              monkeypatch):
    """data.cache_mb keeps decoded videos in memory: the same seed gives the same clip as without
    the cache, a second draw opens no file, and the cache stops growing at its budget."""
    info = synthetic_sets["list"]
    plain, cached = _train_dataset(info, "auto"), _train_dataset(info, "auto", cache_mb=64)
    good = [i for i, r in enumerate(plain.records) if r.path not in _zoo(info, "train")][:4]
    opened = []
    real = datasets_module.open_video
    monkeypatch.setattr(datasets_module, "open_video",
                        lambda path, *args: opened.append(path) or real(path, *args))
    for draw in range(2):
        for i in good:
            torch.manual_seed(100 * draw + i)
            want = plain[i][0]
            torch.manual_seed(100 * draw + i)
            assert torch.equal(cached[i][0], want)
    assert len(opened) == 2 * len(good) + len(good)  # plain: every draw; cached: the first only
    tiny = _train_dataset(info, "auto", cache_mb=1)
    tiny.cfg.cache_mb = 1e-6  # smaller than any video: nothing is kept, clips still come
    assert tiny[good[0]][0].shape == want.shape and tiny._cache_bytes == 0
    with pytest.raises(ConfigError, match=r"cache_mb: expected 0 \(off\) or a positive number"):
        DataConfig(cache_mb=-1)


def test_train_path_gives_up_after_max_retries(synthetic_sets):
    info = synthetic_sets["list"]
    bad = [r for r in read_annotations("list", info.root, info.annotation, "train")[0]
           if r.path in _zoo(info, "train", "fail")]
    dataset = TrainClipDataset(bad, data_config(info, max_retries=3), Manifest())
    with pytest.raises(RuntimeError, match=r"train: 4 videos in a row could not be decoded "
                                           r"\(data.max_retries=3\); last: "):
        dataset[0]
    assert 1 <= len(dataset.manifest.entries) <= 4


@pytest.mark.parametrize("backend", BACKEND_CHOICES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_eval_path_counts_bad_videos_and_never_substitutes(synthetic_sets, layout, backend):
    info = synthetic_sets[layout]
    records, _ = read_annotations(layout, info.root, info.annotation, "val")
    dataset = EvalVideoDataset(records, data_config(info, backend=backend), 2, 3, 0, Manifest())
    failed = set()
    for i in range(len(dataset)):
        views, label, index, ok = dataset[i]
        assert index == i and label == records[i].label  # the video asked for, always
        assert tuple(views.shape) == (6, 3, 4, 32, 32)
        if not ok:
            failed.add(records[i].path)
            assert not views.any()
        else:
            assert views.any()  # warned videos too are decoded and scored
    assert failed == set(dataset.manifest.failed("val"))  # num_failed: real failures only
    _assert_manifest_matches_zoo(dataset.manifest, info, "val", backend)


@pytest.mark.parametrize("sampling", ["segment", "dense"])
def test_eval_decodes_once_and_matches_decoding_each_view(synthetic_sets, monkeypatch, sampling):
    info = synthetic_sets["kinetics"]
    records, _ = read_annotations("kinetics", info.root, info.annotation, "val")
    record = next(r for r in records if r.path not in _zoo(info, "val"))
    cfg = data_config(info, sampling=sampling, stride=2)
    dataset = EvalVideoDataset([record], cfg, 3, 3, 40, Manifest())
    opened = []
    real_open = datasets_module.open_video
    monkeypatch.setattr(datasets_module, "open_video",
                        lambda *a, **k: opened.append(a) or real_open(*a, **k))
    views, _, _, ok = dataset[0]
    assert ok and len(opened) == 1
    transform = build_eval_transform(cfg, views_spatial=3, short_side=40)
    with real_open(record.path) as video:
        n = video.num_frames
    separate = [transform(decode(record.path, clip_indices(cfg, n, train=False, view=v,
                                                           num_views=3))) for v in range(3)]
    torch.testing.assert_close(views, torch.cat(separate))


def test_eval_collate_stacks_views_and_keeps_failed_flags():
    items = [(torch.ones(2, 3, 4, 8, 8), 1, 0, True), (torch.zeros(2, 3, 4, 8, 8), 2, 1, False)]
    views, labels, indices, ok = eval_collate(items)
    assert tuple(views.shape) == (2, 2, 3, 4, 8, 8)
    assert labels.tolist() == [1, 2] and indices.tolist() == [0, 1] and ok.tolist() == [True, False]


def test_dataloader_with_two_workers_reports_failures_to_the_parent(synthetic_sets):
    info = synthetic_sets["list"]
    manifest = Manifest()
    cfg = data_config(info, sampling="dense", workers=2, rand_augment="rand-m7-n2-mstd0.5-inc1",
                      random_erasing=0.25)
    train, classes = build_dataset(cfg, "train", True, manifest)
    assert _missing(info, "train") and not _missing(info, "train") & {r.path for r in train.records}
    seen = []
    for clips, labels, indices in DataLoader(train, batch_size=4, num_workers=2, shuffle=True):
        assert clips.shape[1:] == (3, 4, 32, 32)
        seen += indices.tolist()
    assert len(seen) == len(train) and len(classes) == 10
    evalset, _ = build_dataset(cfg, "val", False, manifest, views_temporal=2, views_spatial=3)
    ok_flags = []
    for views, labels, indices, ok in DataLoader(evalset, batch_size=4, num_workers=2,
                                                 collate_fn=eval_collate):
        assert views.shape[1:] == (6, 3, 4, 32, 32)
        ok_flags += ok.tolist()
    # data.on_missing: skip: missing files leave training up front; evaluation counts them failed
    _assert_manifest_matches_zoo(manifest, info, "train", "auto", _missing(info, "train"))
    _assert_manifest_matches_zoo(manifest, info, "val", "auto")
    assert ok_flags.count(False) == len(_zoo(info, "val", "fail"))


@pytest.mark.slow
def test_dataloader_workers_started_by_spawn_also_report_failures(synthetic_sets):
    info = synthetic_sets["hmdb51"]
    manifest = Manifest()
    cfg = data_config(info, rand_augment="rand-m7-n4-mstd0.5-inc1", random_erasing=0.25)
    train, _ = build_dataset(cfg, "train", True, manifest)
    loader = DataLoader(train, batch_size=8, num_workers=2,
                        multiprocessing_context=mp.get_context("spawn"))
    assert sum(len(batch[2]) for batch in loader) == len(train)
    _assert_manifest_matches_zoo(manifest, info, "train", "auto", _missing(info, "train"))


def test_datasets_pickle_for_spawned_workers(synthetic_sets):
    info = synthetic_sets["ssv2"]
    cfg = data_config(info, rand_augment="rand-m7-n4-mstd0.5-inc1", random_erasing=0.25)
    for train in (True, False):
        dataset, _ = build_dataset(cfg, "train" if train else "val", train, Manifest())
        clone = pickle.loads(pickle.dumps(dataset))
        assert clone.manifest.spool_dir == dataset.manifest.spool_dir
        assert len(clone) == len(dataset)


def test_build_dataset_rejects_an_empty_split(tmp_path):
    _write(tmp_path / "train.txt", "")
    cfg = DataConfig(layout="list", root=str(tmp_path), annotation=str(tmp_path))
    with pytest.raises(ConfigError, match="split 'train' of list at .* has no videos"):
        build_dataset(cfg, "train", True, Manifest())


# ----------------------------------------------------------------------------- manifest


def _add_from_child(manifest: Manifest) -> None:
    manifest.add("train", "/child.webm", "decord,pyav", "decord: x; pyav: y")


def test_manifest_collects_records_from_other_processes_and_dedupes(tmp_path):
    manifest = Manifest()
    manifest.add("val", "/a.mp4", "pyav", "broken")
    manifest.add("val", "/a.mp4", "pyav", "broken again")  # same video twice: one entry
    child = mp.get_context("fork").Process(target=_add_from_child, args=(manifest,))
    child.start()
    child.join()
    assert manifest.failed("train") == ["/child.webm"] and manifest.failed("val") == ["/a.mp4"]
    path = manifest.write(tmp_path / "run" / "manifest.json")
    assert json.loads(path.read_text()) == {
        "train": [{"path": "/child.webm", "backend": "decord,pyav", "error": "decord: x; pyav: y"}],
        "val": [{"path": "/a.mp4", "backend": "pyav", "error": "broken"}]}


def test_manifest_warnings_are_a_second_kind_of_record(tmp_path):
    manifest = Manifest()
    manifest.warn("val", "/b.mp4", "decord", "only 1 frame")
    manifest.warn("val", "/b.mp4", "decord", "only 1 frame")  # recorded once
    manifest.warn("train", "/c.webm", "pyav", "extension .webm but container is mp4")
    manifest.warn("val", "/a.mp4", "pyav", "truncated: header says 9 frames, decoded 2")
    manifest.add("val", "/a.mp4", "pyav", "broken")  # a failure supersedes a warning
    assert manifest.failed("val") == ["/a.mp4"] and manifest.failed("train") == []
    assert [e["path"] for e in manifest.entries] == ["/a.mp4"]  # failures only, as before
    assert manifest.warned("val") == ["/b.mp4"] and manifest.warned("train") == ["/c.webm"]
    assert manifest.warning_entries[0] == {"split": "train", "path": "/c.webm",
                                           "backend": "pyav",
                                           "problem": "extension .webm but container is mp4"}
    assert json.loads(manifest.write(tmp_path / "manifest.json").read_text()) == {
        "val": [{"path": "/a.mp4", "backend": "pyav", "error": "broken"}],
        "warnings": [
            {"split": "val", "path": "/b.mp4", "backend": "decord", "problem": "only 1 frame"},
            {"split": "train", "path": "/c.webm", "backend": "pyav",
             "problem": "extension .webm but container is mp4"}]}
    assert Manifest().to_dict() == {}  # a clean run: no "warnings" key
    with pytest.raises(ValueError, match="reserved"):
        manifest.warn("warnings", "/x", "pyav", "?")


def test_engine_manifest_merge_keeps_the_warnings(tmp_path):
    """The engine's cross-rank `write_manifest` treats every top-level key as a split and keys
    rows by path; the warning list must come through it unchanged."""
    from videopeft.engine.evaluate import write_manifest

    manifest = Manifest()
    manifest.add("train", "/bad.mp4", "decord,pyav", "decord: x; pyav: y")
    manifest.warn("train", "/one.mp4", "decord", "only 1 frame")
    manifest.warn("val", "/trunc.webm", "decord", "truncated: header says 12 frames, decoded 1")
    write_manifest(manifest, tmp_path / "manifest.json")
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest.to_dict()


def test_private_spool_is_removed_with_the_manifest_but_a_given_one_is_kept(tmp_path):
    manifest = Manifest()
    spool = manifest.spool_dir
    manifest.add("train", "/x", "pyav", "e")
    del manifest
    gc.collect()
    assert not os.path.exists(spool)
    kept = Manifest(tmp_path / "spool")
    kept.add("train", "/x", "pyav", "e")
    assert Manifest(tmp_path / "spool").failed("train") == ["/x"]  # readable by a new object


# ----------------------------------------------------------------------------- check_videos


@pytest.mark.parametrize("backend", BACKEND_CHOICES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_check_videos_finds_the_undecodable_and_the_suspicious_files(synthetic_sets, tmp_path,
                                                                     layout, backend):
    info = synthetic_sets[layout]
    result = check_videos(info.annotation, layout=layout, root=info.root, backend=backend,
                          manifest_path=tmp_path / "manifest.json", progress=False)
    written = json.loads(result.manifest_path.read_text())
    assert set(written) == {"train", "val", "warnings"}
    warned = {}
    for split in ("train", "val"):
        failed, expected = _expected(info, split, backend)
        assert {e["path"] for e in written[split]} == failed
        got = {w["path"]: w["problem"] for w in written["warnings"] if w["split"] == split}
        assert set(got) == set(expected)
        assert all(problem.startswith(expected[path]) for path, problem in got.items())
        warned.update(got)
    assert result.checked == len(info.videos) + len(info.zoo)
    assert result.failed == sum(len(written[split]) for split in ("train", "val"))
    assert result.warned == len(warned) == len(info.zoo) - result.failed


def test_check_videos_on_a_folder_probes_every_video_file(synthetic_sets, tmp_path):
    info = synthetic_sets["list"]
    result = check_videos(info.root, manifest_path=tmp_path / "m.json", progress=False)
    on_disk = {z["path"] for z in info.zoo if z["kind"] != "missing"}
    assert result.checked == len(info.videos) + len(on_disk)
    written = json.loads(result.manifest_path.read_text())
    assert {e["path"] for e in written["files"]} == {
        z["path"] for z in info.zoo if z["expect"] == "fail"} - {
        z["path"] for z in info.zoo if z["kind"] == "missing"}
    assert {w["path"] for w in written["warnings"]} == {
        z["path"] for z in info.zoo if z["expect"] == "warn"}
    assert {w["split"] for w in written["warnings"]} == {"files"}


def test_check_videos_cli_exit_status_says_whether_every_video_decodes(synthetic_sets, tmp_path,
                                                                        capsys, monkeypatch):
    """1 when some video failed (the bad zoo, as a user runs it: a subprocess, and decord's C++
    log lines stay off the console), 0 when all decode; without --out an earlier manifest is
    never replaced (manifest.json, then manifest-2.json)."""
    info = synthetic_sets["hmdb51"]
    split_file = Path(info.annotation) / f"{info.class_names[0]}_test_split1.txt"
    out = tmp_path / "manifest.json"
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "check_videos.py"),
                           str(split_file), "--root", info.root, "--out", str(out),
                           "--no-progress"], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert str(out) in proc.stdout
    assert "video_reader.cc" not in proc.stderr and "moov atom" not in proc.stderr, proc.stderr
    written = json.loads(out.read_text())
    failed = sum(len(written[split]) for split in ("train", "val"))
    warned = len(written["warnings"])
    assert set(written) == {"train", "val", "warnings"} and failed and warned
    assert f" {failed} failed, " in proc.stdout and f"{warned} of them with warnings" in proc.stdout

    good = tmp_path / "good"
    good.mkdir()
    for video in info.videos[:2]:
        shutil.copy(video.path, good / Path(video.path).name)
    monkeypatch.chdir(tmp_path)
    for name in ("manifest.json", "manifest-2.json"):
        before = out.read_bytes()
        assert run_tool("check_videos", [str(good), "--no-progress"], capsys) == (0, [])
        assert out.read_bytes() == before and (tmp_path / name).is_file()
        assert json.loads((tmp_path / "manifest-2.json").read_text()) == {}


def test_check_videos_cli_user_errors_are_one_line_and_write_no_manifest(synthetic_sets, tmp_path,
                                                                          capsys):
    """A missing target, a malformed annotation, a file that is not of the layout asked for and
    an uninstalled backend each give one `error:` line and exit status 2."""
    out = tmp_path / "manifest.json"
    missing = tmp_path / "nothing.csv"
    malformed = _write(tmp_path / "train.txt", "a.mp4\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [([str(missing)], f"{missing}: no such annotation file or folder"),
             ([str(empty)], f"{empty}: no video files found (extensions .webm, .mp4, .avi, .mkv, "
                            f".mov, .m4v); the folder is empty"),
             ([str(malformed.parent)], f"{tmp_path}: no video files found (extensions .webm, "
                                       f".mp4, .avi, .mkv, .mov, .m4v); it holds list annotation "
                                       f"files: pass --layout list --root VIDEOS"),
             ([str(malformed)], f"{malformed}:1: expected '<path> <label>', got 'a.mp4'"),
             ([str(malformed), "--layout", "hmdb51"],
              f"{malformed}: expected an HMDB51 split file named '<class>_test_splitN.txt'")]
    if "torchcodec" not in BACKENDS:
        info = synthetic_sets["list"]
        cases.append(([info.annotation, "--layout", "list", "--root", info.root, "--backend",
                       "torchcodec"], f"video backend 'torchcodec' is not installed "
                                      f"(installed: {list(BACKENDS)})"))
    for args, message in cases:
        status, errors = run_tool("check_videos", [*args, "--out", str(out), "--no-progress"],
                                  capsys)
        assert (status, errors) == (2, [f"error: {message}"])
        assert not out.exists()
