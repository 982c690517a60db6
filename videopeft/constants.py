"""The fixed vocabularies and numbers of videopeft, each defined once (a leaf module: no torch).

Each choice is a `Literal` type, for annotations, plus the tuple of its values, for checks and
argparse `choices`; config.py, the data layer, metrics and the tools all import them from here.
"""
from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "Layout", "LAYOUTS", "Backend", "BACKENDS", "AUTO_ORDER",
    "Sampling", "SAMPLINGS", "ShortVideo", "SHORT_VIDEO_POLICIES", "OnMissing", "MISSING_POLICIES",
    "Fusion", "FUSIONS",
    "SPATIAL_VIEWS", "Amp", "AMPS", "PosPolicy", "POS_POLICIES", "Split", "SPLITS",
    "GlobalPool", "GLOBAL_POOLS", "ExportTarget", "EXPORT_TARGETS",
    "DenseTrain", "DENSE_TRAIN_RULES", "Crop", "CROPS", "ANTIALIAS_CHOICES", "MULTI_SCALES",
    "MULTI_SCALE_MAX_DISTORT", "StudyPolicy", "STUDY_POLICIES", "QKV_PARTS", "NO_WEIGHT_DECAY",
    "Augment", "AUGMENT_MODES", "ERASE_AREA", "ERASE_MIN_ASPECT", "RAND_AUGMENT_FILL",
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

# where a dense training clip sits and how its frames are spread:
# linspace = MCG-NJU/VideoMAE:kinetics.py VideoClsDataset.loadvideo_decord (fine-tuning): a window
#   of num_frames * stride frames ending at a random frame, num_frames indices spread by linspace;
# stride = MCG-NJU/VideoMAE:kinetics.py VideoMAE (pre-training, and ShoufaChen/AdaptFormer's
#   training set, datasets/kinetics.py build_training_dataset): a random start, then every
#   stride-th frame
DenseTrain = Literal["linspace", "stride"]
DENSE_TRAIN_RULES: tuple[str, ...] = get_args(DenseTrain)

# training crops: torchvision's random-resized crop (VideoMAE fine-tuning) or TSN's
# GroupMultiScaleCrop (MCG-NJU/VideoMAE:transforms.py; VideoMAE pre-training and AdaptFormer)
Crop = Literal["random_resized", "multi_scale"]
CROPS: tuple[str, ...] = get_args(Crop)
# GroupMultiScaleCrop's crop sides as fractions of the short side, and how many steps apart the
# height and width scales may be (MCG-NJU/VideoMAE:datasets.py DataAugmentationForVideoMAE)
MULTI_SCALES: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)
MULTI_SCALE_MAX_DISTORT = 1

# resize antialiasing: "auto" = as the official pipeline resizes at that step (PIL bilinear, which
# antialiases, in GroupMultiScaleCrop; F.interpolate / OpenCV bilinear, which do not, in VideoMAE's
# random-resized crop and test resize), or true / false everywhere
ANTIALIAS_CHOICES: tuple[object, ...] = ("auto", True, False)

# where the clip augmentation runs: in the DataLoader workers (float clips cross to the device), or
# on the device (workers decode and cut uint8 crops; resize, flip, RandAugment, normalisation and
# erasing run batched on the device); auto = device on CUDA, worker elsewhere
Augment = Literal["auto", "worker", "device"]
AUGMENT_MODES: tuple[str, ...] = get_args(Augment)

# random erasing as timm's RandomErasing defaults (timm/data/random_erasing.py), which VideoMAE
# uses with mode "pixel" and count 1: an area fraction in ERASE_AREA, an aspect ratio log-uniform
# in [ERASE_MIN_ASPECT, 1 / ERASE_MIN_ASPECT]
ERASE_AREA: tuple[float, float] = (0.02, 1 / 3)
ERASE_MIN_ASPECT = 0.3

# the grey that RandAugment's geometric ops fill uncovered pixels with (VideoMAE's hparams
# img_mean, MCG-NJU/VideoMAE:rand_augment.py)
RAND_AUGMENT_FILL: tuple[int, int, int] = (128, 128, 128)

# parameters kept out of weight decay by exact name, as the models' no_weight_decay()
# (MCG-NJU/VideoMAE:modeling_finetune.py, modeling_pretrain.py: the pre-training model adds mask_token)
NO_WEIGHT_DECAY: tuple[str, ...] = ("pos_embed", "cls_token", "mask_token")

# a frame-count study of dense sampling keeps the clip's span (coverage) or its stride (fixed)
StudyPolicy = Literal["coverage", "fixed"]
STUDY_POLICIES: tuple[str, ...] = get_args(StudyPolicy)

# the row blocks of a fused attention projection `attn.qkv` (weight rows ordered q, k, v), which
# LoRA can target one by one as `attn.q`, `attn.k`, `attn.v`
QKV_PARTS: tuple[str, ...] = ("q", "k", "v")

# how a video shorter than the clip span is padded
ShortVideo = Literal["repeat_last", "loop"]
SHORT_VIDEO_POLICIES: tuple[str, ...] = get_args(ShortVideo)

# what a run does with videos its annotation lists but that are not on disk: skip = leave them
# out of training (evaluation still counts them as failed), error = stop before any work
OnMissing = Literal["skip", "error"]
MISSING_POLICIES: tuple[str, ...] = get_args(OnMissing)

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
