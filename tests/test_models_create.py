"""`videopeft.create_model` takes timm's usual keyword arguments and `list_models` filters like
timm's: the same call a timm user writes builds the model they expect."""
from __future__ import annotations

import pytest
import torch

import videopeft
from videopeft.models.checkpoints import save_pretrained

TINY = dict(num_frames=4, img_size=32)


def test_list_models_is_sorted_and_takes_fnmatch_filters():
    names = videopeft.list_models()
    assert names == sorted(names) and "videomae_base" in names and "videomae_tiny" in names
    assert videopeft.list_models("*base*") == ["videomae_base"]
    assert videopeft.list_models(["*tiny", "*huge"]) == ["videomae_huge", "videomae_tiny"]
    assert videopeft.list_models("videomae_*", exclude_filters=["*large", "*huge"]) == [
        "videomae_base", "videomae_small", "videomae_tiny"]
    assert videopeft.list_models("vit_*") == []


def test_num_classes_zero_gives_features_and_drop_path_rate_rises_over_blocks():
    model = videopeft.create_model("videomae_tiny", num_classes=0, drop_path_rate=0.2, **TINY).eval()
    assert isinstance(model.head, torch.nn.Identity)
    assert model(torch.randn(2, 3, 4, 32, 32)).shape == (2, 48)
    first, last = model.blocks[0].drop_path1, model.blocks[-1].drop_path1
    assert isinstance(first, torch.nn.Identity) and last.drop_prob == pytest.approx(0.2)
    assert videopeft.create_model("videomae_tiny", **TINY).num_classes == 400  # like VideoMAE K400


@pytest.mark.parametrize("pool, mean_pooling", [("avg", True), ("token", False)])
def test_global_pool_chooses_mean_pooling_or_the_first_token(pool, mean_pooling):
    model = videopeft.create_model("videomae_tiny", num_classes=3, global_pool=pool, **TINY).eval()
    assert model.use_mean_pooling is mean_pooling
    x = torch.randn(2, 3, 4, 32, 32)
    tokens = model.forward_blocks(model.embed(x)[0])
    expected = model.fc_norm(tokens.mean(1)) if mean_pooling else model.norm(tokens)[:, 0]
    torch.testing.assert_close(model.forward_features(x), expected)


@pytest.mark.parametrize("kwargs, message", [
    ({"global_pool": ""}, "global_pool: expected one of ['avg', 'token']"),
    ({"global_pool": "token", "use_mean_pooling": True}, "contradicts use_mean_pooling"),
    ({"pretrained": True}, "no default weights to download; pass pretrained=PATH"),
])
def test_timm_kwargs_videopeft_cannot_honour_are_refused_with_the_reason(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        videopeft.create_model("videomae_tiny", num_classes=3, **TINY, **kwargs)


@pytest.mark.parametrize("key", ["pretrained", "checkpoint_path"])
def test_pretrained_or_checkpoint_path_loads_the_file(tmp_path, key):
    torch.manual_seed(0)
    source = videopeft.create_model("videomae_tiny", num_classes=3, **TINY)
    path = save_pretrained(source, tmp_path / "w.safetensors")
    torch.manual_seed(1)
    model = videopeft.create_model("videomae_tiny", num_classes=3, **TINY, **{key: str(path)})
    for name, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name
    fresh = videopeft.create_model("videomae_tiny", num_classes=3, pretrained=False, **TINY)
    assert not torch.equal(fresh.head.weight, source.head.weight)
