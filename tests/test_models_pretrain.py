"""VideoMAE pre-training: tube masks, the normalised-pixel target, the masked-only loss, keys."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import videopeft
from videopeft.models.checkpoints import load_pretrained, save_pretrained
from videopeft.models.pretrain import (PretrainVideoMAE, create_pretrain_model, patchify,
                                       tube_mask, unpatchify)

FRAMES, SIZE = 4, 64  # grid (2, 4, 4): 16 tokens per slice, 32 in all


@pytest.fixture
def mae() -> PretrainVideoMAE:
    torch.manual_seed(0)
    return create_pretrain_model("videomae_tiny", num_frames=FRAMES, img_size=SIZE)


@pytest.fixture
def clips() -> torch.Tensor:
    return torch.randn(2, 3, FRAMES, SIZE, SIZE, generator=torch.Generator().manual_seed(4))


@pytest.fixture
def mask() -> torch.Tensor:
    return tube_mask(2, (2, 4, 4), 0.75, torch.Generator().manual_seed(5))


# ------------------------------------------------------------------------------------ masking


def test_tube_mask_masks_int_ratio_per_slice_and_repeats_over_time():
    mask = tube_mask(3, (8, 14, 14), 0.9, torch.Generator().manual_seed(0))
    assert mask.dtype == torch.bool and mask.shape == (3, 8 * 196)
    slices = mask.view(3, 8, 196)
    assert (slices.sum(-1) == 176).all()  # int(0.9 * 196): MCG-NJU/VideoMAE:masking_generator.py
    assert (slices == slices[:, :1]).all()  # one spatial mask tiled over time
    assert not torch.equal(slices[0, 0], slices[1, 0])  # each sample draws its own


def test_tube_mask_is_reproducible_with_a_generator():
    a = tube_mask(2, (2, 4, 4), 0.5, torch.Generator().manual_seed(7))
    b = tube_mask(2, (2, 4, 4), 0.5, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


@pytest.mark.parametrize("ratio", [0.0, 0.01, 1.0])
def test_tube_mask_needs_masked_and_visible_tokens(ratio):
    with pytest.raises(ValueError, match="need at least one masked and one visible"):
        tube_mask(1, (2, 4, 4), ratio)


# ------------------------------------------------------------------------------------- target


def numpy_target(clips: torch.Tensor, tubelet: int = 2, p: int = 16) -> np.ndarray:
    """MCG-NJU/VideoMAE:engine_for_pretraining.py's target by loops in float64: per token and
    channel, (x - mean) / (std + 1e-6) with the unbiased std over the tubelet's pixels
    (t, h, w order), channel fastest."""
    mean = np.array([0.485, 0.456, 0.406])[:, None, None, None]
    std = np.array([0.229, 0.224, 0.225])[:, None, None, None]
    out = []
    for clip in clips.double().numpy():
        pixels = clip * std + mean  # (C, T, H, W) in [0, 1]
        c, t, h, w = pixels.shape
        tokens = []
        for ti in range(t // tubelet):
            for hi in range(h // p):
                for wi in range(w // p):
                    cube = pixels[:, ti * tubelet:(ti + 1) * tubelet, hi * p:(hi + 1) * p,
                                  wi * p:(wi + 1) * p].reshape(c, -1).T  # (pixels, C)
                    norm = (cube - cube.mean(0)) / (cube.std(0, ddof=1) + 1e-6)
                    tokens.append(norm.reshape(-1))  # pixel-major, channel fastest
        out.append(np.stack(tokens))
    return np.stack(out)


def test_target_matches_an_independent_computation(mae, clips):
    target = mae.target(clips)
    assert target.shape == (2, 32, 2 * 16 * 16 * 3)
    np.testing.assert_allclose(target.numpy(), numpy_target(clips), rtol=0, atol=2e-4)


def test_unnormalised_target_is_the_pixels_in_the_same_order(mae, clips):
    mae.normalize_target = False
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1, 1)
    pixels = clips * std + mean
    target = mae.target(clips)
    assert torch.allclose(target[0, 0, :3], pixels[0, :, 0, 0, 0])  # first pixel, C fastest
    assert torch.allclose(target[0, 1, :3], pixels[0, :, 0, 0, 16])  # token 1 = next patch in w


def test_patchify_round_trips(clips):
    torch.testing.assert_close(unpatchify(patchify(clips, 2, 16), (2, 4, 4), 2, 16), clips)


# --------------------------------------------------------------------------------------- loss


def test_loss_is_the_mse_over_masked_tokens(mae, clips, mask):
    with torch.no_grad():
        loss = mae(clips, mask)
        pred = mae.predict(clips, mask)
        target = mae.target(clips)
    assert pred.shape == (2, int(mask[0].sum()), 1536)
    by_hand = ((pred - target[mask].view(pred.shape)) ** 2).mean()
    torch.testing.assert_close(loss, by_hand)


def test_targets_of_visible_tokens_do_not_change_the_loss(mae, clips, mask, monkeypatch):
    with torch.no_grad():
        loss = mae(clips, mask)
        true_target = mae.target(clips)
    noisy = true_target.clone()
    noisy[~mask] = 1e6  # visible tokens: absurd targets
    monkeypatch.setattr(mae, "target", lambda _: noisy)
    with torch.no_grad():
        torch.testing.assert_close(mae(clips, mask), loss)


def test_decoder_head_sees_masked_positions_only(mae, clips, mask):
    seen = []
    hook = mae.decoder.head.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[1]))
    mae(clips, mask).backward()
    hook.remove()
    assert seen == [int(mask[0].sum())]
    assert mae.mask_token.grad is not None and mae.mask_token.grad.abs().sum() > 0


def test_a_few_steps_on_a_fixed_batch_lower_the_loss(mae, clips, mask):
    opt = torch.optim.AdamW(mae.parameters(), lr=5e-3, betas=(0.9, 0.95))
    losses = []
    for _ in range(20):
        loss = mae(clips, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses


def test_unequal_masks_are_refused(mae, clips, mask):
    mask = mask.clone()
    mask[0, ~mask[0]] = True  # sample 0 fully masked, sample 1 not
    with pytest.raises(ValueError, match="same number of tokens"):
        mae(clips, mask)


def test_reconstruction_with_perfect_predictions_is_the_clip(mae, clips, mask, monkeypatch):
    target = mae.target(clips)
    monkeypatch.setattr(mae, "predict", lambda x, m: target[m].view(2, -1, target.shape[-1]))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1, 1)
    torch.testing.assert_close(mae.reconstruct(clips, mask), clips * std + mean,
                               atol=1e-4, rtol=0)


# ------------------------------------------------------------------------------- keys, loading


OFFICIAL_PREFIXES = ("encoder.patch_embed.proj.", "encoder.blocks.", "encoder.norm.",
                     "encoder_to_decoder.weight", "mask_token", "decoder.blocks.",
                     "decoder.norm.", "decoder.head.")


def test_state_dict_has_exactly_the_official_pretrain_layout(mae):
    sd = mae.state_dict()
    assert all(k.startswith(OFFICIAL_PREFIXES) for k in sd), sorted(sd)
    assert all(any(k.startswith(p) for k in sd) for p in OFFICIAL_PREFIXES)
    assert sd["encoder_to_decoder.weight"].shape == (32, 48) and "encoder_to_decoder.bias" not in sd
    assert sd["mask_token"].shape == (1, 1, 32)
    assert sd["decoder.head.weight"].shape == (2 * 16 * 16 * 3, 32)
    assert not any("pos_embed" in k for k in sd)


def test_encoder_must_be_headless_and_token_normed():
    encoder = videopeft.create_model("videomae_tiny", num_classes=0, num_frames=4, img_size=32)
    with pytest.raises(ValueError, match="use_mean_pooling=False"):
        PretrainVideoMAE(encoder)


@pytest.mark.parametrize("writer", ["torch_save", "save_pretrained"])
def test_saved_pretrain_checkpoint_loads_into_a_finetune_model(mae, clips, tmp_path, writer):
    path = tmp_path / "pretrain.pth"
    if writer == "torch_save":
        torch.save({"model": mae.state_dict()}, path)
    else:
        save_pretrained(mae, path)
    model = videopeft.create_model("videomae_tiny", num_classes=7, num_frames=FRAMES,
                                   img_size=SIZE).eval()
    report = load_pretrained(model, path)
    assert report.layout == "official_pretrain"
    assert set(report.missing) == {"fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"}
    assert set(report.unexpected) == {"norm.weight", "norm.bias"}
    assert "decoder.head.weight" in report.ignored and "mask_token" in report.ignored
    if writer == "save_pretrained":  # the file says its grid: nothing assumed or resized
        assert not report.notes and not report.resized
    with torch.no_grad():
        ours = model.forward_blocks(model.embed(clips)[0])
        theirs = mae.encoder.forward_blocks(mae.encoder.embed(clips)[0])
    torch.testing.assert_close(ours, theirs)


def test_gradient_checkpointing_gives_the_same_gradients(mae, clips, mask):
    def grads(enable: bool) -> dict[str, torch.Tensor]:
        mae.zero_grad()
        mae.set_grad_checkpointing(enable)
        mae(clips, mask).backward()
        return {n: p.grad.clone() for n, p in mae.named_parameters()}

    plain, ckpt = grads(False), grads(True)
    for name in plain:
        torch.testing.assert_close(ckpt[name], plain[name], atol=1e-6, rtol=0, msg=name)
