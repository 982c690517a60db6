"""The fixed vocabularies and numbers of videopeft, each defined once (a leaf module: no torch).

Each choice is a `Literal` type, for annotations, plus the tuple of its values, for checks and
argparse `choices`; config.py, the data layer, metrics and the tools all import them from here.
"""
from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "Layout", "LAYOUTS", "Backend", "BACKENDS", "AUTO_ORDER",
    "Sampling", "SAMPLINGS", "ShortVideo", "SHORT_VIDEO_POLICIES", "Fusion", "FUSIONS",
    "SPATIAL_VIEWS", "Amp", "AMPS", "PosPolicy", "POS_POLICIES", "Split", "SPLITS",
    "GlobalPool", "GLOBAL_POOLS", "ExportTarget", "EXPORT_TARGETS",
]

# normalisation of [0, 1] pixels used by every VideoMAE / AdaptFormer data pipeline
# (MCG-NJU/VideoMAE:kinetics.py, ssv2.py; the `_cfg` value 0.5 in modeling_finetune.py is unused)
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

# on-disk dataset layouts: Something-Something-v2 JSON, HMDB51 split files, Kinetics CSV,
# and the VideoMAE/AdaptFormer "<path> <label>" list
Layout = Literal["ssv2", "hmdb51", "kinetics", "list"]
LAYOUTS: tuple[str, ...] = get_args(Layout)

# video decoders; "auto" tries AUTO_ORDER per file and falls back on failure
Backend = Literal["auto", "decord", "pyav", "torchcodec"]
BACKENDS: tuple[str, ...] = get_args(Backend)
AUTO_ORDER: tuple[str, ...] = ("decord", "pyav", "torchcodec")

# segment = TSN sampling (SSv2), dense = fixed stride (Kinetics, HMDB51)
Sampling = Literal["segment", "dense"]
SAMPLINGS: tuple[str, ...] = get_args(Sampling)

# how a video shorter than the clip span is padded
ShortVideo = Literal["repeat_last", "loop"]
SHORT_VIDEO_POLICIES: tuple[str, ...] = get_args(ShortVideo)

# how the views of one video are fused into its score
Fusion = Literal["softmax_mean", "logit_mean", "max"]
FUSIONS: tuple[str, ...] = get_args(Fusion)

# spatial test crops per temporal view: the centre, or three along the long side
SPATIAL_VIEWS: tuple[int, ...] = (1, 3)

# mixed precision: auto = bf16 on CUDA, off on CPU
Amp = Literal["auto", "bf16", "fp16", "off"]
AMPS: tuple[str, ...] = get_args(Amp)

# how a checkpoint's position table meets a model of another frame count or size
PosPolicy = Literal["regenerate", "resample"]
POS_POLICIES: tuple[str, ...] = get_args(PosPolicy)

# dataset splits a run reads
Split = Literal["train", "val"]
SPLITS: tuple[str, ...] = get_args(Split)

# timm's `global_pool` choices `create_model` honours: mean of the patch tokens, or the first token
GlobalPool = Literal["avg", "token"]
GLOBAL_POOLS: tuple[str, ...] = get_args(GlobalPool)

# what `export` writes: a transformers model, a peft adapter, or (from a peft adapter) a videopeft one
ExportTarget = Literal["hf", "peft", "videopeft"]
EXPORT_TARGETS: tuple[str, ...] = get_args(ExportTarget)
