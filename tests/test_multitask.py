"""Multi-task inference: one frozen backbone, several task adapters with their own heads, classes
and sampling. Each task answers exactly what single-task `infer` answers, each video is decoded
once per distinct sampling, the frozen tensors are shared (not copied), and an adapter trained on
another backbone is refused."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import videopeft
from videopeft import peft
from videopeft.data import datasets as data_datasets
from videopeft.engine.infer import MultiTaskModel, infer, merge_adapter, model_from_adapter
from videopeft.models.checkpoints import save_pretrained

from engine_fixtures import tiny_set  # noqa: F401
from test_tools import run_main

SEGMENT = {"sampling": "segment", "num_frames": 4, "img_size": 32, "views_temporal": 1,
           "views_spatial": 1, "fusion": "softmax_mean"}
DENSE = {"sampling": "dense", "stride": 2, "num_frames": 2, "img_size": 32, "views_temporal": 2,
         "views_spatial": 3, "fusion": "logit_mean"}


def backbone_file(folder: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    model = videopeft.create_model("videomae_tiny", num_classes=3, num_frames=4, img_size=32)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return save_pretrained(model, folder / f"backbone{seed}.safetensors")


def task_adapter(path: Path, weights: Path, method: dict, classes: list[str], sampling: dict) -> Path:
    """An adapter with random trained tensors (no training needed) and the given sampling."""
    model = videopeft.create_model("videomae_tiny", num_classes=len(classes),
                                   num_frames=sampling["num_frames"], img_size=32)
    videopeft.load_pretrained(model, weights)
    report = peft.apply(model, method)
    with torch.no_grad():
        params = dict(model.named_parameters())
        for name in report.trainable:
            params[name].copy_(torch.randn_like(params[name]) * 0.5)
    return peft.save_adapter(model, path, extra={
        "class_names": classes, "seed": 0, "sampling": sampling,
        "model": {"name": "videomae_tiny", "pretrained": str(weights)}})


@pytest.fixture(scope="module")
def adapters(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tasks")
    weights = backbone_file(folder, seed=0)
    return {
        "gestures": task_adapter(folder / "gestures.safetensors", weights,
                                 {"name": "lora", "rank": 2}, ["left", "right", "up"], SEGMENT),
        "actions": task_adapter(folder / "actions.safetensors", weights,
                                {"name": "adaptmlp", "bottleneck": 8}, ["a", "b", "c", "d"], DENSE),
        "gestures_qv": task_adapter(folder / "gestures_qv.safetensors", weights,
                                    {"name": "lora", "rank": 2, "targets": ["attn.q", "attn.v"]},
                                    ["left", "right", "up"], SEGMENT),
        "gestures_linear": task_adapter(folder / "gestures_linear.safetensors", weights,
                                        {"name": "linear"}, ["x", "y"], SEGMENT),
        "other_backbone": task_adapter(folder / "other.safetensors", backbone_file(folder, seed=1),
                                       {"name": "linear"}, ["x", "y"], SEGMENT),
    }


def test_each_task_answers_like_single_task_infer(adapters, tiny_set):
    videos = [v.path for v in tiny_set.videos[:3]]
    files = [adapters["gestures"], adapters["actions"]]
    model = MultiTaskModel(files)
    assert [t.name for t in model.tasks] == ["gestures", "actions"]
    results = model.predict(videos, topk=3)
    for video, per_task in zip(videos, results):
        for name, adapter in zip(["gestures", "actions"], files):
            alone = infer(video, adapter, topk=3)
            assert [label for label, _ in per_task[name]] == [label for label, _ in alone]
            for (_, p_multi), (_, p_alone) in zip(per_task[name], alone):
                assert p_multi == pytest.approx(p_alone, abs=1e-6)
    assert all(sum(p for _, p in r["actions"]) <= 1.0 + 1e-6 for r in results)  # probabilities


def test_a_video_is_decoded_once_per_distinct_sampling(adapters, tiny_set, monkeypatch):
    opened: list[str] = []
    real = data_datasets.open_video

    def counting(path, *args, **kwargs):
        opened.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(data_datasets, "open_video", counting)
    videos = [v.path for v in tiny_set.videos[:2]]
    model = MultiTaskModel([adapters["gestures"], adapters["actions"], adapters["gestures_linear"]])
    results = model.predict(videos)
    assert len(opened) == 4 and sorted(set(opened)) == sorted(videos)  # 2 samplings x 2 videos
    assert list(results[0]) == ["gestures", "actions", "gestures_linear"]


def test_frozen_tensors_are_shared_and_trained_ones_are_per_task(adapters):
    model = MultiTaskModel([adapters["gestures"], adapters["actions"]])
    lora, mlp = (t.model for t in model.tasks)
    base = model.backbone
    assert lora.blocks[0].attn.qkv.weight is base.blocks[0].attn.qkv.weight
    assert mlp.blocks[1].mlp.fc2.weight is base.blocks[1].mlp.fc2.weight
    assert lora.patch_embed.proj.weight.data_ptr() == base.patch_embed.proj.weight.data_ptr()
    assert lora.head.weight.shape == (3, 48) and mlp.head.weight.shape == (4, 48)
    assert hasattr(mlp.blocks[0], "adaptmlp") and not hasattr(lora.blocks[0], "adaptmlp")


def test_a_lora_on_the_q_and_v_parts_shares_the_fused_qkv_and_answers_like_alone(adapters):
    """The shipped LoRA form (per-part factors on the fused qkv) next to a whole-qkv LoRA."""
    files = [adapters["gestures"], adapters["gestures_qv"]]
    model = MultiTaskModel(files)
    qv = model.tasks[1].model.blocks[0].attn.qkv
    assert qv.parts == ("q", "v") and qv.weight is model.backbone.blocks[0].attn.qkv.weight
    x = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model({t.name: x[:, None] for t in model.tasks})
        for task, path in zip(model.tasks, files):
            alone, _ = model_from_adapter(path)
            torch.testing.assert_close(logits[task.name][:, 0], alone(x), rtol=0, atol=1e-6)
        assert not torch.allclose(logits["gestures"], logits["gestures_qv"])


def test_a_q_v_lora_adapter_merges_into_plain_weights(adapters, tmp_path):
    result = merge_adapter(adapters["gestures_qv"], tmp_path / "merged.safetensors")
    assert result.merged_layers == 2
    adapted, _ = model_from_adapter(adapters["gestures_qv"])
    plain = videopeft.create_model("videomae_tiny", num_classes=3, num_frames=4, img_size=32)
    videopeft.load_pretrained(plain, result.path)
    x = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(plain.eval()(x), adapted(x), rtol=0, atol=1e-4)
    qkv, base = plain.blocks[0].attn.qkv.weight, adapted.blocks[0].attn.qkv.weight
    assert torch.equal(qkv[48:96], base[48:96]) and not torch.equal(qkv[:48], base[:48])


def test_an_adapter_of_another_backbone_is_refused(adapters):
    with pytest.raises(peft.AdapterError, match=r"other\.safetensors: trained on backbone \w+, but "
                                                r"the shared backbone .* fingerprints \w+"):
        MultiTaskModel([adapters["gestures"], adapters["other_backbone"]])


def test_the_infer_tool_prints_each_tasks_top_k(adapters, tiny_set, capsys):
    video = tiny_set.videos[0].path
    assert run_main("infer", [video, "--adapter", str(adapters["gestures"]), "--adapter",
                              str(adapters["actions"]), "--topk", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{video}:" and out[1] == "  gestures:" and out[4] == "  actions:"
    assert len(out) == 7 and out[2].lstrip().startswith("1. ") and out[6].lstrip().startswith("2. ")
    top = infer(video, adapters["actions"], topk=2)
    assert out[5].split()[1] == top[0][0]
