"""Use an adapter file on its own: classify a video file, or fold the adapter into plain weights.

An adapter file (`peft.save_adapter`, written by training) carries what is needed to rebuild the
model and its input pipeline: the backbone architecture, the method, the class names, the
sampling config (frames, stride, size, normalisation, views, fusion), the seed that initialised
the backbone, and the path of the pretrained backbone it was trained on (override with
`backbone=`). `load_adapter` refuses a backbone whose frozen weights differ from training's.

    top = infer("clip.mp4", "runs/x/adapter.safetensors", topk=5)   # [(label, probability), ...]
    merge_adapter("runs/x/adapter.safetensors", "merged.pth")      # plain VideoViT weights
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Collection

import torch
import torch.nn as nn

from videopeft import peft
from videopeft.config import DataConfig
from videopeft.constants import IMAGENET_MEAN, IMAGENET_STD
from videopeft.data import EvalVideoDataset, VideoRecord
from videopeft.errors import AdapterError
from videopeft.models import VideoViT, load_pretrained
from videopeft.models.checkpoints import save_pretrained

from .metrics import fused_probabilities

__all__ = ["model_from_adapter", "infer", "MultiTaskModel", "TaskModel", "merge_adapter",
           "MergeResult", "fold_head_bn", "plain_state_dict", "lora_layers"]

_log = logging.getLogger(__name__)


def _backbone_from_arch(arch: dict) -> nn.Module:
    """A VideoViT with the architecture recorded in an adapter or a merged file."""
    kwargs = {k: v for k, v in arch.items() if k != "name"}
    if kwargs.get("pos_source_grid") is not None:
        kwargs["pos_source_grid"] = tuple(kwargs["pos_source_grid"])
    model = VideoViT(**kwargs)
    model.arch["name"] = arch.get("name")
    return model


def _load_backbone(adapter: str | os.PathLike, meta: dict,
                   backbone: str | os.PathLike | None = None) -> nn.Module:
    """The plain backbone an adapter was trained on: its architecture, seeded like training,
    with `backbone` (or the recorded pretrained weights) loaded."""
    torch.manual_seed(int(meta.get("seed", 0)))  # same init as training when no weights are given
    model = _backbone_from_arch(meta.get("backbone_arch") or {})
    weights = backbone or (meta.get("model") or {}).get("pretrained") or None
    if weights:
        if not Path(weights).exists():
            raise AdapterError(f"{adapter}: backbone weights {weights} not found; pass "
                               f"--backbone PATH")
        load_pretrained(model, weights)
    return model


def model_from_adapter(adapter: str | os.PathLike, backbone: str | os.PathLike | None = None,
                       device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the trained model from an adapter file (+ backbone weights); returns (model, meta).

    The backbone is `backbone`, else the pretrained path recorded at training time, else the
    seeded random initialisation training used. Raises AdapterError when the backbone does not
    match the one the adapter was trained on.
    """
    meta = peft.read_adapter_metadata(adapter)
    model = _load_backbone(adapter, meta, backbone)
    peft.load_adapter(model, adapter)
    return model.to(device).eval(), meta


def _data_config(meta: dict) -> DataConfig:
    """The input pipeline recorded in the adapter's sampling metadata."""
    s = meta.get("sampling") or {}
    return DataConfig(num_frames=int(s.get("num_frames", meta.get("num_frames", 16))),
                      img_size=int(s.get("img_size", meta.get("img_size", 224))),
                      sampling=s.get("sampling", "segment"), stride=int(s.get("stride", 4)),
                      short_video=s.get("short_video", "repeat_last"),
                      mean=tuple(s.get("mean", IMAGENET_MEAN)),
                      std=tuple(s.get("std", IMAGENET_STD)))


def _view_settings(meta: dict, views_temporal: int | None = None,
                   views_spatial: int | None = None) -> dict[str, int]:
    """The adapter's test views (temporal clips x spatial crops, short side), overridable."""
    s = meta.get("sampling") or {}
    return {"views_temporal": views_temporal or int(s.get("views_temporal", 1)),
            "views_spatial": views_spatial or int(s.get("views_spatial", 1)),
            "short_side": int(s.get("short_side", 0))}


def _eval_views(videos: list[str], meta: dict, **views: int | None) -> EvalVideoDataset:
    """An EvalVideoDataset giving each video's views with the adapter's sampling."""
    return EvalVideoDataset([VideoRecord(str(v), 0) for v in videos], _data_config(meta),
                            **_view_settings(meta, **views), split="infer")


def _top_k(logits: torch.Tensor, fusion: str, classes: list[str], k: int
           ) -> list[list[tuple[str, float]]]:
    """Per video, the k best (label, probability) of its fused views (logits (N, V, K)).

    softmax_mean and max fuse probabilities already; a logit_mean fusion is turned into
    probabilities by a softmax over the mean logits (same ranking).
    """
    scores = fused_probabilities(logits.float().cpu(), fusion)
    top = scores.topk(min(k, scores.shape[-1]), dim=-1)
    return [[(classes[i], float(v)) for v, i in zip(vals, idx)]
            for vals, idx in zip(top.values.tolist(), top.indices.tolist())]


@torch.no_grad()
def infer(video: str | os.PathLike, adapter: str | os.PathLike, *,
          backbone: str | os.PathLike | None = None, topk: int = 5, device: str = "cpu",
          views_temporal: int | None = None, views_spatial: int | None = None
          ) -> list[tuple[str, float]]:
    """Top-k (label, probability) for one video file, with the adapter's sampling and fusion.

    Raises DecodeError (naming the file and each backend's error) when the video cannot be read.
    """
    model, meta = model_from_adapter(adapter, backbone, device)
    classes = meta.get("class_names") or [str(i) for i in range(model.num_classes)]
    dataset = _eval_views([str(video)], meta, views_temporal=views_temporal,
                          views_spatial=views_spatial)
    views = dataset.load(0).to(device)  # (V, C, T, H, W); DecodeError if unreadable
    logits = model(views).unsqueeze(0)  # (1, V, K)
    fusion = (meta.get("sampling") or {}).get("fusion", "softmax_mean")
    return _top_k(logits, fusion, classes, topk)[0]


# ----------------------------------------------------------------------------- multi-task

@dataclass
class TaskModel:
    """One task of a MultiTaskModel: its adapter's model (frozen tensors shared), classes, views."""

    name: str
    adapter: Path
    model: nn.Module
    classes: list[str]
    meta: dict
    fusion: str
    sampling: str  # key of the decoded views it needs; tasks with equal keys share a decode


def _task_name(path: Path, taken: set[str]) -> str:
    """The adapter file's stem, or its run folder's name for a run's `adapter.safetensors`."""
    name = path.parent.name if path.stem == "adapter" and path.parent.name else path.stem
    unique, n = name, 2
    while unique in taken:
        unique, n = f"{name}#{n}", n + 1
    return unique


def _sharing_model(base: nn.Module, meta: dict, path: Path, device: torch.device) -> nn.Module:
    """The adapter's model with every frozen parameter *being* the base's tensor (no copy).

    Built on the meta device (no weights allocated), the method applied, then each parameter
    either bound to the base's Parameter of that name (frozen) or allocated (trained: the
    adapter file fills it); buffers are allocated and the sinusoid table recomputed.
    """
    with torch.device("meta"):
        model = _backbone_from_arch(meta.get("backbone_arch") or {})
        report = peft.apply(model, peft.method_config(meta["method"]))
    trained = set(report.trainable)
    shared = dict(base.named_parameters())
    canonical = {id(p): n for n, p in model.named_parameters()}
    bound: dict[str, nn.Parameter] = {}
    for module in model.modules():
        for leaf, param in list(module._parameters.items()):
            if param is None:
                continue
            name = canonical[id(param)]
            if name not in bound:
                if name in trained:
                    bound[name] = nn.Parameter(torch.empty_like(param, device=device))
                elif name in shared and shared[name].shape == param.shape:
                    bound[name] = shared[name]
                else:
                    raise AdapterError(
                        f"{path}: frozen parameter {name} {tuple(param.shape)} has no equal in the "
                        f"shared backbone; a MultiTaskModel runs adapters of one backbone only")
            module._parameters[leaf] = bound[name]
        for leaf, buf in list(module._buffers.items()):
            if buf is not None:
                module._buffers[leaf] = torch.zeros_like(buf, device=device)
    if not isinstance(model.pos_embed, nn.Parameter):
        model.set_pos_source_grid(model.pos_source_grid)  # recompute the fixed table
    return model


class MultiTaskModel(nn.Module):
    """One frozen backbone, several task adapters, each with its own head, classes and sampling.

    Every task gets its own model object (methods such as adaptmlp add per-task modules), but
    the frozen backbone tensors are the shared backbone's own Parameters, so memory grows by
    the adapters' trained tensors only, and each task computes exactly what its adapter alone
    computes (the same modules over the same values). Adapters whose frozen weights do not
    fingerprint like the shared backbone are refused (AdapterError), as are shapes it cannot share.

        mt = MultiTaskModel(["ssv2/adapter.safetensors", "k400/adapter.safetensors"])
        mt.predict(["a.mp4", "b.mp4"], topk=5)   # [{"ssv2": [(label, p), ...], "k400": ...}, ...]
    """

    def __init__(self, adapters: list[str | os.PathLike], *,
                 backbone: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                 views_temporal: int | None = None, views_spatial: int | None = None) -> None:
        super().__init__()
        if not adapters:
            raise AdapterError("MultiTaskModel: expected at least one adapter file")
        paths = [Path(a) for a in adapters]
        metas = [peft.read_adapter_metadata(p) for p in paths]
        self.device = torch.device(device)
        self.views = {"views_temporal": views_temporal, "views_spatial": views_spatial}
        self.backbone = _load_backbone(paths[0], metas[0], backbone).to(self.device).eval()
        self.backbone.requires_grad_(False)
        self.tasks: list[TaskModel] = []
        self.task_models = nn.ModuleDict()
        for path, meta in zip(paths, metas):
            model = _sharing_model(self.backbone, meta, path, self.device)
            ours = peft.backbone_fingerprint(model, model.peft_report.trainable)
            if ours != meta.get("backbone_fingerprint"):
                raise AdapterError(
                    f"{path}: trained on backbone {meta.get('backbone_fingerprint')}, but the "
                    f"shared backbone (that of {paths[0]}) fingerprints {ours}; a MultiTaskModel "
                    f"runs adapters of one backbone only")
            peft.load_adapter(model, path)
            name = _task_name(path, {t.name for t in self.tasks})
            classes = meta.get("class_names") or [str(i) for i in range(model.num_classes)]
            fusion = (meta.get("sampling") or {}).get("fusion", "softmax_mean")
            key = json.dumps([dataclasses.asdict(_data_config(meta)),
                              _view_settings(meta, **self.views)], sort_keys=True)
            self.tasks.append(TaskModel(name, path, model.eval(), classes, meta, fusion, key))
            self.task_models[str(len(self.task_models))] = model
        _log.info("multi-task model: %d tasks (%s) over one backbone, %d distinct samplings",
                  len(self.tasks), ", ".join(t.name for t in self.tasks),
                  len({t.sampling for t in self.tasks}))

    def forward(self, views: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Logits (N, V, K) per task name, for the tasks whose clips (N, V, C, T, H, W) are given."""
        out = {}
        for task in (t for t in self.tasks if t.name in views):
            x = views[task.name].to(self.device)
            n, v = x.shape[:2]
            out[task.name] = task.model(x.flatten(0, 1)).view(n, v, -1)
        return out

    @torch.no_grad()
    def predict(self, videos: list[str | os.PathLike], topk: int = 5
                ) -> list[dict[str, list[tuple[str, float]]]]:
        """Per video, per task, the top-k (label, probability); each video is decoded once per
        distinct sampling. Raises DecodeError for an unreadable video."""
        videos = [str(v) for v in videos]
        results: list[dict[str, list[tuple[str, float]]]] = [{} for _ in videos]
        groups: dict[str, list[TaskModel]] = {}
        for task in self.tasks:
            groups.setdefault(task.sampling, []).append(task)
        for tasks in groups.values():
            dataset = _eval_views(videos, tasks[0].meta, **self.views)
            clips = torch.stack([dataset.load(i) for i in range(len(videos))])  # (N, V, C, T, H, W)
            logits = self({t.name: clips for t in tasks})
            for task in tasks:
                for i, top in enumerate(_top_k(logits[task.name], task.fusion, task.classes, topk)):
                    results[i][task.name] = top
        return [{t.name: r[t.name] for t in self.tasks} for r in results]  # in adapter order


# ----------------------------------------------------------------------------- merging

@dataclass
class MergeResult:
    """Where the merged weights went and how close they are to the adapter model."""

    path: Path
    method: str
    merged_layers: int
    max_abs_diff: float


def fold_head_bn(state: dict[str, torch.Tensor], eps: float) -> dict[str, torch.Tensor]:
    """Fold an eval-mode BatchNorm1d(affine=False) in front of the head into the head's weights.

    head(bn(x)) = W (x - mu) / s + b  with s = sqrt(var + eps)  =>  W' = W / s, b' = b - W' mu.
    """
    mean = state.pop("head.bn.running_mean").double()
    var = state.pop("head.bn.running_var").double()
    state.pop("head.bn.num_batches_tracked", None)
    w, b = state["head.weight"].double(), state["head.bias"].double()
    w_new = w / torch.sqrt(var + eps)
    state["head.weight"] = w_new.to(state["head.weight"].dtype)
    state["head.bias"] = (b - w_new @ mean).to(state["head.bias"].dtype)
    return state


def lora_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The model's LoRALinear layers by module name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, peft.LoRALinear)}


@torch.no_grad()
def plain_state_dict(model: nn.Module, source: str | os.PathLike, *,
                     merge: bool | Collection[str] = True) -> dict[str, torch.Tensor]:
    """The adapter model's weights as a plain VideoViT state dict; the model is left unchanged.

    LoRA updates are added to their base weights (merge=True, or only the layers named in
    `merge`) or dropped (merge=False: the frozen backbone); then a BN head is folded into the
    head. Methods that add modules a plain ViT has no slot for (adaptmlp, vpt, prefix, adapter)
    raise AdapterError naming `source`.
    """
    state = {k: v.detach().clone() for k, v in model.state_dict().items() if ".lora_" not in k}
    for name, layer in lora_layers(model).items():
        if merge is True or (merge is not False and name in merge):
            delta = layer.delta_weight()
            if not torch.isfinite(delta).all():
                raise AdapterError(f"{source}: {name}: LoRA update has non-finite values")
            weight = state[f"{name}.weight"]
            state[f"{name}.weight"] = (weight.float() + delta).to(weight.dtype)
    if "head.bn.running_mean" in state:
        state = fold_head_bn(state, eps=model.head.bn.eps)
    with torch.device("meta"):  # only the key names are needed
        own = _backbone_from_arch(dict(model.arch)).state_dict().keys()
    extra = sorted(set(state) - set(own))
    if extra:
        method = getattr(getattr(model, "peft_config", None), "name", "?")
        raise AdapterError(f"{source}: method {method!r} adds {extra[:3]} that a plain "
                           f"VideoViT has no slot for; only lora, bitfit, partial, linear "
                           f"and full adapters can be merged")
    return state


@torch.no_grad()
def merge_adapter(adapter: str | os.PathLike, out: str | os.PathLike, *,
                  backbone: str | os.PathLike | None = None, rtol: float = 1e-4) -> MergeResult:
    """Fold an adapter into plain VideoViT weights (LoRA merged, BN head folded) and verify.

    The written file (`.pth`/`.pt` or `.safetensors`, with the architecture) loads with
    `load_pretrained` into a plain model, which is checked against the adapter model on a random
    clip: max |difference| <= rtol * max |logit|. Methods that add modules a plain ViT has no slot
    for (adaptmlp, vpt, prefix, adapter) cannot be merged and raise AdapterError.
    """
    model, meta = model_from_adapter(adapter, backbone)
    method = meta["method"]["name"]
    arch = dict(model.arch)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, arch["num_frames"], arch["img_size"], arch["img_size"], generator=g)
    reference = model(x)

    merged_layers = len(lora_layers(model))
    state = plain_state_dict(model, adapter)
    plain = _backbone_from_arch(arch).eval()
    plain.load_state_dict(state, strict=True)
    out = save_pretrained(plain, out)

    check = _backbone_from_arch(arch).eval()  # reload from disk: the file is what is verified
    load_pretrained(check, out)
    diff = (check(x) - reference).abs().max().item()
    bound = rtol * max(1.0, reference.abs().max().item())
    if diff > bound:
        raise AdapterError(f"{out}: merged model differs from the adapter model by {diff:.3g} "
                           f"(allowed {bound:.3g})")
    _log.info("merged %s (%d LoRA layers) into %s; max |diff| %.3g", method, merged_layers, out,
              diff)
    return MergeResult(out, method, merged_layers, diff)
