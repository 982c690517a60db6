"""VideoViT: shapes, the fixed position table, position policies, attention paths, sizes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import videopeft
from videopeft.models.pos_embed import resample_pos_embed_3d, sinusoid_table


def small_vit(num_frames: int = 4, img_size: int = 32, depth: int = 1, **kw) -> videopeft.VideoViT:
    torch.manual_seed(0)
    return videopeft.create_model("videomae_tiny", num_classes=5, num_frames=num_frames,
                                  img_size=img_size, depth=depth, **kw).eval()


def numpy_sinusoid(n: int, d: int) -> np.ndarray:
    """MCG-NJU/VideoMAE:modeling_finetune.py get_sinusoid_encoding_table, computed independently:
    angle p / 10000^(2*floor(j/2)/d), sin on even j, cos on odd."""
    table = np.zeros((n, d), dtype=np.float64)
    for p in range(n):
        for j in range(d):
            angle = p / np.power(10000, 2 * (j // 2) / d)
            table[p, j] = np.sin(angle) if j % 2 == 0 else np.cos(angle)
    return table


# ---------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("frames", [4, 8, 16])
@pytest.mark.parametrize("size", [64, 112, 224])
def test_token_count_and_output_shapes(frames, size):
    model = small_vit(frames, size)
    x = torch.randn(1, 3, frames, size, size)
    tokens, grid = model.embed(x)
    expected = (frames // 2) * (size // 16) ** 2
    assert grid == (frames // 2, size // 16, size // 16) == model.grid
    assert tokens.shape == (1, expected, 48) and model.num_tokens(frames, size) == expected
    with torch.no_grad():
        assert model.forward_features(x).shape == (1, 48)
        assert model(x).shape == (1, 5)


def test_official_token_counts():
    model = small_vit(16, 224)
    assert model.num_tokens(16, 224) == 1568 and model.num_tokens(8, 224) == 784


def test_clip_that_does_not_split_into_tubelets_is_refused(tiny_vit):
    with pytest.raises(ValueError, match="does not split"):
        tiny_vit(torch.randn(1, 3, 3, 32, 32))


# ------------------------------------------------------------------------- position table


def test_sinusoid_table_matches_the_formula_in_float64():
    ours = sinusoid_table(40, 48)
    assert ours.shape == (1, 40, 48) and ours.dtype == torch.float32
    np.testing.assert_allclose(ours[0].numpy(), numpy_sinusoid(40, 48).astype(np.float32),
                               rtol=0, atol=1e-6)


def test_fixed_table_is_a_buffer_but_not_saved(tiny_vit):
    assert "pos_embed" in dict(tiny_vit.named_buffers())
    assert "pos_embed" not in tiny_vit.state_dict()
    assert torch.equal(tiny_vit.pos_embed, sinusoid_table(8, 48))


def test_learned_table_is_a_saved_parameter():
    model = small_vit(learnable_pos_embed=True)
    assert isinstance(model.pos_embed, torch.nn.Parameter) and "pos_embed" in model.state_dict()


def test_regenerated_table_equals_the_original_at_the_original_size(tiny_vit):
    original = tiny_vit.pos_embed.clone()
    tiny_vit.set_pos_source_grid(None)
    assert torch.equal(tiny_vit.pos_embed, original)
    tiny_vit.set_pos_source_grid(tiny_vit.grid)  # "resampling" from its own grid
    assert torch.equal(tiny_vit.pos_embed, original)
    assert tiny_vit.position_table(tiny_vit.grid) is tiny_vit.pos_embed


def test_resampling_to_the_same_grid_is_a_no_op():
    table = torch.randn(1, 1 + 2 * 3 * 3, 8)
    assert resample_pos_embed_3d(table, (2, 3, 3), (2, 3, 3), num_prefix_tokens=1) is table


def test_batch_size_does_not_change_the_table_or_the_outputs(tiny_vit, clip):
    before = tiny_vit.pos_embed.clone()
    with torch.no_grad():
        both, first = tiny_vit(clip), tiny_vit(clip[:1])
    torch.testing.assert_close(first, both[:1], atol=1e-6, rtol=0)
    assert torch.equal(tiny_vit.pos_embed, before)


def test_other_input_grid_regenerates_or_resamples_consistently(tiny_vit):
    assert torch.equal(tiny_vit.position_table((4, 2, 2)), sinusoid_table(16, 48))
    tiny_vit.set_pos_source_grid((8, 2, 2))
    expected = resample_pos_embed_3d(sinusoid_table(32, 48), (8, 2, 2), (4, 2, 2))
    torch.testing.assert_close(tiny_vit.position_table((4, 2, 2)), expected)
    assert tiny_vit.position_table((4, 2, 2)) is tiny_vit.position_table((4, 2, 2))  # cached


# ------------------------------------------------------------------------------ attention


def test_fused_and_manual_attention_agree(clip):
    model = small_vit(depth=2)
    with torch.no_grad():
        for blk in model.blocks:
            blk.attn.q_bias.normal_()
            blk.attn.v_bias.normal_()
        model.set_fused_attn(True)
        fused = model.forward_features(clip)
        model.set_fused_attn(False)
        manual = model.forward_features(clip)
    torch.testing.assert_close(fused, manual, atol=1e-5, rtol=0)


def test_gradient_checkpointing_gives_the_same_gradients(clip):
    model = small_vit(depth=2).train()

    def grads(checkpointing: bool) -> dict[str, torch.Tensor]:
        model.zero_grad()
        model.set_grad_checkpointing(checkpointing)
        model(clip).square().sum().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    plain, ckpt = grads(False), grads(True)
    for name in plain:
        torch.testing.assert_close(ckpt[name], plain[name], atol=1e-6, rtol=0, msg=name)


# ------------------------------------------------------------------------- keys and switches


def test_layer_scale_and_drop_path_switches_give_the_documented_keys():
    plain = small_vit(depth=2).state_dict()
    assert not any("gamma" in k for k in plain)
    scaled = small_vit(depth=2, init_values=0.1)
    keys = scaled.state_dict()
    assert {"blocks.0.ls1.gamma", "blocks.0.ls2.gamma", "blocks.1.ls1.gamma"} <= set(keys)
    assert torch.all(keys["blocks.0.ls1.gamma"] == 0.1)
    dropping = small_vit(depth=3, drop_path_rate=0.2)
    rates = [blk.drop_path1.drop_prob if hasattr(blk.drop_path1, "drop_prob") else 0.0
             for blk in dropping.blocks]
    assert rates == pytest.approx([0.0, 0.1, 0.2])
    assert set(dropping.state_dict()) == set(small_vit(depth=3).state_dict())  # no new keys


def test_official_fine_tune_key_layout():
    keys = set(small_vit(depth=1).state_dict())
    block = {f"blocks.0.{k}" for k in (
        "norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.q_bias", "attn.v_bias",
        "attn.proj.weight", "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight",
        "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias")}
    top = {"patch_embed.proj.weight", "patch_embed.proj.bias", "fc_norm.weight", "fc_norm.bias",
           "head.weight", "head.bias"}
    assert keys == block | top


def test_videomae_base_parameter_counts():
    """ViT-B of MCG-NJU/VideoMAE:modeling_finetune.py (vit_base_patch16_224): 86,534,800 with a
    400-class head; 7,087,104 per block (12D^2 + 12D); patch embedding 1,180,416."""
    model = videopeft.create_model("videomae_base", num_classes=400, num_frames=2, img_size=16)

    def count(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    assert count(model) == 86_534_800
    assert count(model.blocks[0]) == 7_087_104
    assert count(model.patch_embed) == 1_180_416
