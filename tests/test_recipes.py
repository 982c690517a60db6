"""The shipped recipes are the papers' protocols. Every expected value here is written from the
papers' code, never computed with videopeft's own helpers:

* AdaptFormer (ShoufaChen/AdaptFormer): main_video.py builds `torch.optim.SGD(momentum=0.9)`
  (not Nesterov), lr = 0.1 x 1024 / 256 = 0.4 at 16 clips x 64 GPUs (README), warmup from 0
  (util/lr_sched.py), re-draws the head with trunc_normal std 0.01 and puts a plain
  BatchNorm1d(affine=False, eps=1e-6) in front of it; it trains on VideoMAE's pre-training loader
  with GroupMultiScaleCrop (datasets/kinetics.py) and tests 4 x 3 views by mean logits.
* VideoMAE (MCG-NJU/VideoMAE): fine-tuning AdamW (0.9, 0.999) at lr 5e-4 x 384 / 256 (6 clips x
  64 GPUs, scripts/*/finetune.sh), min_lr 1e-6 scaled alike, random-resized crop (0.08, 1),
  kinetics.py's linspace clips; pre-training AdamW (0.9, 0.95) at 1.5e-4 x 2048 / 256, min_lr
  1e-5 scaled alike, GroupMultiScaleCrop (datasets.py). Both warm up from 0: `--warmup_lr` is
  scaled but never passed to utils.cosine_scheduler.
* GroupMultiScaleCrop (MCG-NJU/VideoMAE:transforms.py) and the dense samplers (kinetics.py) are
  re-derived below from their text and compared with what videopeft draws.
"""
from __future__ import annotations

import copy
import dataclasses
import fnmatch
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from timm.optim import create_optimizer_v2

import videopeft
from engine_fixtures import REPO, tiny_config, tiny_set  # noqa: F401
from videopeft import peft
from videopeft.config import ConfigError, build_run_config, load_config, parse_overrides
from videopeft.constants import IMAGENET_MEAN, IMAGENET_STD
from videopeft.data import Manifest, build_eval_transform, build_train_transform, clip_indices
from videopeft.data.randaugment import ClipRandAugment
from videopeft.data.sampling import sample_dense
from videopeft.data.transforms import TrainTransform, multi_scale_crop_box
from videopeft.engine.builder import build_backbone, build_model
from videopeft.engine.distributed import DistInfo
from videopeft.engine.logging import MetricsLogger
from videopeft.engine.optim import (accum_steps_for, build_optimizer, build_scheduler,
                                    param_groups, scaled_lrs)
from videopeft.engine.pretrain import PretrainTask
from videopeft.engine.tasks import ClassificationTask
from videopeft.engine.train import Recipe, prepare_batchnorm, train
from videopeft.peft.base import BatchNormHead
from videopeft.peft.config import LoraConfig
from videopeft.studies import frame_study
from videopeft.studies.demo import load_demo_config

CONFIGS = REPO / "configs"
CLASSES = {"ssv2": 174, "hmdb51": 51, "kinetics": 400, "list": 100}


@dataclass(frozen=True)
class Expected:
    """One paper's recipe as its code sets it."""

    opt: type
    lr: float  # at the paper's global batch
    min_lr: float
    warmup_lr: float  # where the warmup starts
    crop: str
    train_antialias: bool
    head_std: float | None  # std of the head weight after building; None = no head
    bn_head: bool
    global_batch: int = 0
    momentum: float | None = None  # SGD only; nesterov must be False
    betas: tuple[float, float] | None = None  # Adam family only
    dense_train: str | None = None
    views: tuple[int, int, str] | None = None  # temporal, spatial, fusion
    num_sample: int = 1  # augmented clips per decoded video (VideoMAE's --num_sample)


ADAPTFORMER = Expected(torch.optim.SGD, lr=0.1 * 1024 / 256, min_lr=0.0, warmup_lr=0.0,
                       crop="multi_scale", train_antialias=True, head_std=0.01, bn_head=True,
                       global_batch=16 * 64, momentum=0.9, dense_train="stride",
                       views=(4, 3, "logit_mean"))
VIDEOMAE_FT = dict(opt=torch.optim.AdamW, lr=5e-4 * 384 / 256, min_lr=1e-6 * 384 / 256,
                   warmup_lr=0.0, crop="random_resized", train_antialias=False,
                   head_std=0.02 * 0.001, bn_head=False, global_batch=6 * 64, betas=(0.9, 0.999))
VIDEOMAE_PT = Expected(torch.optim.AdamW, lr=1.5e-4 * 2048 / 256, min_lr=1e-5 * 2048 / 256,
                       warmup_lr=0.0, crop="multi_scale", train_antialias=True, head_std=None,
                       bn_head=False, global_batch=32 * 64, betas=(0.9, 0.95), dense_train="stride")
SYNTHETIC_ADAPTFORMER = Expected(torch.optim.SGD, lr=0.05, min_lr=0.0, warmup_lr=0.0,
                                 crop="multi_scale", train_antialias=True, head_std=0.01,
                                 bn_head=True, momentum=0.9, views=(2, 3, "logit_mean"))
# the GPU kit's frame study measures cost on a random frozen backbone: no paper recipe to match
GPU_STUDY = Expected(torch.optim.AdamW, lr=1e-3, min_lr=0.0, warmup_lr=0.0, crop="random_resized",
                     train_antialias=False, head_std=0.02 * 0.001, bn_head=True,
                     betas=(0.9, 0.999), views=(2, 3, "logit_mean"))
DEMO = dict(opt=torch.optim.AdamW, lr=1e-2, warmup_lr=0.0, crop="random_resized",
            train_antialias=True, head_std=0.02 * 0.001, bn_head=True, betas=(0.9, 0.999))

EXPECTED: dict[str, Expected] = {
    **{f"{ds}/{m}.yaml": ADAPTFORMER for ds in ("ssv2", "hmdb51", "kinetics400")
       for m in ("adaptmlp", "vpt", "lora", "linear")},
    "kinetics400/full.yaml": Expected(**VIDEOMAE_FT, dense_train="linspace",
                                      views=(5, 3, "softmax_mean"), num_sample=2),
    "hmdb51/full.yaml": Expected(**VIDEOMAE_FT, dense_train="linspace",
                                 views=(5, 3, "softmax_mean"), num_sample=2),
    "ssv2/full.yaml": Expected(**VIDEOMAE_FT, views=(2, 3, "softmax_mean"), num_sample=2),
    "kinetics400/pretrain.yaml": VIDEOMAE_PT,
    "ssv2/pretrain.yaml": VIDEOMAE_PT,
    **{f"synthetic/{m}.yaml": SYNTHETIC_ADAPTFORMER for m in ("adaptmlp", "vpt", "lora", "linear")},
    "synthetic/full.yaml": Expected(torch.optim.AdamW, lr=1e-3, min_lr=1e-5, warmup_lr=0.0,
                                    crop="random_resized", train_antialias=False,
                                    head_std=0.02 * 0.001, bn_head=False, betas=(0.9, 0.999),
                                    views=(2, 3, "softmax_mean")),
    "synthetic/pretrain.yaml": Expected(torch.optim.AdamW, lr=1.5e-3, min_lr=1e-5, warmup_lr=0.0,
                                        crop="multi_scale", train_antialias=True, head_std=None,
                                        bn_head=False, betas=(0.9, 0.95), dense_train="stride"),
    "synthetic/frame_study_gpu.yaml": GPU_STUDY,
    "synthetic/frame_study_gpu_dry.yaml": dataclasses.replace(GPU_STUDY, views=(2, 1, "logit_mean")),
    "demo/demo.yaml": Expected(**DEMO, min_lr=0.0, views=(2, 3, "logit_mean")),
    "demo/smoke.yaml": Expected(**DEMO, min_lr=1e-6, views=(2, 1, "softmax_mean")),
}


def _load(name: str):
    path = CONFIGS / name
    if path.parent.name == "demo":
        return build_run_config(load_demo_config(path)[1], check_paths=False)
    return load_config(path, check_paths=False)


def test_every_shipped_config_has_its_papers_expectations():
    shipped = {str(p.relative_to(CONFIGS)) for p in CONFIGS.glob("*/*.yaml")}
    assert shipped == set(EXPECTED)


def _expand_braces(pattern: str) -> list[str]:
    """`a/{b,c}/{d,e}.yaml` -> the four paths (shell brace expansion, no nesting)."""
    parts = re.split(r"\{([^{}]*)\}", pattern)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(combo) for combo in itertools.product(*choices)]


def test_the_recipe_card_covers_every_shipped_config_and_the_readme_links_it():
    card = (REPO / "docs" / "RECIPES.md").read_text()
    named = [path for pattern in re.findall(r"`(configs/[^`\s]+\.yaml)`", card)
             for path in _expand_braces(pattern)]
    shipped = {str(p.relative_to(REPO)) for p in CONFIGS.glob("*/*.yaml")}
    covered = {path for path in shipped if any(fnmatch.fnmatch(path, n) for n in named)}
    assert covered == shipped, sorted(shipped - covered)
    assert "(docs/RECIPES.md)" in (REPO / "README.md").read_text()


def test_timm_sgd_is_nesterov_and_momentum_is_plain():
    """Why the AdaptFormer configs say `opt: momentum`: what the installed timm builds."""
    params = [torch.nn.Parameter(torch.zeros(2))]
    sgd = create_optimizer_v2(params, opt="sgd", lr=0.1, momentum=0.9)
    plain = create_optimizer_v2(params, opt="momentum", lr=0.1, momentum=0.9)
    assert type(sgd) is type(plain) is torch.optim.SGD
    assert sgd.defaults["nesterov"] is True and plain.defaults["nesterov"] is False


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_config_builds_its_papers_recipe(name):
    want, cfg = EXPECTED[name], _load(name)
    t, d = cfg.train, cfg.data
    small = copy.deepcopy(cfg)  # the same recipe on the tiny backbone
    small.model = dataclasses.replace(cfg.model, name="videomae_tiny", pretrained="", overrides={},
                                      patch_size=16, num_classes=CLASSES[d.layout])
    small.data = dataclasses.replace(d, num_frames=4, img_size=32)
    pretraining = name.endswith("pretrain.yaml")
    if pretraining:
        task = PretrainTask(small)
        model, opt_kwargs = task.build(small, []), task.opt_kwargs
    else:
        model, opt_kwargs = build_model(small, CLASSES[d.layout])[0], {}

    # optimizer, at the paper's global batch (whatever the world size)
    global_batch = t.global_batch or t.batch_size
    assert t.global_batch == want.global_batch
    for world in (1, 8, 64) if t.global_batch else ():
        assert accum_steps_for(t, world) * world * t.batch_size == global_batch
    lrs = scaled_lrs(cfg, global_batch)
    assert (lrs.lr, lrs.min_lr, lrs.warmup_lr) == pytest.approx(
        (want.lr, want.min_lr, want.warmup_lr), rel=1e-9, abs=1e-12)
    optimizer = build_optimizer(model, small, lrs.lr, opt_kwargs)
    assert type(optimizer) is want.opt
    if want.momentum is not None:
        assert optimizer.defaults["momentum"] == want.momentum
        assert optimizer.defaults["nesterov"] is False
    if want.betas is not None:
        assert optimizer.defaults["betas"] == want.betas

    # schedule: the warmup starts at warmup_lr and reaches lr
    scheduler = build_scheduler(optimizer, small, 10, lrs.min_lr, lrs.warmup_lr)
    scheduler.step_update(0)
    start = want.warmup_lr if t.warmup_epochs else want.lr
    assert max(g["lr"] for g in optimizer.param_groups) == pytest.approx(start, abs=1e-12)
    scheduler.step_update(round(t.warmup_epochs * 10))
    assert max(g["lr"] for g in optimizer.param_groups) == pytest.approx(want.lr)

    # head: init std, BatchNorm head, per-GPU statistics
    if want.head_std is not None:
        assert float(model.head.weight.detach().std()) == pytest.approx(want.head_std, rel=0.06)
        assert isinstance(model.head, BatchNormHead) is want.bn_head
        distributed = prepare_batchnorm(model, t.sync_bn, DistInfo(world_size=8,
                                                                   device=torch.device("cuda")))
        assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in distributed.modules())
        if want.bn_head:
            bn = model.head.bn
            assert type(bn) is torch.nn.BatchNorm1d and not bn.affine and bn.eps == 1e-6
        assert (cfg.eval.views_temporal, cfg.eval.views_spatial, cfg.eval.fusion) == want.views

    # data pipeline: repeated augmentation, crop kind, resize antialiasing, dense train rule,
    # clip shape; a step sees num_sample clips of each video while the lr counts videos
    assert d.num_sample == want.num_sample
    train_tf = build_train_transform(d)
    assert (train_tf.crop, train_tf.antialias) == (want.crop, want.train_antialias)
    assert build_eval_transform(d).antialias is (d.antialias is True)
    if want.dense_train is not None:
        assert (d.sampling, d.dense_train) == ("dense", want.dense_train)
    frames = torch.randint(0, 256, (d.num_frames, 24, 32, 3), dtype=torch.uint8)
    picks = clip_indices(d, 300, train=True)
    assert len(picks) == d.num_frames
    assert tuple(train_tf(frames).shape) == (3, d.num_frames, d.img_size, d.img_size)


def test_a_warmup_starts_at_warmup_lr_scaled_like_the_lr_and_rises_linearly(tiny_set, tmp_path):
    """VideoMAE's schedule (utils.cosine_scheduler): linear from start_warmup_value to the lr over
    the warmup steps, then a half cosine to min_lr; the shipped configs start from 0, as
    run_class_finetuning.py never passes --warmup_lr to it, and train.warmup_lr is scaled by
    global_batch / 256 as VideoMAE scales it."""
    cfg = tiny_config(tiny_set, tmp_path, train={"lr": 0.0, "blr": 0.1, "warmup_lr": 1e-3,
                                                 "min_lr": 1e-4, "warmup_epochs": 1,
                                                 "epochs": 3, "batch_size": 2})
    lrs = scaled_lrs(cfg, 512)  # global batch 512 = 2 x 256
    assert (lrs.lr, lrs.warmup_lr, lrs.min_lr) == pytest.approx((0.2, 2e-3, 2e-4))
    params = [torch.nn.Parameter(torch.zeros(2))]
    optimizer = torch.optim.SGD(params, lr=lrs.lr)
    scheduler = build_scheduler(optimizer, cfg, 10, lrs.min_lr, lrs.warmup_lr)
    seen = []
    for step in range(30):
        scheduler.step_update(step)
        seen.append(optimizer.param_groups[0]["lr"])
    assert seen[0] == pytest.approx(2e-3)
    assert seen[5] == pytest.approx(2e-3 + (0.2 - 2e-3) * 5 / 10)  # linear
    assert seen[10] == pytest.approx(0.2)  # the peak after 10 warmup steps
    assert all(a >= b for a, b in zip(seen[10:], seen[11:])) and seen[-1] > 2e-4


def test_ssv2_full_fine_tunes_the_ssv2_2400_epoch_checkpoint_its_comment_names():
    cfg = _load("ssv2/full.yaml")
    assert "ssv2" in cfg.model.pretrained and "2400" in cfg.model.pretrained
    assert cfg.train.epochs == 30  # scripts/ssv2/..._epoch_2400/finetune.sh --epochs 30


# ----------------------------------------------------------------------------- parameter counts

@pytest.fixture(scope="module")
def vit_b_meta():
    """ViT-B shapes on the meta device (weight init skipped): counting is free."""
    with pytest.MonkeyPatch.context() as patch:
        for cls in (torch.nn.Linear, torch.nn.Conv3d):
            patch.setattr(cls, "reset_parameters", lambda self: None)
        patch.setattr(videopeft.VideoViT, "_init_weights", lambda self, scale: None)
        return {n: videopeft.create_model("videomae_base", num_classes=n).to("meta")
                for n in set(CLASSES.values())}


@pytest.mark.parametrize("name", [n for n in sorted(EXPECTED) if EXPECTED[n] is ADAPTFORMER])
def test_the_trainable_count_a_config_states_is_what_it_trains(name, vit_b_meta):
    cfg = _load(name)
    stated = re.search(r"^# Trains ([\d,]+) parameters", (CONFIGS / name).read_text(), re.M)
    model = copy.deepcopy(vit_b_meta[CLASSES[cfg.data.layout]])
    assert peft.apply(model, cfg.method).num_trainable == int(stated.group(1).replace(",", ""))


def test_lora_on_q_and_v_of_vit_b_adds_two_rank_8_updates_per_block(vit_b_meta):
    model = copy.deepcopy(vit_b_meta[174])
    report = peft.apply(model, {"name": "lora", "rank": 8, "targets": ["attn.q", "attn.v"]})
    assert report.group("lora").count == 12 * 2 * (8 * 768 + 768 * 8) == 294_912


# ----------------------------------------------------------------------------- LoRA on q, v

def _qv_lora(tiny_vit):
    peft.apply(tiny_vit, {"name": "lora", "rank": 2, "alpha": 4.0, "targets": ["attn.q", "attn.v"]})
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in tiny_vit.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen))
    return tiny_vit


def test_lora_on_q_and_v_updates_only_those_rows_of_the_fused_qkv(tiny_vit):
    base = tiny_vit.blocks[0].attn.qkv
    weight, bias = base.weight.detach().clone(), None if base.bias is None else base.bias.clone()
    layer = _qv_lora(tiny_vit).blocks[0].attn.qkv
    x = torch.randn(5, 48, generator=torch.Generator().manual_seed(4))
    d, s = 48, 4.0 / 2
    a_q, b_q = layer.lora_down_q.weight, layer.lora_up_q.weight
    a_v, b_v = layer.lora_down_v.weight, layer.lora_up_v.weight
    # W x + [s B_q A_q x ; 0 ; s B_v A_v x] (Hu et al., W_q and W_v adapted; rows ordered q, k, v)
    expected = F.linear(x, weight, bias) + torch.cat(
        [s * x @ a_q.T @ b_q.T, torch.zeros(5, d), s * x @ a_v.T @ b_v.T], dim=1)
    torch.testing.assert_close(layer(x), expected)
    layer.merge()
    merged = layer.weight.detach()
    assert torch.equal(merged[d:2 * d], weight[d:2 * d])  # the key rows are untouched, bit for bit
    torch.testing.assert_close(merged[:d], weight[:d] + s * b_q @ a_q)
    torch.testing.assert_close(merged[2 * d:], weight[2 * d:] + s * b_v @ a_v)
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


def test_lora_q_v_trains_only_its_factors_and_merges_exactly(tiny_vit, clip):
    model = _qv_lora(tiny_vit)
    lora = sorted(n for n, p in model.named_parameters() if p.requires_grad and "lora" in n)
    assert lora == sorted(f"blocks.{i}.attn.qkv.lora_{k}_{p}.weight" for i in range(2)
                          for k in ("down", "up") for p in ("q", "v"))
    before = model(clip)
    assert peft.merge_lora(model) == 2
    torch.testing.assert_close(model(clip), before, rtol=1e-5, atol=1e-5)
    peft.unmerge_lora(model)
    torch.testing.assert_close(model(clip), before, rtol=1e-6, atol=1e-6)


def test_lora_q_v_adapter_file_round_trips(tiny_vit, clip, tmp_path):
    model = _qv_lora(tiny_vit)
    path = peft.save_adapter(model, tmp_path / "qv.safetensors", extra={})
    torch.manual_seed(0)
    fresh = videopeft.create_model("videomae_tiny", num_classes=5, num_frames=4, img_size=32)
    with torch.no_grad():
        fresh.load_state_dict({k: v for k, v in model.state_dict().items() if "lora" not in k
                               and not k.startswith(("head.", "fc_norm."))}, strict=False)
    peft.load_adapter(fresh.eval(), path)
    torch.testing.assert_close(fresh(clip), model(clip))


def test_lora_targets_the_whole_qkv_or_its_parts_not_both():
    with pytest.raises(ConfigError, match="either attn.qkv or its parts"):
        LoraConfig(targets=("attn.qkv", "attn.v"))


# ----------------------------------------------------------------------------- crops and resizes

def _reference_multi_scale_boxes(height: int, width: int, size: int) -> set[tuple]:
    """GroupMultiScaleCrop._sample_crop_size / fill_fix_offset (more_fix_crop), from its text,
    as (top, left, h, w)."""
    base = min(width, height)
    sizes = [int(base * x) for x in (1, .875, .75, .66)]
    crop_h = [size if abs(x - size) < 3 else x for x in sizes]
    crop_w = [size if abs(x - size) < 3 else x for x in sizes]
    boxes = set()
    for i, h in enumerate(crop_h):
        for j, w in enumerate(crop_w):
            if abs(i - j) > 1:
                continue
            ws, hs = (width - w) // 4, (height - h) // 4
            for x, y in [(0, 0), (4 * ws, 0), (0, 4 * hs), (4 * ws, 4 * hs), (2 * ws, 2 * hs),
                         (0, 2 * hs), (4 * ws, 2 * hs), (2 * ws, 4 * hs), (2 * ws, 0),
                         (ws, hs), (3 * ws, hs), (ws, 3 * hs), (3 * ws, 3 * hs)]:
                boxes.add((y, x, h, w))
    return boxes


@pytest.mark.parametrize("height, width, size", [(240, 320, 224), (256, 340, 224), (40, 48, 32)])
def test_multi_scale_crop_draws_exactly_the_boxes_the_reference_allows(height, width, size):
    allowed = _reference_multi_scale_boxes(height, width, size)
    gen = torch.Generator().manual_seed(0)
    drawn = {multi_scale_crop_box(height, width, size, generator=gen) for _ in range(4000)}
    assert drawn == allowed


def _pattern(height: int, width: int) -> torch.Tensor:
    """Two uint8 frames with stripes finer than the resize (where antialiasing shows)."""
    y, x = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    frame = torch.stack([(x % 3) * 120, (y % 2) * 200, ((x + y) % 5) * 60], -1)
    return frame.to(torch.uint8)[None].expand(2, -1, -1, -1).contiguous()


def _float_normalised(frames: torch.Tensor) -> torch.Tensor:
    x = frames.permute(0, 3, 1, 2).float() / 255
    return (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(
        1, 3, 1, 1)


ONE_STEP = 1.01 / (255 * min(IMAGENET_STD))  # one uint8 level after normalisation


def test_random_resized_crop_resizes_as_videomae_without_antialias():
    """VideoMAE normalises, then F.interpolate(bilinear) the float crop (video_transforms.py
    random_resized_crop); videopeft resizes uint8 first, so they agree to one uint8 level."""
    frames = _pattern(64, 64)  # square, scale (1, 1): the crop is the whole frame
    ours = TrainTransform(40, scale=(1.0, 1.0))(frames)
    reference = F.interpolate(_float_normalised(frames), size=(40, 40), mode="bilinear",
                              align_corners=False).transpose(0, 1)
    assert (ours - reference).abs().max() <= ONE_STEP
    antialiased = TrainTransform(40, scale=(1.0, 1.0), antialias=True)(frames)
    assert (antialiased - reference).abs().max() > 10 * ONE_STEP  # the test can tell them apart


def test_multi_scale_crop_resizes_as_pil_bilinear():
    """GroupMultiScaleCrop resizes each PIL crop with Image.BILINEAR, which antialiases."""
    frames = _pattern(48, 60)
    gen = torch.Generator().manual_seed(0)
    tf = TrainTransform(32, crop="multi_scale", generator=gen)
    top, left, h, w = multi_scale_crop_box(48, 60, 32, generator=torch.Generator().manual_seed(0))
    crop = frames[0, top:top + h, left:left + w].numpy()
    pil = np.asarray(Image.fromarray(crop).resize((32, 32), Image.BILINEAR))
    reference = _float_normalised(torch.from_numpy(pil.copy())[None])[0]
    assert (tf(frames)[:, 0] - reference).abs().max() <= ONE_STEP
    plain = F.interpolate(torch.from_numpy(crop).permute(2, 0, 1)[None], size=(32, 32),
                          mode="bilinear", align_corners=False)[0].permute(1, 2, 0)
    assert (_float_normalised(plain[None])[0] - reference).abs().max() > 10 * ONE_STEP


def test_eval_resize_has_no_antialias_as_videomaes_opencv_resize():
    """VideoMAE's test resize is cv2.resize(INTER_LINEAR) (functional.py resize_clip), the same
    half-pixel bilinear interpolation as F.interpolate without antialias."""
    frames = _pattern(64, 96)
    cfg = dataclasses.replace(_load("kinetics400/full.yaml").data, img_size=32)
    prepared = build_eval_transform(cfg, short_side=40).prepare(frames)
    reference = F.interpolate(_float_normalised(frames), size=(40, 60), mode="bilinear",
                              align_corners=False).transpose(0, 1)
    assert (prepared - reference).abs().max() <= ONE_STEP


def test_antialias_true_keeps_the_resize_the_demo_was_measured_with():
    frames = _pattern(40, 40)
    ours = TrainTransform(32, scale=(1.0, 1.0), antialias=True)(frames)
    before = F.interpolate(frames.permute(0, 3, 1, 2), size=(32, 32), mode="bilinear",
                           align_corners=False, antialias=True)  # the resize of every release so far
    expected = _float_normalised(before.permute(0, 2, 3, 1)).transpose(0, 1)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-6)


def test_rand_augment_is_set_up_as_videomaes():
    """create_random_augment: translate_const int(224 * 0.45), bicubic (--train_interpolation),
    and rand_augment.py's grey fill (its hparams carry no img_mean)."""
    ops = ClipRandAugment("rand-m7-n4-mstd0.5-inc1", 224).ops.ops
    assert {(o.kwargs["fillcolor"], o.kwargs["resample"]) for o in ops} == {
        ((128, 128, 128), Image.BICUBIC)}
    assert {o.hparams["translate_const"] for o in ops} == {100}


# ----------------------------------------------------------------------------- dense clips

def _videomae_finetune_clip(n: int, clip: int, stride: int, end: int | None) -> list[int]:
    """MCG-NJU/VideoMAE:kinetics.py VideoClsDataset.loadvideo_decord, one segment."""
    span = clip * stride
    if n <= span:
        index = np.linspace(0, n, num=n // stride)
        index = np.concatenate((index, np.ones(clip - n // stride) * n))
        return np.clip(index, 0, n - 1).astype(np.int64).tolist()
    start = end - span
    index = np.linspace(start, end, num=clip)
    return np.clip(index, start, end - 1).astype(np.int64).tolist()


def _videomae_pretrain_clip(n: int, clip: int, stride: int, start: int) -> list[int]:
    """MCG-NJU/VideoMAE:kinetics.py VideoMAE._video_TSN_decord_batch_loader, one segment, no
    jitter, from the 0-based start that _sample_train_indices drew."""
    ids, offset = [], start + 1
    for _ in range(0, clip * stride, stride):
        ids.append(offset - 1)
        if offset + stride < n:
            offset += stride
    return ids


@pytest.mark.parametrize("clip, stride", [(16, 4), (8, 4), (16, 2)])
def test_dense_train_clips_are_videomaes_linspace_for_lengths_1_to_600(clip, stride):
    gen, span = torch.Generator().manual_seed(0), clip * stride
    for n in range(1, 601):
        picks = sample_dense(n, clip, stride, train=True, generator=gen)
        end = picks[0] + span if n > span else None  # start = end - span is the first index
        assert end is None or span <= end < n, (n, end)  # np.random.randint(span, n)
        assert picks == _videomae_finetune_clip(n, clip, stride, end), n


def test_dense_train_window_end_takes_every_value_videomae_draws():
    gen = torch.Generator().manual_seed(0)
    ends = {sample_dense(80, 16, 4, train=True, generator=gen)[0] + 64 for _ in range(400)}
    assert ends == set(range(64, 80))


@pytest.mark.parametrize("clip, stride", [(16, 4), (8, 4), (16, 2), (4, 1)])
def test_dense_stride_rule_is_videomaes_pretraining_loader_for_lengths_1_to_600(clip, stride):
    gen, span = torch.Generator().manual_seed(0), clip * stride
    for n in range(1, 601):
        picks = sample_dense(n, clip, stride, train=True, generator=gen, train_rule="stride")
        start = picks[0]
        assert 0 <= start <= max(n - span, 0), n  # randint(n - span + 1), else 0
        assert picks == _videomae_pretrain_clip(n, clip, stride, start), n


# ----------------------------------------------------------------------------- global batch

@pytest.mark.parametrize("name", [n for n in sorted(EXPECTED) if EXPECTED[n].global_batch])
def test_global_batch_gives_the_accumulation_of_every_world_size_that_divides_it(name):
    t = _load(name).train
    for world in (1, 2, 3, 4, 8, 16, 32, 64, 128):
        if t.global_batch % (world * t.batch_size) == 0:
            assert accum_steps_for(t, world) == t.global_batch // (world * t.batch_size)
        else:
            with pytest.raises(ConfigError, match=r"train.global_batch: expected a multiple of "
                                                  rf"world size x batch_size = {world} x"):
                accum_steps_for(t, world)


def test_global_batch_excludes_accum_steps_and_needs_whole_batches():
    with pytest.raises(ConfigError, match="train.global_batch: expected a multiple of batch_size"):
        load_config(None, {"train": {"batch_size": 6, "global_batch": 100}})
    with pytest.raises(ConfigError, match="train.accum_steps: expected accum_steps 1"):
        load_config(None, {"train": {"batch_size": 6, "global_batch": 96, "accum_steps": 2}})


def test_a_run_states_its_global_batch_accumulation_and_lr(tiny_set, tmp_path):
    cfg = tiny_config(tiny_set, tmp_path, train={"batch_size": 3, "global_batch": 6, "lr": 0.0,
                                                  "blr": 0.1, "warmup_lr": 1e-3})
    logger = MetricsLogger(tmp_path, enabled=True)
    recipe = Recipe(cfg, ClassificationTask(), DistInfo(), tmp_path, logger)
    recipe.setup(Manifest())
    logger.close()
    setup = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[0])
    assert (setup["global_batch"], setup["accum_steps"], setup["batch_size"]) == (6, 2, 3)
    assert setup["lr"] == pytest.approx(0.1 * 6 / 256)
    assert setup["warmup_lr"] == pytest.approx(1e-3 * 6 / 256)
    assert recipe.sampler.step_size == 6  # the loader hands out 2 micro-batches of 3 per step


def test_a_world_that_cannot_split_the_global_batch_stops_before_any_folder(tiny_set, tmp_path,
                                                                            monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    cfg = tiny_config(tiny_set, tmp_path / "run", train={"batch_size": 3, "global_batch": 6})
    with pytest.raises(ConfigError, match="world size x batch_size = 4 x 3 = 12, got 6"):
        train(cfg)
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- head, BN, decay

def test_head_init_std_redraws_the_head_weight_after_loading(tmp_path):
    torch.manual_seed(0)
    donor = videopeft.create_model("videomae_tiny", num_classes=100, num_frames=4, img_size=32)
    with torch.no_grad():
        donor.head.weight.fill_(1.0)
        donor.head.bias.fill_(0.5)
    torch.save({"model": donor.state_dict()}, tmp_path / "finetune.pth")
    cfg = load_config(None, {"data": {"num_frames": 4, "img_size": 32}, "model": {
        "name": "videomae_tiny", "pretrained": str(tmp_path / "finetune.pth"),
        "head_init_std": 0.01}})
    model = build_backbone(cfg, 100)
    assert float(model.head.weight.detach().std()) == pytest.approx(0.01, rel=0.06)  # not 1.0
    assert torch.equal(model.head.bias, donor.head.bias)  # AdaptFormer re-draws the weight only
    assert torch.equal(model.blocks[0].attn.qkv.weight, donor.blocks[0].attn.qkv.weight)


def test_sync_bn_is_a_choice_and_off_keeps_per_gpu_statistics(tiny_vit):
    peft.apply(tiny_vit, {"name": "linear", "head_bn": True})
    gpus = DistInfo(world_size=2, device=torch.device("cuda"))
    kept = prepare_batchnorm(copy.deepcopy(tiny_vit), False, gpus)
    synced = prepare_batchnorm(copy.deepcopy(tiny_vit), True, gpus)
    assert type(kept.head.bn) is torch.nn.BatchNorm1d
    assert isinstance(synced.head.bn, torch.nn.SyncBatchNorm)
    cpus = DistInfo(world_size=2, device=torch.device("cpu"))
    assert type(prepare_batchnorm(copy.deepcopy(tiny_vit), True, cpus).head.bn) is \
        torch.nn.BatchNorm1d  # SyncBatchNorm needs CUDA


def test_pretraining_keeps_mask_token_out_of_weight_decay():
    cfg = load_config(None, {"data": {"num_frames": 4, "img_size": 32},
                             "model": {"name": "videomae_tiny"},
                             "pretrain": {"decoder_dim": 24, "decoder_depth": 1,
                                          "decoder_heads": 3}})
    model = PretrainTask(cfg).build(cfg, [])
    groups = param_groups(model, 0.05, no_weight_decay=cfg.train.no_weight_decay)
    decay = {n: g["weight_decay"] for g in groups for n in g["names"]}
    assert decay["mask_token"] == 0.0  # modeling_pretrain.py no_weight_decay()
    assert decay["encoder.patch_embed.proj.weight"] == 0.05


@pytest.mark.parametrize("name", ["demo.yaml", "smoke.yaml"])
def test_the_demo_pretrains_with_the_weight_decay_it_was_measured_with(name):
    demo, base = load_demo_config(CONFIGS / "demo" / name)
    cfg = build_run_config(base.override(parse_overrides(list(demo.pretrain_overrides))),
                           check_paths=False)
    assert "mask_token" not in cfg.train.no_weight_decay


# ----------------------------------------------------------------------------- frame study

def test_frame_study_keeps_the_span_of_dense_clips_or_the_stride(tiny_set, tmp_path,
                                                                 monkeypatch):
    base = tiny_config(tiny_set, tmp_path, data={"sampling": "dense", "num_frames": 4,
                                                 "stride": 4})
    seen = {}

    def fake_train(cfg, run_name):  # stands in for a run: records the cell's clip
        seen[run_name] = (cfg.data.num_frames, cfg.data.stride)
        out = Path(cfg.output_dir)
        out.mkdir(parents=True)
        (out / "results.json").write_text(json.dumps({
            "video_top1": 50.0, "video_top5": 100.0, "clip_top1": 50.0, "clip_top5": 100.0,
            "params": {"trainable": 1}, "gflops_per_view": 0.1}))
        (out / "log.jsonl").write_text("")

    monkeypatch.setattr(frame_study, "train", fake_train)
    coverage = 4 * 4  # the base clip's span: 4 frames x stride 4
    rows = frame_study.run_frame_study(base, [2, 4, 8], ["linear"], out_dir=tmp_path / "cov")
    assert {r["frames"]: (r["stride"], r["span"]) for r in rows} == {
        f: (coverage // f, coverage) for f in (2, 4, 8)}
    assert seen == {f"linear-f{f}x{coverage // f}-s0": (f, coverage // f) for f in (2, 4, 8)}
    table = (tmp_path / "cov" / "frame_study.csv").read_text().splitlines()
    assert table[0].startswith("method,frames,seed,sampling,stride,span,")
    assert table[1].startswith("linear,2,0,dense,8,16,")

    rows = frame_study.run_frame_study(base, [2, 8], ["linear"], out_dir=tmp_path / "fixed",
                                       policy="fixed")
    assert [(r["stride"], r["span"]) for r in rows] == [(4, 8), (4, 32)]
    with pytest.raises(ConfigError, match="policy=coverage cannot spread 32 frames"):
        frame_study.run_frame_study(base, [32], ["linear"], out_dir=tmp_path / "too_many")


def test_frame_study_of_segment_clips_keeps_the_stride_and_the_cell_names(tiny_set, tmp_path):
    base = tiny_config(tiny_set, tmp_path)  # segment sampling, as the demo
    cell = frame_study.cell_config(base, "linear", 2, 0, tmp_path)
    assert cell.data.stride == base.data.stride
    assert frame_study.cell_sampling(cell) == {"sampling": "segment", "stride": None,
                                               "span": "whole video"}
    assert frame_study.cell_name("linear", 2, 0) == "linear-f2-s0"
