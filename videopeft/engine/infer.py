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

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from videopeft import peft
from videopeft.config import DataConfig
from videopeft.constants import IMAGENET_MEAN, IMAGENET_STD
from videopeft.data import EvalVideoDataset, VideoRecord
from videopeft.errors import AdapterError
from videopeft.models import VideoViT, load_pretrained
from videopeft.models.checkpoints import save_pretrained

from .metrics import fuse_views

__all__ = ["model_from_adapter", "infer", "merge_adapter", "MergeResult", "fold_head_bn"]

_log = logging.getLogger(__name__)


def _backbone_from_arch(arch: dict) -> nn.Module:
    """A VideoViT with the architecture recorded in an adapter or a merged file."""
    kwargs = {k: v for k, v in arch.items() if k != "name"}
    if kwargs.get("pos_source_grid") is not None:
        kwargs["pos_source_grid"] = tuple(kwargs["pos_source_grid"])
    model = VideoViT(**kwargs)
    model.arch["name"] = arch.get("name")
    return model


def model_from_adapter(adapter: str | os.PathLike, backbone: str | os.PathLike | None = None,
                       device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the trained model from an adapter file (+ backbone weights); returns (model, meta).

    The backbone is `backbone`, else the pretrained path recorded at training time, else the
    seeded random initialisation training used. Raises AdapterError when the backbone does not
    match the one the adapter was trained on.
    """
    meta = peft.read_adapter_metadata(adapter)
    arch = meta.get("backbone_arch") or {}
    torch.manual_seed(int(meta.get("seed", 0)))  # same init as training when no weights are given
    model = _backbone_from_arch(arch)
    weights = backbone or (meta.get("model") or {}).get("pretrained") or None
    if weights:
        if not Path(weights).exists():
            raise AdapterError(f"{adapter}: backbone weights {weights} not found; pass "
                                    f"--backbone PATH")
        load_pretrained(model, weights)
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


@torch.no_grad()
def infer(video: str | os.PathLike, adapter: str | os.PathLike, *,
          backbone: str | os.PathLike | None = None, topk: int = 5, device: str = "cpu",
          views_temporal: int | None = None, views_spatial: int | None = None
          ) -> list[tuple[str, float]]:
    """Top-k (label, fused score) for one video file, with the adapter's sampling and fusion.

    Raises DecodeError (naming the file and each backend's error) when the video cannot be read.
    """
    model, meta = model_from_adapter(adapter, backbone, device)
    s = meta.get("sampling") or {}
    classes = meta.get("class_names") or [str(i) for i in range(model.num_classes)]
    dataset = EvalVideoDataset([VideoRecord(str(video), 0)], _data_config(meta),
                               views_temporal=views_temporal or int(s.get("views_temporal", 1)),
                               views_spatial=views_spatial or int(s.get("views_spatial", 1)),
                               short_side=int(s.get("short_side", 0)), split="infer")
    views = dataset.load(0).to(device)  # (V, C, T, H, W); DecodeError if unreadable
    logits = model(views).float().cpu().unsqueeze(0)  # (1, V, K)
    scores = fuse_views(logits, s.get("fusion", "softmax_mean"))[0]
    top = scores.topk(min(topk, scores.numel()))
    return [(classes[i], float(v)) for v, i in zip(top.values.tolist(), top.indices.tolist())]


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

    merged_layers = 0
    if any(isinstance(m, peft.LoRALinear) for m in model.modules()):
        merged_layers = peft.merge_lora(model)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state = {k: v for k, v in state.items() if ".lora_" not in k}
    if "head.bn.running_mean" in state:
        state = fold_head_bn(state, eps=model.head.bn.eps)
    plain = _backbone_from_arch(arch).eval()
    own = plain.state_dict()
    extra = sorted(set(state) - set(own))
    if extra:
        raise AdapterError(f"{adapter}: method {method!r} adds {extra[:3]} that a plain "
                                f"VideoViT has no slot for; only lora, bitfit, partial, linear "
                                f"and full adapters can be merged")
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
