"""Checkpoint loading: parity with transformers VideoMAE and timm, layouts, positions, errors.

The official layouts are written here from HF weights with an independent key mapping (split/concat
qkv by hand), so a loader bug cannot hide behind a shared helper.
"""
from __future__ import annotations

import datetime
import logging
import os
import re

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import videopeft
from videopeft.models.checkpoints import (CHECKPOINT_LAYOUTS, CheckpointError, LoadReport,
                                          convert_state_dict, detect_layout, load_pretrained,
                                          save_pretrained)
from videopeft.models.converters import (HF_QKV_PARTS, hf_to_videopeft_key,
                                         videopeft_to_hf_key)
from videopeft.models.pos_embed import resample_pos_embed_3d, sinusoid_table

transformers = pytest.importorskip("transformers")
timm_vit = pytest.importorskip("timm.models.vision_transformer")

DIM, DEPTH, HEADS, CLASSES = 48, 2, 3, 5


def hf_model(num_frames: int = 4, use_mean_pooling: bool = True, seed: int = 0):
    """A tiny HF VideoMAE classifier with every weight random (LNs and q/v biases included)."""
    cfg = transformers.VideoMAEConfig(
        image_size=32, patch_size=16, num_frames=num_frames, hidden_size=DIM,
        num_hidden_layers=DEPTH, num_attention_heads=HEADS, intermediate_size=4 * DIM,
        num_labels=CLASSES, layer_norm_eps=1e-6, use_mean_pooling=use_mean_pooling,
        attn_implementation="eager")
    torch.manual_seed(seed)
    model = transformers.VideoMAEForVideoClassification(cfg).eval()
    if model.fc_norm is not None:
        # HF builds fc_norm with PyTorch's eps 1e-5 (huggingface/transformers:modeling_videomae.py)
        model.fc_norm.eps = 1e-6
    with torch.no_grad():
        for name, p in model.named_parameters():
            is_ln_scale = "norm" in name and name.endswith("weight")
            p.copy_(torch.randn_like(p) * 0.2 + (1.0 if is_ln_scale else 0.0))
    return model


def vp_model(num_frames: int = 4, **kw) -> videopeft.VideoViT:
    return videopeft.create_model("videomae_tiny", num_classes=CLASSES, num_frames=num_frames,
                                  img_size=32, **kw).eval()


def clip_batch(num_frames: int = 4, size: int = 32) -> torch.Tensor:
    return torch.randn(2, 3, num_frames, size, size, generator=torch.Generator().manual_seed(3))


@torch.no_grad()
def hf_logits(model, x: torch.Tensor) -> torch.Tensor:
    return model(pixel_values=x.permute(0, 2, 1, 3, 4)).logits  # HF takes (B, T, C, H, W)


@torch.no_grad()
def hf_tokens(model, x: torch.Tensor) -> torch.Tensor:
    return model.videomae(pixel_values=x.permute(0, 2, 1, 3, 4)).last_hidden_state


@torch.no_grad()
def vp_tokens(model: videopeft.VideoViT, x: torch.Tensor) -> torch.Tensor:
    return model.forward_blocks(model.embed(x)[0])


def official_finetune_sd(hf) -> dict[str, torch.Tensor]:
    """The official fine-tune key layout (MCG-NJU/VideoMAE:modeling_finetune.py), written from HF
    weights by hand."""
    sd = hf.state_dict()
    out = {"patch_embed.proj.weight": sd["videomae.embeddings.patch_embeddings.projection.weight"],
           "patch_embed.proj.bias": sd["videomae.embeddings.patch_embeddings.projection.bias"]}
    for i in range(DEPTH):
        hp, op = f"videomae.encoder.layer.{i}.", f"blocks.{i}."
        att = hp + "attention.attention."
        out[op + "attn.qkv.weight"] = torch.cat(
            [sd[att + "query.weight"], sd[att + "key.weight"], sd[att + "value.weight"]])
        out[op + "attn.q_bias"] = sd[att + "query.bias"]
        out[op + "attn.v_bias"] = sd[att + "value.bias"]
        for ours, theirs in [("norm1", "layernorm_before"), ("norm2", "layernorm_after"),
                             ("attn.proj", "attention.output.dense"),
                             ("mlp.fc1", "intermediate.dense"), ("mlp.fc2", "output.dense")]:
            for t in ("weight", "bias"):
                out[f"{op}{ours}.{t}"] = sd[f"{hp}{theirs}.{t}"]
    if hf.fc_norm is not None:
        out["fc_norm.weight"], out["fc_norm.bias"] = sd["fc_norm.weight"], sd["fc_norm.bias"]
    else:
        out["norm.weight"] = sd["videomae.layernorm.weight"]
        out["norm.bias"] = sd["videomae.layernorm.bias"]
    out["head.weight"], out["head.bias"] = sd["classifier.weight"], sd["classifier.bias"]
    return out


def official_pretrain_sd(hf) -> dict[str, torch.Tensor]:
    """The official pre-train layout: `encoder.*`, encoder.norm and a decoder to be ignored."""
    ft = official_finetune_sd(hf)
    out = {f"encoder.{k}": v for k, v in ft.items() if not k.startswith(("head.", "fc_norm."))}
    out.setdefault("encoder.norm.weight", torch.rand(DIM) + 0.5)
    out.setdefault("encoder.norm.bias", torch.randn(DIM))
    out["encoder_to_decoder.weight"] = torch.randn(24, DIM)
    out["mask_token"] = torch.randn(1, 1, 24)
    out["decoder.blocks.0.norm1.weight"] = torch.ones(24)
    out["decoder.norm.weight"] = torch.ones(24)
    out["decoder.head.weight"] = torch.randn(1536, 24)
    return out


# ------------------------------------------------------------------------- HF parity (must show)


@pytest.fixture(scope="module")
def hf():
    return hf_model()


@pytest.fixture(scope="module")
def hf_dir(hf, tmp_path_factory):
    path = tmp_path_factory.mktemp("hf")
    hf.save_pretrained(path)
    return path


def test_hf_directory_gives_the_same_logits(hf, hf_dir):
    model, x = vp_model(), clip_batch()
    report = load_pretrained(model, hf_dir)
    assert report.layout == "hf" and not report.missing and not report.unexpected
    with torch.no_grad():
        delta = (model(x) - hf_logits(hf, x)).abs().max().item()
    assert delta <= 1e-4


@pytest.mark.parametrize("bias_names", [("q_bias", "v_bias"), ("query.bias", "value.bias")])
def test_both_hf_qv_bias_namings_load(hf, tmp_path, bias_names):
    """transformers 4.x (and 5.x save_pretrained) write q_bias/v_bias; 5.x modules hold
    query.bias/value.bias. Written explicitly here so the test does not depend on the version."""
    q_name, v_name = bias_names
    sd = {}
    for key, value in hf.state_dict().items():
        key = re.sub(r"\.(q_bias|query\.bias)$", f".{q_name}", key)
        key = re.sub(r"\.(v_bias|value\.bias)$", f".{v_name}", key)
        sd[key] = value.contiguous()
    assert sum(k.endswith(q_name) for k in sd) == DEPTH
    hf.config.to_json_file(tmp_path / "config.json")
    save_file(sd, tmp_path / "model.safetensors")
    model, x = vp_model(), clip_batch()
    report = load_pretrained(model, tmp_path)
    assert not report.missing and not report.unexpected
    torch.testing.assert_close(model(x).detach(), hf_logits(hf, x), atol=1e-4, rtol=0)


def test_hf_zero_key_bias_is_checked_and_ignored(hf, tmp_path):
    sd = dict(hf.state_dict())
    for i in range(DEPTH):
        sd[f"videomae.encoder.layer.{i}.attention.attention.key.bias"] = torch.zeros(DIM)
    torch.save(sd, tmp_path / "with_key_bias.bin")
    report = load_pretrained(vp_model(), tmp_path / "with_key_bias.bin")
    reason = report.ignored["videomae.encoder.layer.1.attention.attention.key.bias"]
    assert reason.startswith("zero key bias")
    assert not report.unexpected and not report.notes


@pytest.mark.parametrize("filename", ["weights.safetensors", "weights.bin"])
def test_hf_single_file_gives_the_same_logits(hf, tmp_path, filename):
    path = tmp_path / filename
    if filename.endswith(".safetensors"):
        save_file({k: v.contiguous() for k, v in hf.state_dict().items()}, path)
    else:
        torch.save(hf.state_dict(), path)
    model, x = vp_model(), clip_batch()
    report = load_pretrained(model, path)
    assert report.layout == "hf" and not report.missing
    torch.testing.assert_close(model(x).detach(), hf_logits(hf, x), atol=1e-4, rtol=0)


def test_hf_pytorch_model_bin_directory_and_sharded_safetensors(hf, tmp_path):
    (tmp_path / "bin").mkdir()
    hf.config.to_json_file(tmp_path / "bin" / "config.json")
    torch.save(hf.state_dict(), tmp_path / "bin" / "pytorch_model.bin")
    hf.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    x = clip_batch()
    for sub in ("bin", "sharded"):
        model = vp_model()
        assert not load_pretrained(model, tmp_path / sub).missing
        torch.testing.assert_close(model(x).detach(), hf_logits(hf, x), atol=1e-4, rtol=0)


# ------------------------------------------------------------------- official layouts (must show)


@pytest.mark.parametrize("wrap", ["model", "module", None])
def test_official_finetune_layout_gives_the_same_logits(hf, tmp_path, wrap):
    sd = official_finetune_sd(hf)
    path = tmp_path / "finetune.pth"
    torch.save({wrap: sd, "epoch": 3} if wrap else sd, path)
    model, x = vp_model(), clip_batch()
    report = load_pretrained(model, path)
    assert report.layout == "official_finetune"
    assert not report.missing and not report.unexpected and not report.ignored
    torch.testing.assert_close(model(x).detach(), hf_logits(hf, x), atol=1e-4, rtol=0)


@pytest.mark.parametrize("wrap", ["model", "module", None])
def test_official_pretrain_layout_gives_the_same_features(hf, tmp_path, wrap):
    sd = official_pretrain_sd(hf)
    path = tmp_path / "pretrain.pth"
    torch.save({wrap: sd} if wrap else sd, path)
    model, x = vp_model(), clip_batch()
    report = load_pretrained(model, path)
    assert report.layout == "official_pretrain"
    assert set(report.missing) == {"fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"}
    assert set(report.unexpected) == {"norm.weight", "norm.bias"}  # mean-pooling model: no norm
    assert {"mask_token", "encoder_to_decoder.weight", "decoder.head.weight"} <= set(report.ignored)
    torch.testing.assert_close(vp_tokens(model, x), hf_tokens(hf, x), atol=1e-4, rtol=0)


def test_official_pretrain_norm_loads_into_a_token_pooling_model(tmp_path):
    hf_cls = hf_model(use_mean_pooling=False, seed=1)
    torch.save({"model": official_pretrain_sd(hf_cls)}, tmp_path / "p.pth")
    model, x = vp_model(use_mean_pooling=False), clip_batch()
    report = load_pretrained(model, tmp_path / "p.pth")
    assert set(report.missing) == {"head.weight", "head.bias"} and not report.unexpected
    expected = hf_cls.videomae(pixel_values=x.permute(0, 2, 1, 3, 4)).last_hidden_state[:, 0]
    torch.testing.assert_close(model.forward_features(x).detach(), expected.detach(),
                               atol=1e-4, rtol=0)


def test_hf_pretraining_model_loads_its_encoder_and_ignores_the_decoder(tmp_path):
    cfg = hf_model().config
    torch.manual_seed(4)
    hf_pre = transformers.VideoMAEForPreTraining(cfg).eval()
    hf_pre.save_pretrained(tmp_path)
    model, x = vp_model(), clip_batch()
    report = load_pretrained(model, tmp_path)
    assert set(report.missing) == {"fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"}
    assert not report.unexpected and "mask_token" in report.ignored
    assert any(k.startswith("decoder.decoder_layers.") for k in report.ignored)
    with torch.no_grad():
        expected = hf_pre.videomae(pixel_values=x.permute(0, 2, 1, 3, 4)).last_hidden_state
    torch.testing.assert_close(vp_tokens(model, x), expected, atol=1e-4, rtol=0)


def test_official_layer_scale_names_become_timm_names(hf):
    sd = official_finetune_sd(hf)
    for i in range(DEPTH):
        sd[f"blocks.{i}.gamma_1"], sd[f"blocks.{i}.gamma_2"] = torch.rand(DIM), torch.rand(DIM)
    model = vp_model(init_values=0.1)
    new_sd, _ = convert_state_dict(sd, model)
    assert "blocks.1.ls2.gamma" in new_sd and not any("gamma_" in k for k in new_sd)
    assert "blocks.0.gamma_1" in sd  # pure: input untouched


def test_official_args_namespace_is_read_with_weights_only(hf, tmp_path):
    import argparse
    args = argparse.Namespace(num_frames=16, input_size=32, tubelet_size=2, lr=1e-3)
    torch.save({"model": official_finetune_sd(hf), "args": args}, tmp_path / "ckpt.pth")
    model = vp_model(num_frames=8)
    report = load_pretrained(model, tmp_path / "ckpt.pth", pos_policy="resample")
    assert model.pos_source_grid == (8, 2, 2)
    assert "(8, 2, 2)" in report.resized["pos_embed"]


def test_detect_layout_by_sentinel_keys(hf):
    timm_sd = timm_vit.VisionTransformer(img_size=32, patch_size=16, embed_dim=DIM, depth=1,
                                         num_heads=HEADS).state_dict()
    assert detect_layout(hf.state_dict()) == "hf"
    assert detect_layout(official_finetune_sd(hf)) == "official_finetune"
    assert detect_layout(official_pretrain_sd(hf)) == "official_pretrain"
    assert detect_layout(timm_sd) == "timm"
    assert detect_layout(vp_model(init_values=0.1).state_dict()) == "videopeft"
    with pytest.raises(CheckpointError, match="no known layout"):
        detect_layout({"foo.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match=", ".join(CHECKPOINT_LAYOUTS)):
        convert_state_dict(hf.state_dict(), vp_model(), layout="caffe")


def test_hf_key_names_map_both_ways(hf_dir):
    """The HF tables read backwards (for an exporter) give the names transformers writes to a
    file, for every key but the separate q/k/v weights, which VideoViT fuses into one qkv."""
    with safe_open(str(hf_dir / "model.safetensors"), framework="pt") as f:
        file_keys = set(f.keys())
    qkv = {k for k in file_keys if re.search(r"attention\.(query|key|value)\.weight$", k)}
    assert len(qkv) == len(HF_QKV_PARTS) * DEPTH
    ours = {hf_to_videopeft_key(k): k for k in file_keys - qkv}
    assert {k: videopeft_to_hf_key(k) for k in ours} == ours
    model_keys = set(vp_model().state_dict())
    assert set(ours) == model_keys - {f"blocks.{i}.attn.qkv.weight" for i in range(DEPTH)}
    assert videopeft_to_hf_key("blocks.1.mlp.fc1.lora_a", backbone_prefix="") == \
        "encoder.layer.1.intermediate.dense.lora_a"
    for key in ("blocks.0.attn.qkv.weight", "blocks.0.ls1.gamma", "pos_embed"):
        with pytest.raises(ValueError, match=re.escape(key)):
            videopeft_to_hf_key(key)


# ----------------------------------------------------------------------- frame counts, positions


@pytest.fixture(scope="module")
def hf16_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("hf16")
    hf_model(num_frames=16).save_pretrained(path)
    return path


@pytest.mark.parametrize("frames", [8, 32])
def test_16_frame_checkpoint_regenerates_the_table_for_8_and_32_frames(hf16_dir, frames):
    model = vp_model(num_frames=frames)
    report = load_pretrained(model, hf16_dir)
    assert not report.missing and not report.unexpected
    assert "pos_embed" in report.resized and "(8, 2, 2)" in report.resized["pos_embed"]
    assert str((frames // 2, 2, 2)) in report.resized["pos_embed"]
    assert torch.equal(model.pos_embed, sinusoid_table(frames // 2 * 4, DIM))
    assert model(clip_batch(frames)).shape == (2, CLASSES)


@pytest.mark.parametrize("frames", [8, 32])
def test_16_frame_checkpoint_resample_policy_keeps_frame_positions(hf16_dir, frames):
    model = vp_model(num_frames=frames)
    report = load_pretrained(model, hf16_dir, pos_policy="resample")
    grid = (frames // 2, 2, 2)
    assert model.pos_source_grid == (8, 2, 2) and "resampled" in report.resized["pos_embed"]
    expected = resample_pos_embed_3d(sinusoid_table(32, DIM), (8, 2, 2), grid)
    torch.testing.assert_close(model.pos_embed, expected)


def test_resample_policy_at_the_checkpoint_grid_changes_nothing(hf, hf_dir):
    model = vp_model()
    report = load_pretrained(model, hf_dir, pos_policy="resample")
    assert model.pos_source_grid is None and "pos_embed" not in report.resized
    assert torch.equal(model.pos_embed, sinusoid_table(8, DIM))


@pytest.mark.parametrize("with_metadata", [True, False])
def test_learned_16_frame_table_is_resampled_into_an_8_frame_model(tmp_path, with_metadata):
    torch.manual_seed(0)
    src = vp_model(num_frames=16, learnable_pos_embed=True)
    path = tmp_path / "learned.pth"
    if with_metadata:
        save_pretrained(src, path)
    else:
        torch.save(src.state_dict(), path)
    dst = vp_model(num_frames=8, learnable_pos_embed=True)
    report = load_pretrained(dst, path)
    assert report.layout == "videopeft"
    assert report.resized["pos_embed"].startswith("(1, 32, 48) -> (1, 16, 48)")
    expected = resample_pos_embed_3d(src.pos_embed.detach(), (8, 2, 2), (4, 2, 2))
    torch.testing.assert_close(dst.pos_embed.detach(), expected)


def test_our_safetensors_file_round_trips_with_its_arch(tmp_path, tiny_vit, clip):
    path = save_pretrained(tiny_vit, tmp_path / "vit.safetensors")
    model = vp_model()
    report = load_pretrained(model, path)
    assert report.layout == "videopeft" and not report.missing and not report.unexpected
    torch.testing.assert_close(model(clip), tiny_vit(clip))


def test_create_model_pretrained_uses_the_loader(hf, hf_dir):
    model = videopeft.create_model("videomae_tiny", num_classes=CLASSES, num_frames=4,
                                   img_size=32, pretrained=str(hf_dir)).eval()
    x = clip_batch()
    torch.testing.assert_close(model(x).detach(), hf_logits(hf, x), atol=1e-4, rtol=0)


# -------------------------------------------------------------------------------- heads, report


def test_head_of_another_class_count_is_dropped_and_reported(hf_dir):
    model = videopeft.create_model("videomae_tiny", num_classes=7, num_frames=4, img_size=32)
    report = load_pretrained(model, hf_dir)
    assert set(report.missing) == {"head.weight", "head.bias"}
    assert "new head left fresh" in report.ignored["head.weight"]


def test_report_prints_a_table_of_every_category(hf_dir):
    report = load_pretrained(vp_model(num_frames=8), hf_dir)
    text = str(report)
    assert isinstance(report, LoadReport) and str(hf_dir) in text.splitlines()[0]
    for category in ("loaded", "missing", "unexpected", "resized", "ignored"):
        assert any(line.startswith(category) for line in text.splitlines()), category
    assert "blocks.[0-1].attn.q_bias" in text


def test_load_logs_the_report(hf_dir, caplog):
    with caplog.at_level(logging.INFO, logger="videopeft.models.checkpoints"):
        load_pretrained(vp_model(), hf_dir)
    assert "layout: hf" in caplog.text


# ------------------------------------------------------------------------------------ timm ViT


def random_timm(**kw):
    torch.manual_seed(2)
    model = timm_vit.VisionTransformer(img_size=32, patch_size=16, embed_dim=DIM, depth=DEPTH,
                                       num_heads=HEADS, num_classes=CLASSES, **kw).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            is_ln_scale = "norm" in name and name.endswith("weight")
            p.copy_(torch.randn_like(p) * 0.2 + (1.0 if is_ln_scale else 0.0))
            if name.endswith("qkv.bias"):
                p[DIM:2 * DIM] = 0  # timm ViTs trained without a key bias have it at zero
    return model


def test_inflated_timm_vit_on_a_static_tubelet_equals_the_image_model(tmp_path):
    """With average inflation, a 2-frame clip of one image gives the image's patch tokens; the
    time-repeated table gives the same positions, so a cls-token model matches timm exactly."""
    timm_model = random_timm()
    torch.save(timm_model.state_dict(), tmp_path / "vit.pth")
    model = vp_model(num_frames=2, class_token=True, use_mean_pooling=False,
                     learnable_pos_embed=True)
    report = load_pretrained(model, tmp_path / "vit.pth")
    assert report.layout == "timm" and not report.missing and not report.unexpected
    assert "inflated" in report.resized["patch_embed.proj.weight"]
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(image.unsqueeze(2).repeat(1, 1, 2, 1, 1)),
                                   timm_model(image), atol=1e-4, rtol=0)


def test_inflated_mean_pooled_timm_vit_is_exact_for_a_static_clip_of_any_length(tmp_path):
    """Without a cls token every token is duplicated over time, and attention over duplicated
    keys and values equals attention over the originals: 4 static frames = the image."""
    timm_model = random_timm(class_token=False, global_pool="avg")
    torch.save(timm_model.state_dict(), tmp_path / "vit.pth")
    model = vp_model(num_frames=4, learnable_pos_embed=True)
    report = load_pretrained(model, tmp_path / "vit.pth")
    assert "repeated over time" in report.resized["pos_embed"]
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(image.unsqueeze(2).repeat(1, 1, 4, 1, 1)),
                                   timm_model(image), atol=1e-4, rtol=0)


def test_timm_table_is_resampled_in_space_and_dropped_for_a_sinusoid_model(tmp_path):
    torch.save(random_timm().state_dict(), tmp_path / "vit.pth")
    big = videopeft.create_model("videomae_tiny", num_classes=CLASSES, num_frames=4, img_size=64,
                                 class_token=True, use_mean_pooling=False, learnable_pos_embed=True)
    report = load_pretrained(big, tmp_path / "vit.pth")
    assert report.resized["pos_embed"].startswith("(1, 5, 48) -> (1, 33, 48)")
    fixed = vp_model(use_mean_pooling=False)
    report = load_pretrained(fixed, tmp_path / "vit.pth")
    assert "sinusoid" in report.ignored["pos_embed"] and "cls_token" in report.ignored


def test_nonzero_timm_key_bias_warns_and_is_reported_and_changes_nothing(tmp_path, caplog):
    timm_model = random_timm()
    with torch.no_grad():
        timm_model.blocks[0].attn.qkv.bias[DIM:2 * DIM].normal_()
    torch.save(timm_model.state_dict(), tmp_path / "vit.pth")
    model = vp_model(num_frames=2, class_token=True, use_mean_pooling=False,
                     learnable_pos_embed=True)
    with caplog.at_level(logging.WARNING):
        report = load_pretrained(model, tmp_path / "vit.pth")
    assert "key bias" in caplog.text
    assert report.ignored["blocks.0.attn.qkv.bias"] == "nonzero key bias dropped"
    image = torch.randn(1, 3, 32, 32)
    with torch.no_grad():  # softmax is invariant to the per-row shift q.b_k
        torch.testing.assert_close(model(image.unsqueeze(2).repeat(1, 1, 2, 1, 1)),
                                   timm_model(image), atol=1e-4, rtol=0)


# -------------------------------------------------------------------------------------- errors


def _bad_files(tmp_path, hf):
    full = tmp_path / "full.pth"
    torch.save(official_finetune_sd(hf), full)
    data = full.read_bytes()
    files = {"truncated.pth": data[: len(data) // 2], "garbage.pth": os.urandom(2048),
             "empty.pth": b"", "config.json": b'{"model_type": "videomae"}',
             "garbage.safetensors": os.urandom(512)}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    torch.save({"model": official_finetune_sd(hf), "when": datetime.date(2024, 1, 1)},
               tmp_path / "pickled_object.pth")
    return [tmp_path / n for n in [*files, "pickled_object.pth"]] + [tmp_path / "absent.pth"]


def test_unreadable_files_give_a_one_line_error_naming_the_file(hf, tmp_path):
    for path in _bad_files(tmp_path, hf):
        with pytest.raises(CheckpointError) as err:
            load_pretrained(vp_model(), path)
        message = str(err.value)
        assert str(path) in message and "\n" not in message, message
        assert err.value.__suppress_context__ or err.value.__cause__ is None


def test_checkpoint_of_another_width_names_the_key_and_both_shapes(hf_dir):
    wide = videopeft.create_model("videomae_tiny", num_classes=CLASSES, num_frames=4, img_size=32,
                                  embed_dim=64, num_heads=4)
    with pytest.raises(CheckpointError) as err:
        load_pretrained(wide, hf_dir)
    message = str(err.value)
    assert str(hf_dir) in message and "\n" not in message
    assert "patch_embed.proj.weight: checkpoint (48, 3, 2, 16, 16) vs model (64, 3, 2, 16, 16)" \
        in message


def test_checkpoint_whose_keys_match_nothing_is_refused(hf, tmp_path):
    renamed = {k.replace("videomae.", "vit."): v for k, v in hf.state_dict().items()}
    torch.save(renamed, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="no known layout"):
        load_pretrained(vp_model(), tmp_path / "other.pth")
    torch.save({f"backbone.{k}": v for k, v in official_finetune_sd(hf).items()},
               tmp_path / "prefixed.pth")
    with pytest.raises(CheckpointError, match="no backbone weight matched"):
        load_pretrained(vp_model(), tmp_path / "prefixed.pth")


def test_hf_directory_of_another_model_type_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "vit"}')
    with pytest.raises(CheckpointError, match="model_type 'vit'"):
        load_pretrained(vp_model(), tmp_path)


def test_checkpoint_of_another_depth_is_refused(hf_dir):
    shallow = videopeft.create_model("videomae_tiny", num_classes=CLASSES, num_frames=4,
                                     img_size=32, depth=1)
    with pytest.raises(CheckpointError, match="checkpoint has 2 blocks, model videomae_tiny has 1"):
        load_pretrained(shallow, hf_dir)


def test_non_strict_shapes_drop_and_report_mismatched_keys(hf, tmp_path):
    sd = official_finetune_sd(hf)
    sd["blocks.0.mlp.fc1.weight"] = torch.zeros(100, DIM)
    torch.save(sd, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match=r"blocks.0.mlp.fc1.weight: checkpoint \(100, 48\)"):
        load_pretrained(vp_model(), tmp_path / "odd.pth")
    report = load_pretrained(vp_model(), tmp_path / "odd.pth", strict_shapes=False)
    assert report.ignored["blocks.0.mlp.fc1.weight"] == "shape mismatch"
    assert "blocks.0.mlp.fc1.weight" in report.missing


def test_unknown_pos_policy_is_refused(hf_dir):
    with pytest.raises(ValueError, match="pos_policy"):
        load_pretrained(vp_model(), hf_dir, pos_policy="interpolate")


@pytest.mark.parametrize("seed", range(12))
def test_random_bytes_and_text_always_give_a_checkpoint_error(tmp_path, seed):
    gen = torch.Generator().manual_seed(seed)
    length = int(torch.randint(1, 4096, (1,), generator=gen))
    contents = [bytes(torch.randint(0, 256, (length,), generator=gen, dtype=torch.uint8).tolist()),
                b"hello world\n", b"PK\x03\x04" + b"\x00" * 64, b"\x80\x02"]
    for i, content in enumerate(contents):
        path = tmp_path / f"file{i}.pth"
        path.write_bytes(content)
        with pytest.raises(CheckpointError, match=re.escape(str(path))):
            load_pretrained(vp_model(), path)
