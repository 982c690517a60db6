"""Distributed pieces: the training order is world-size invariant and resumable; evaluation shards
videos without duplicates; two gloo processes give exactly the one-process results."""
from __future__ import annotations

import subprocess

import pytest
import torch

from engine_fixtures import (python, read_json, tiny_config, tiny_set, tiny_settings,  # noqa: F401
                             tool_env, write_yaml, REPO)
from videopeft.engine.distributed import ResumableSampler, get_dist_info, shard_indices


def batches(sampler: ResumableSampler, micro: int) -> list[list[int]]:
    items = [i for i, _ in sampler]
    return [items[k:k + micro] for k in range(0, len(items), micro)]


def test_single_process_without_torchrun_env(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    info = get_dist_info()
    assert (info.rank, info.world_size, info.distributed, info.is_main) == (0, 1, False, True)


def test_global_batches_are_the_same_for_one_and_two_processes():
    one = ResumableSampler(23, batch_size=4, seed=7)
    two = [ResumableSampler(23, batch_size=2, rank=r, world_size=2, seed=7) for r in (0, 1)]
    assert one.steps_per_epoch == two[0].steps_per_epoch == 5  # 23 // 4, remainder dropped
    for epoch in (0, 3):
        for s in (one, *two):
            s.set_epoch(epoch)
        rank_batches = [batches(s, 2) for s in two]
        for step, global_batch in enumerate(batches(one, 4)):
            merged = rank_batches[0][step] + rank_batches[1][step]
            assert sorted(merged) == sorted(global_batch)


def test_resuming_mid_epoch_continues_the_same_order_and_item_seeds():
    full = ResumableSampler(20, batch_size=3, accum_steps=2, seed=1)
    full.set_epoch(2)
    items = list(full)
    resumed = ResumableSampler(20, batch_size=3, accum_steps=2, seed=1)
    resumed.set_position(2, 1)  # one optimizer step (6 clips) already done
    assert list(resumed) == items[6:] and len(resumed) == len(items) - 6


def test_epochs_differ_and_item_seeds_depend_on_epoch():
    s = ResumableSampler(50, batch_size=5, seed=0)
    assert s.permutation(0) != s.permutation(1)
    assert s.item_seed(0, 3) != s.item_seed(1, 3) != s.item_seed(0, 4)


def test_too_small_a_dataset_for_one_global_batch_is_refused():
    with pytest.raises(ValueError, match="fewer than one global batch"):
        ResumableSampler(3, batch_size=2, world_size=2)


def test_eval_shards_cover_every_video_once_without_padding():
    for n, world in ((7, 2), (3, 4), (10, 3)):
        shards = [shard_indices(n, r, world) for r in range(world)]
        assert sorted(i for s in shards for i in s) == list(range(n))


def _plain_checkpoint(path, num_classes: int) -> None:
    """A random tiny classifier with a visible head, as a plain weight file."""
    import videopeft
    from videopeft.models.checkpoints import save_pretrained

    torch.manual_seed(3)
    model = videopeft.create_model("videomae_tiny", num_classes=num_classes, num_frames=4,
                                   img_size=32)
    with torch.no_grad():
        model.head.weight.normal_(0, 0.5)
    save_pretrained(model, path)


def test_two_gloo_processes_evaluate_exactly_like_one(tiny_set, tmp_path):
    """3 val videos (odd) on 2 ranks: shards of 2 and 1, and identical results and predictions."""
    from videopeft.engine.evaluate import evaluate

    ckpt = tmp_path / "model.pth"
    _plain_checkpoint(ckpt, len(tiny_set.class_names))
    one = tmp_path / "one"
    evaluate(tiny_config(tiny_set, one), checkpoint=ckpt, progress=False)

    two = tmp_path / "two"
    config = write_yaml(tmp_path / "eval.yaml", tiny_settings(tiny_set, two))
    cmd = [python(), "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(REPO / "tools" / "eval.py"), str(config), f"checkpoint={ckpt}", f"output_dir={two}"]
    proc = subprocess.run(cmd, env=tool_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    r1, r2 = read_json(one / "results.json"), read_json(two / "results.json")
    assert r1["num_videos"] == 3 and r1["num_failed"] == 0
    assert r1 == r2
    assert (one / "predictions.csv").read_text() == (two / "predictions.csv").read_text()
