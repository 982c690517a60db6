"""The training loop: it learns, it resumes exactly, accumulation is exact, and the optimizer
recipe (layer decay, no decay on 1-D tensors, mixup on clips) is what the papers describe."""
from __future__ import annotations

import csv

import pytest
import torch

import videopeft
from engine_fixtures import read_json, tiny_config, tiny_set  # noqa: F401
from videopeft.config import RunConfig, TrainConfig
from videopeft.engine.checkpoint import load_checkpoint
from videopeft.engine.evaluate import RESULT_KEYS
from videopeft.engine.logging import read_jsonl
from videopeft.engine.optim import build_optimizer, build_scheduler, param_groups, scaled_lrs
from videopeft.engine.tasks import ClassificationTask, mix_clips
from videopeft.engine.train import train


def train_losses(run) -> list[float]:
    return [e["loss"] for e in read_jsonl(run / "log.jsonl") if e["event"] == "train"]


def final_weights(run) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoints" / "last.pt")["model"]


def test_tiny_model_learns_the_synthetic_set(tiny_set, tmp_path):
    cfg = tiny_config(tiny_set, tmp_path / "run", method={"name": "full"},
                      train={"epochs": 6, "lr": 3e-3, "eval_every": 0},
                      eval={"views_temporal": 1, "views_spatial": 1})
    result = train(cfg)
    losses = train_losses(tmp_path / "run")
    assert len(losses) == 18
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses
    # the reported accuracy is the share of correct rows in predictions.csv, and results.json
    # holds exactly what train() returned
    rows = list(csv.DictReader((tmp_path / "run" / "predictions.csv").open()))
    assert len(rows) == result["num_videos"] == 3
    correct = sum(r["pred"] == r["label"] for r in rows)
    assert result["video_top1"] == pytest.approx(100.0 * correct / len(rows))
    assert read_json(tmp_path / "run" / "results.json") == {
        k: result[k] for k in (*RESULT_KEYS, "training")}
    assert result["training"] == {"steps": 18, "global_batch": 3, "num_sample": 1,
                                  "clips_per_step": 3, "augment": "worker", "lr": 3e-3,
                                  "world_size": 1}


def test_resume_after_a_stop_gives_exactly_the_uninterrupted_run(tiny_set, tmp_path):
    """7 steps straight vs 4 steps, stop, `resume: auto` to 7: identical weights, losses, results.

    The run has everything that draws random numbers or keeps state: random crops in a DataLoader
    worker, drop path, a BN head, AdamW moments, a cosine schedule, validation each epoch.
    """
    common = dict(model={"name": "videomae_tiny", "drop_path_rate": 0.1},
                  data={"workers": 1},
                  train={"epochs": 3, "max_steps": 7, "resume": "auto"},
                  eval={"views_temporal": 1, "views_spatial": 3})
    train(tiny_config(tiny_set, tmp_path / "straight", **common))

    stopped = tmp_path / "stopped"
    first = {**common, "train": {**common["train"], "max_steps": 4}}
    train(tiny_config(tiny_set, stopped, **first))
    assert load_checkpoint(stopped / "checkpoints" / "last.pt")["step"] == 4
    train(tiny_config(tiny_set, stopped, **common))

    a, b = final_weights(tmp_path / "straight"), final_weights(stopped)
    assert a.keys() == b.keys() and any("lora" in k for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert train_losses(tmp_path / "straight") == train_losses(stopped)
    assert read_json(tmp_path / "straight" / "results.json") == read_json(stopped / "results.json")


def test_gradient_accumulation_equals_the_large_batch(tiny_set, tmp_path):
    """batch 4 vs 2 micro-batches of 2 (no BN, no dropout): the same weights after 4 steps."""
    common = dict(method={"name": "lora", "rank": 4}, train={"epochs": 2, "eval_every": 0},
                  eval={"views_temporal": 1, "views_spatial": 1})
    big = tiny_config(tiny_set, tmp_path / "big", **common)
    big.train.batch_size = 4
    small = tiny_config(tiny_set, tmp_path / "small", **common)
    small.train.batch_size, small.train.accum_steps = 2, 2
    train(big)
    train(small)
    a, b = final_weights(tmp_path / "big"), final_weights(tmp_path / "small")
    for key in a:  # float32 sums in another order: ~1e-6 apart, depending on the CPU's kernels
        torch.testing.assert_close(a[key], b[key], atol=5e-6, rtol=1e-4)


def videomae_layer_id(name: str, depth: int) -> int:
    """MCG-NJU/VideoMAE:optim_factory.py get_num_layer_for_vit, written out again for the test."""
    if name in ("cls_token", "pos_embed") or name.startswith("patch_embed"):
        return 0
    if name.startswith("blocks"):
        return int(name.split(".")[1]) + 1
    return depth + 1


def test_layer_decay_scales_and_weight_decay_groups():
    """The optimizer the engine builds: every parameter once, weight decay off for biases and
    1-D tensors, and (after the scheduler sets the lr) lr = base * 0.75 ** (L + 1 - layer_id)."""
    model = videopeft.create_model("videomae_tiny", num_classes=3, num_frames=4, img_size=32)
    cfg = RunConfig(train=TrainConfig(opt="adamw", lr=1e-3, weight_decay=0.05, layer_decay=0.75,
                                      warmup_epochs=0, epochs=1))
    optimizer = build_optimizer(model, cfg, lr=1e-3)
    build_scheduler(optimizer, cfg, steps_per_epoch=10, min_lr=0.0).step_update(0)
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(group_of)
    depth = len(model.blocks)
    assert depth == 2
    for name, p in model.named_parameters():
        group = group_of[id(p)]
        no_decay = p.ndim <= 1 or name.endswith(".bias") or name in ("pos_embed", "cls_token")
        assert group["weight_decay"] == (0.0 if no_decay else 0.05), name
        scale = 0.75 ** (depth + 1 - videomae_layer_id(name, depth))
        assert group["lr"] == pytest.approx(1e-3 * scale), name
    params = dict(model.named_parameters())
    lr_of = {n: group_of[id(params[n])]["lr"] for n in params}
    assert lr_of["patch_embed.proj.weight"] == pytest.approx(1e-3 * 0.75 ** 3)
    assert lr_of["blocks.0.attn.qkv.weight"] == pytest.approx(1e-3 * 0.75 ** 2)
    assert lr_of["blocks.1.mlp.fc1.weight"] == pytest.approx(1e-3 * 0.75)
    assert lr_of["head.weight"] == pytest.approx(1e-3)
    assert group_of[id(params["blocks.0.attn.qkv.weight"])]["weight_decay"] == 0.05
    for no_decay in ("blocks.0.attn.q_bias", "blocks.0.norm1.weight", "head.bias", "fc_norm.bias"):
        assert group_of[id(params[no_decay])]["weight_decay"] == 0.0


def test_only_trainable_parameters_reach_the_optimizer():
    from videopeft import peft

    model = videopeft.create_model("videomae_tiny", num_classes=3, num_frames=4, img_size=32)
    report = peft.apply(model, {"name": "lora", "rank": 2})
    names = [n for g in param_groups(model, 0.0) for n in g["names"]]
    assert sorted(names) == sorted(report.trainable)


def test_lr_is_scaled_by_the_global_batch_when_not_given(tiny_set, tmp_path):
    cfg = tiny_config(tiny_set, tmp_path, train={"lr": 0.0, "blr": 0.1, "min_lr": 1e-6,
                                                 "warmup_lr": 1e-6})
    assert scaled_lrs(cfg, 1024) == pytest.approx((0.4, 4e-6, 4e-6))
    cfg.train.lr = 0.01
    assert scaled_lrs(cfg, 1024) == (0.01, 1e-6, 1e-6)


def test_cutmix_cuts_the_same_box_from_every_frame():
    from timm.data import Mixup

    torch.manual_seed(0)
    clips = torch.stack([torch.zeros(3, 4, 16, 16), torch.ones(3, 4, 16, 16)])
    mixup = Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, num_classes=2, label_smoothing=0.0)
    mixed, targets = mix_clips(mixup, clips, torch.tensor([0, 1]))
    assert mixed.shape == clips.shape and targets.shape == (2, 2)
    box = mixed[0, 0, 0]
    assert 0 < box.sum() < box.numel()  # some pixels come from the other clip
    assert all(torch.equal(mixed[0, c, t], box) for c in range(3) for t in range(4))
    assert torch.allclose(targets.sum(-1), torch.ones(2))


def test_resuming_with_another_method_is_refused(tiny_set, tmp_path):
    """A checkpoint of `lora` never silently resumes a `full` run (which would train the backbone):
    not in its folder (another run's), not from a checkpoint path either."""
    from videopeft.config import ConfigError
    from videopeft.engine.checkpoint import CheckpointError

    quick = dict(train={"epochs": 1, "eval_every": 0, "resume": "auto"},
                 eval={"views_temporal": 1, "views_spatial": 1})
    train(tiny_config(tiny_set, tmp_path / "run", **quick))
    with pytest.raises(ConfigError, match=r"holds another run \(finished; method\.name changed\)"):
        train(tiny_config(tiny_set, tmp_path / "run", method={"name": "full"}, **quick))
    last = str(tmp_path / "run" / "checkpoints" / "last.pt")
    with pytest.raises(CheckpointError, match="cannot resume: method"):
        train(tiny_config(tiny_set, tmp_path / "new", method={"name": "full"},
                          **{**quick, "train": {**quick["train"], "resume": last}}))


def test_a_failing_run_still_writes_its_log_and_manifest(tiny_set, tmp_path, monkeypatch):
    calls = {"n": 0}
    original = ClassificationTask.loss

    def loss_then_crash(self, model, clips, labels):
        calls["n"] += 1
        if calls["n"] > 2:
            raise RuntimeError("simulated crash")
        return original(self, model, clips, labels)

    monkeypatch.setattr(ClassificationTask, "loss", loss_then_crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny_config(tiny_set, tmp_path / "run"))
    assert len(train_losses(tmp_path / "run")) == 2
    assert read_json(tmp_path / "run" / "manifest.json") == {}
