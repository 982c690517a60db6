"""The training hot path is GPU-ready: no host reads per step, a frozen backbone saves no inputs
it only needs for weight gradients, no per-forward rebuilding, one graph for torch.compile.

Host reads are found on a CPU with `sync_probe.host_reads` (every `.item()`, `bool()`, boolean
indexing, ...); the same tests also run on a GPU, where `torch.cuda.set_sync_debug_mode("error")`
catches whatever the probe cannot see (a blocking copy from pageable memory, say).
"""
from __future__ import annotations

import contextlib
import copy
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import videopeft
from engine_fixtures import REPO, tiny_config, tiny_set  # noqa: F401
from sync_probe import host_reads
from videopeft import peft
from videopeft.data import Manifest
from videopeft.engine import distributed as dist
from videopeft.engine import tasks
from videopeft.engine.logging import MetricsLogger
from videopeft.engine.pretrain import PretrainTask
from videopeft.engine.train import Recipe, train
from videopeft.models.pretrain import (create_pretrain_model, mask_indices, masked_per_slice,
                                       take_tokens, tube_mask)
from videopeft.models.vit import Block
from videopeft.peft.vpt import PromptedBlock

sys.path.insert(0, str(REPO))
from benchmarks.activations import saved_bytes_per_clip  # noqa: E402

DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device")])]


# ----------------------------------------------------------------------------- host reads

@contextlib.contextmanager
def recipe_for(cfg, task, out_dir: Path):
    """A set-up training Recipe (data, model, optimizer) for `cfg`, as run_training builds it."""
    info = dist.init_distributed(cfg.device)
    out_dir.mkdir(parents=True, exist_ok=True)
    logger = MetricsLogger(out_dir, enabled=True)
    try:
        recipe = Recipe(cfg, task, info, out_dir, logger)
        recipe.setup(Manifest(out_dir / ".manifest_spool"))
        recipe.resume()
        yield recipe
    finally:
        logger.close()


def reads_in_steps(recipe, steps: int = 3) -> list[str]:
    """Host reads during `steps` optimizer steps after a warm-up one, on batches loaded first
    (the loader's own bookkeeping is CPU work in any run). Optimizer step counters are allowed:
    torch keeps them on the CPU unless `capturable`, so reading them never waits for a GPU."""
    batches = iter(recipe.loader)
    loaded = [next(batches) for _ in range(steps + 1)]
    recipe.train_step(iter(loaded[:1]))
    counters = tuple(s["step"] for s in recipe.optimizer.state.values()
                     if isinstance(s.get("step"), torch.Tensor) and s["step"].device.type == "cpu")
    cuda = recipe.device.type == "cuda"
    with host_reads(allowed=counters) as reads:
        if cuda:
            torch.cuda.set_sync_debug_mode("error")
        try:
            for batch in loaded[1:]:
                recipe.train_step(iter([batch]))
                recipe.pos.step += 1
        finally:
            if cuda:
                torch.cuda.set_sync_debug_mode("default")
    if cuda:
        torch.cuda.synchronize()
    return reads


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method", [{"name": "adaptmlp", "bottleneck": 8},
                                    {"name": "vpt", "deep": True}, {"name": "full"}],
                         ids=lambda m: m["name"])
def test_a_fine_tuning_step_reads_no_tensor_value_on_the_host(tiny_set, tmp_path, method,
                                                              device):
    cfg = tiny_config(tiny_set, tmp_path / "run", method=method, device=device,
                      train={"clip_grad": 1.0, "eval_every": 0, "batch_size": 2})
    with recipe_for(cfg, tasks.ClassificationTask(), tmp_path / "run") as recipe:
        assert reads_in_steps(recipe) == []


@pytest.mark.parametrize("device", DEVICES)
def test_a_device_augmented_step_reads_no_tensor_value_on_the_host(tiny_set, tmp_path, device):
    """Flip, RandAugment, erasing and two clips per video chosen in the workers, applied on the
    device."""
    cfg = tiny_config(tiny_set, tmp_path / "run", method={"name": "adaptmlp", "bottleneck": 8},
                      device=device, train={"eval_every": 0, "batch_size": 2},
                      data={"augment": "device", "num_sample": 2, "flip": True,
                            "random_erasing": 1.0, "rand_augment": "rand-m9-n4-mstd0.5-inc1"})
    with recipe_for(cfg, tasks.ClassificationTask(), tmp_path / "run") as recipe:
        assert recipe.device_augment is not None
        assert reads_in_steps(recipe) == []


@pytest.mark.parametrize("device", DEVICES)
def test_a_pretraining_step_reads_no_tensor_value_on_the_host(tiny_set, tmp_path, device):
    cfg = tiny_config(tiny_set, tmp_path / "run", device=device, train={"batch_size": 2},
                      pretrain={"mask_ratio": 0.75, "decoder_dim": 24, "decoder_depth": 1,
                                "decoder_heads": 2})
    with recipe_for(cfg, PretrainTask(cfg), tmp_path / "run") as recipe:
        assert reads_in_steps(recipe) == []


def test_the_probe_sees_the_reads_it_is_meant_to_catch():
    """The tests above pass only because there is nothing to see, not because the probe is blind."""
    x = torch.randn(8)
    with host_reads() as reads:
        if not torch.isfinite(x.sum()):  # the old per-step check
            pass
        _ = x[x > 0]  # boolean indexing (the old pretraining mask)
        _ = x.sum().item(), x.tolist()
    assert reads == ["aten._local_scalar_dense.default", "aten.index.Tensor",
                     "aten._local_scalar_dense.default", "Tensor.tolist"]


def test_a_non_finite_loss_stops_the_run_at_the_next_log_step_naming_its_step(
        tiny_set, tmp_path, monkeypatch):
    """No check per step; a NaN loss at step 1 is reported at the log step 3, with step 1, and
    no checkpoint is written after it."""
    losses = iter([1.0, float("nan"), 1.0, 1.0, 1.0, 1.0])
    original = tasks.ClassificationTask.loss

    def loss(self, model, clips, labels):
        return original(self, model, clips, labels) * 0 + next(losses)

    monkeypatch.setattr(tasks.ClassificationTask, "loss", loss)
    cfg = tiny_config(tiny_set, tmp_path / "run", train={"log_every": 3, "epochs": 2})
    with pytest.raises(FloatingPointError, match=r"loss is nan at step 1 \(epoch 1\)"):
        train(cfg)
    assert not list((tmp_path / "run").glob("checkpoints/*.pt"))


# ----------------------------------------------------------------------------- activations

def test_adaptmlp_saves_under_0_65x_the_activation_bytes_of_full_fine_tuning():
    """Per clip, AdaptMLP-64 training saves ~10 of full fine-tuning's ~17 token-by-width tensors
    per block (no inputs of frozen linears; analytically 0.59x). ViT-S: the same 12 blocks as
    ViT-B at half the width, which the ratio does not depend on (ViT-B gives 0.58x too; the GPU
    suite's `activations` section measures ViT-B), at a quarter of the build time."""
    torch.manual_seed(0)
    base = videopeft.create_model("videomae_small", num_classes=10, num_frames=4, img_size=64)
    per_clip = {}
    for method in ("full", "adaptmlp"):
        model = copy.deepcopy(base)
        peft.apply(model, {"name": method})
        per_clip[method] = saved_bytes_per_clip(model, (3, 4, 64, 64), torch.device("cpu"))
    ratio = per_clip["adaptmlp"] / per_clip["full"]
    assert ratio <= 0.65, per_clip


# ----------------------------------------------------------------------------- qkv bias

def test_a_frozen_qkv_bias_is_built_once_and_follows_every_change(tiny_vit, clip):
    attn = tiny_vit.blocks[0].attn
    tiny_vit.requires_grad_(False)
    first = attn.qkv_bias()
    assert attn.qkv_bias() is first  # no concatenation per forward

    state = {k: v.clone() for k, v in tiny_vit.state_dict().items()}
    state["blocks.0.attn.q_bias"].normal_()
    tiny_vit.load_state_dict(state)
    expected = torch.cat([state["blocks.0.attn.q_bias"], torch.zeros(48),
                          state["blocks.0.attn.v_bias"]])
    assert torch.equal(attn.qkv_bias(), expected)

    with torch.no_grad():
        attn.v_bias.add_(1.0)
    assert torch.equal(attn.qkv_bias()[96:], state["blocks.0.attn.v_bias"] + 1.0)
    assert attn.qkv_bias().dtype == torch.float32
    tiny_vit.double()
    assert attn.qkv_bias().dtype == torch.float64


def test_a_trained_qkv_bias_gets_gradients(tiny_vit, clip):
    tiny_vit.requires_grad_(False)
    tiny_vit(clip)  # builds the frozen cache
    attn = tiny_vit.blocks[0].attn
    attn.q_bias.requires_grad_(True)  # BitFit / full fine-tuning
    tiny_vit(clip).sum().backward()
    assert attn.q_bias.grad is not None and attn.q_bias.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- VPT

def vpt_reference(model, x: torch.Tensor) -> torch.Tensor:
    """Deep prepend VPT as the paper states it: before every prompted block insert its prompts
    after the class token (if any), run the plain block, drop the prompt outputs."""
    x, _ = model.embed(x)
    c = model.num_prefix_tokens
    for blk in model.blocks:
        if isinstance(blk, PromptedBlock):
            p = blk.prompts.tokens(blk.index).expand(x.shape[0], -1, -1)
            x = Block.forward(blk, torch.cat([x[:, :c], p, x[:, c:]], 1))
            x = torch.cat([x[:, :c], x[:, c + p.shape[1]:]], 1)
        else:
            x = blk(x)
    return model.forward_head(model.pool(x))


@pytest.mark.parametrize("class_token,layers", [(False, None), (True, None), (False, [0, 1, 3])])
def test_deep_vpt_concatenates_once_and_equals_insert_and_drop(class_token, layers, monkeypatch):
    torch.manual_seed(0)
    model = videopeft.create_model("videomae_tiny", num_classes=5, num_frames=4, img_size=32,
                                   depth=4, class_token=class_token,
                                   use_mean_pooling=not class_token)
    peft.apply(model, {"name": "vpt", "deep": True, "layers": layers})
    x = torch.randn(2, 3, 4, 32, 32)

    expected = vpt_reference(model, x)
    expected.sum().backward()
    expected_grad = model.vpt.prompts.grad.clone()
    model.zero_grad()

    cats, cat = [], torch.cat
    monkeypatch.setattr(torch, "cat", lambda *a, **k: cats.append(1) or cat(*a, **k))
    out = model(x)
    monkeypatch.undo()
    out.sum().backward()
    runs = 1 if layers is None else 2  # blocks 0-1 and block 3 are two runs of prompted blocks
    # one insertion per run; with a class token the drop copies too, and embed adds the token
    assert len(cats) == (runs * 2 + 1 if class_token else runs)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    torch.testing.assert_close(model.vpt.prompts.grad, expected_grad)


# ----------------------------------------------------------------------------- pretraining

def test_pretraining_mask_indices_pick_what_boolean_indexing_picks():
    mask = tube_mask(3, (2, 4, 4), 0.75, torch.Generator().manual_seed(0))
    tokens = torch.randn(3, 32, 5)
    visible, masked = mask_indices(mask, 3, 32, num_masked=24)
    assert torch.equal(take_tokens(tokens, visible), tokens[~mask].reshape(3, 8, 5))
    assert torch.equal(take_tokens(tokens, masked), tokens[mask].reshape(3, 24, 5))
    with pytest.raises(RuntimeError, match="num_masked"):
        mask_indices(mask, 3, 32, num_masked=20)


# ----------------------------------------------------------------------------- torch.compile

@pytest.mark.parametrize("method", ["full", "adaptmlp", "vpt", "lora", "pretrain"])
def test_the_training_forward_compiles_to_one_graph(method):
    """fullgraph=True fails on any graph break (a Python branch on tensor values, a host read):
    the training forward must trace as one graph, as CUDA graphs need. (linear runs the same
    forward as full.)"""
    torch.manual_seed(0)
    torch._dynamo.reset()
    x = torch.randn(2, 3, 4, 32, 32)
    if method == "pretrain":
        model = create_pretrain_model("videomae_tiny", num_frames=4, img_size=32, depth=1)
        grid = model.encoder.grid
        mask = tube_mask(2, grid, 0.75)
        count = grid[0] * masked_per_slice(grid, 0.75)
        loss = torch.compile(lambda clips: model(clips, mask, num_masked=count),
                             fullgraph=True, backend="eager")(x)
    else:
        model = videopeft.create_model("videomae_tiny", num_classes=5, num_frames=4, img_size=32,
                                       depth=1)
        peft.apply(model, {"name": method})
        model.train()
        loss = F.cross_entropy(torch.compile(model, fullgraph=True, backend="eager")(x),
                               torch.tensor([0, 1]))
    loss.backward()
    assert any(p.grad is not None for p in model.parameters())
