"""Checkpoint key layouts: recognise one from sentinel keys, rename its keys to VideoViT's.

VideoViT's keys are the official VideoMAE fine-tune keys (MCG-NJU/VideoMAE:modeling_finetune.py),
so each converter below is a pure renaming of one source layout into them, with nothing fitted to
a model yet (`videopeft.models.fitting` does that):

* ``videopeft`` / ``official_finetune`` - the same keys; official `gamma_1/2` become `ls1/2.gamma`.
* ``official_pretrain`` - `encoder.*` keys of the masked autoencoder
  (MCG-NJU/VideoMAE:modeling_pretrain.py, also written by `videopeft.models.pretrain`); the decoder,
  `mask_token` and `encoder_to_decoder` are dropped.
* ``hf`` - transformers VideoMAE (huggingface/transformers:modeling_videomae.py), renamed by the
  `HF_*_NAMES` tables, which `videopeft_to_hf_key` reads backwards for an exporter; separate
  query/key/value weights are fused into `attn.qkv.weight`.
* ``timm`` - an image ViT (huggingface/pytorch-image-models:vision_transformer.py): the same
  names, its fused qkv bias split.

A key bias (HF `key.bias`, the middle third of timm's qkv bias) has no slot, since VideoMAE
attention has none; dropping it is exact for plain softmax attention and is reported when nonzero.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Callable, Literal, get_args

import torch

from videopeft.errors import CheckpointError

__all__ = ["StateDict", "CheckpointLayout", "CHECKPOINT_LAYOUTS", "ConvertNotes", "detect_layout",
           "detect_layout_or_none", "from_official_finetune", "from_official_pretrain", "from_hf",
           "from_timm", "CONVERTERS", "HF_BACKBONE_PREFIX", "HF_TOP_LEVEL_NAMES", "HF_BLOCK_NAMES",
           "HF_QKV_PARTS", "hf_to_videopeft_key", "videopeft_to_hf_key"]

_log = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]

CheckpointLayout = Literal["videopeft", "official_finetune", "official_pretrain", "hf", "timm"]
CHECKPOINT_LAYOUTS: tuple[str, ...] = get_args(CheckpointLayout)

_KEY_BIAS_ATOL = 1e-6


@dataclass
class ConvertNotes:
    """What a converter changed: keys dropped on purpose, keys resized, and free-text remarks."""

    ignored: dict[str, str] = field(default_factory=dict)  # key -> why it was dropped
    resized: dict[str, str] = field(default_factory=dict)  # key -> "from -> to (how)"
    messages: list[str] = field(default_factory=list)


def detect_layout(state_dict: StateDict) -> str:
    """Name the key layout of a state dict from sentinel keys (one of `CHECKPOINT_LAYOUTS`)."""
    keys = state_dict.keys()
    if {HF_BACKBONE_PREFIX + _HF_PATCH_WEIGHT, _HF_PATCH_WEIGHT} & set(keys):
        return "hf"
    if any(k.startswith(("encoder.patch_embed.", "encoder.blocks.")) for k in keys):
        return "official_pretrain"
    patch = state_dict.get("patch_embed.proj.weight")
    if (patch is not None and patch.ndim == 4) or any(k.endswith("attn.qkv.bias") for k in keys):
        return "timm"
    if (patch is not None and patch.ndim == 5) or any(k.endswith("attn.q_bias") for k in keys):
        ours = any(".ls1.gamma" in k for k in keys) or "pos_embed" in keys or "cls_token" in keys
        return "videopeft" if ours else "official_finetune"
    raise CheckpointError(f"no known layout (VideoMAE official/HF, timm ViT); first keys: "
                          f"{list(keys)[:4]}")


def detect_layout_or_none(state_dict: StateDict) -> str | None:
    """`detect_layout`, or None when no layout fits."""
    try:
        return detect_layout(state_dict)
    except CheckpointError:
        return None


# ---------------------------------------------------------------------------------------------
# official VideoMAE layouts


def from_official_finetune(sd: StateDict, notes: ConvertNotes) -> StateDict:
    """Official fine-tune / our layout: only the layer-scale names differ."""
    return {re.sub(r"\.gamma_([12])$", r".ls\1.gamma", key): value for key, value in sd.items()}


def from_official_pretrain(sd: StateDict, notes: ConvertNotes) -> StateDict:
    """Masked-autoencoder layout: keep the encoder (prefix stripped), ignore the decoder."""
    out = {}
    for key, value in sd.items():
        if key.startswith("encoder."):
            out[key[len("encoder."):]] = value
        elif _is_pretrain_decoder(key):
            notes.ignored[key] = "pre-training decoder"
        else:
            out[key] = value
    return from_official_finetune(out, notes)


def _is_pretrain_decoder(key: str) -> bool:
    """Keys of the masked autoencoder's decoder side (same names in the official and HF models)."""
    return key.startswith(("decoder.", "encoder_to_decoder.")) or key == "mask_token"


# ---------------------------------------------------------------------------------------------
# transformers VideoMAE

# the backbone's attribute in VideoMAEForVideoClassification / VideoMAEForPreTraining
HF_BACKBONE_PREFIX = "videomae."
_HF_PATCH_WEIGHT = "embeddings.patch_embeddings.projection.weight"

# (HF name prefix, VideoViT name prefix) outside the blocks; HF keeps fc_norm and the classifier
# outside the backbone, everything else under HF_BACKBONE_PREFIX
HF_TOP_LEVEL_NAMES: tuple[tuple[str, str], ...] = (
    ("embeddings.patch_embeddings.projection.", "patch_embed.proj."),
    ("layernorm.", "norm."), ("fc_norm.", "fc_norm."), ("classifier.", "head."))
# the same within block i (HF `encoder.layer.i.`, VideoViT `blocks.i.`). Where a VideoViT name has
# two HF spellings the first is the one transformers writes to files (4.x, and 5.x
# save_pretrained), the one `videopeft_to_hf_key` returns; 5.x modules in memory use the second.
HF_BLOCK_NAMES: tuple[tuple[str, str], ...] = (
    ("attention.attention.q_bias", "attn.q_bias"),
    ("attention.attention.v_bias", "attn.v_bias"),
    ("attention.output.dense.", "attn.proj."), ("intermediate.dense.", "mlp.fc1."),
    ("output.dense.", "mlp.fc2."), ("layernorm_before.", "norm1."),
    ("layernorm_after.", "norm2."),
    ("attention.attention.query.bias", "attn.q_bias"),
    ("attention.attention.value.bias", "attn.v_bias"))
# HF's separate projection weights `attention.attention.{part}.weight`, in the order of the row
# blocks of VideoViT's fused `attn.qkv.weight`
HF_QKV_PARTS = ("query", "key", "value")

_HF_BLOCK_KEY = re.compile(r"encoder\.layer\.(\d+)\.(.+)$")
_OUR_BLOCK_KEY = re.compile(r"blocks\.(\d+)\.(.+)$")


def hf_to_videopeft_key(hf_key: str) -> str:
    """VideoViT's name for a transformers VideoMAE key (the `videomae.` prefix is optional).

    The query/key/value weights have no one-to-one counterpart (they are fused into
    `blocks.i.attn.qkv.weight`, see `from_hf`); a name in no table comes back unchanged.
    """
    key = hf_key.removeprefix(HF_BACKBONE_PREFIX)
    m = _HF_BLOCK_KEY.match(key)
    if m:
        return f"blocks.{int(m.group(1))}.{_rename(m.group(2), HF_BLOCK_NAMES)}"
    return _rename(key, HF_TOP_LEVEL_NAMES)


def videopeft_to_hf_key(key: str, backbone_prefix: str = HF_BACKBONE_PREFIX) -> str:
    """The transformers VideoMAE key (file spelling) for a VideoViT key: `hf_to_videopeft_key`
    backwards. A name under a mapped module keeps its tail (`mlp.fc1.x` -> `intermediate.dense.x`).

    `backbone_prefix` is "" for a bare VideoMAEModel. Raises ValueError for a key HF has no slot
    for (layer scale, a learned table, a class token) and for the fused `attn.qkv.weight`,
    whose rows an exporter splits into the HF_QKV_PARTS weights.
    """
    m = _OUR_BLOCK_KEY.match(key)
    if m and m.group(2) == "attn.qkv.weight":
        raise ValueError(f"{key}: split its rows into attention.attention."
                         f"{{{','.join(HF_QKV_PARTS)}}}.weight")
    if m:
        rest = _rename_back(m.group(2), HF_BLOCK_NAMES)
        hf = None if rest is None else f"{backbone_prefix}encoder.layer.{m.group(1)}.{rest}"
    else:
        hf = _rename_back(key, HF_TOP_LEVEL_NAMES)
        if hf is not None and not hf.startswith(("fc_norm.", "classifier.")):
            hf = backbone_prefix + hf
    if hf is None:
        raise ValueError(f"{key}: transformers VideoMAE has no counterpart")
    return hf


def from_hf(sd: StateDict, notes: ConvertNotes) -> StateDict:
    """transformers VideoMAE: rename, fuse query/key/value weights into qkv (rows q, k, v)."""
    out: StateDict = {}
    qkv: dict[int, dict[str, torch.Tensor]] = {}
    for original, value in sd.items():
        key = original.removeprefix(HF_BACKBONE_PREFIX)
        m = _HF_BLOCK_KEY.match(key)
        w = m and re.match(r"attention\.attention\.(query|key|value)\.weight$", m.group(2))
        if w:
            qkv.setdefault(int(m.group(1)), {})[w.group(1)] = value
        elif m and m.group(2) == "attention.attention.key.bias":
            _drop_key_bias(f"blocks.{int(m.group(1))}.attn", value, original, notes)
        elif not m and _is_pretrain_decoder(key):
            notes.ignored[original] = "pre-training decoder"
        else:
            out[hf_to_videopeft_key(original)] = value
    for i, parts in sorted(qkv.items()):
        if set(parts) != set(HF_QKV_PARTS):
            raise CheckpointError(f"encoder.layer.{i}: has only {sorted(parts)} of "
                                  f"query/key/value weights")
        out[f"blocks.{i}.attn.qkv.weight"] = torch.cat([parts[n] for n in HF_QKV_PARTS], dim=0)
    return out


def _rename(key: str, table: tuple[tuple[str, str], ...]) -> str:
    """`key` with the first matching source prefix of `table` replaced by its target."""
    for old, new in table:
        if key.startswith(old):
            return new + key[len(old):]
    return key


def _rename_back(key: str, table: tuple[tuple[str, str], ...]) -> str | None:
    """`key` with the first matching target prefix of `table` replaced by its source, or None."""
    for old, new in table:
        if key.startswith(new):
            return old + key[len(new):]
    return None


# ---------------------------------------------------------------------------------------------
# timm image ViT


def from_timm(sd: StateDict, notes: ConvertNotes) -> StateDict:
    """timm image ViT: same names; the fused qkv bias is split into q_bias / v_bias."""
    out: StateDict = {}
    for key, value in sd.items():
        if key.endswith("attn.qkv.bias"):
            prefix = key[: -len(".qkv.bias")]
            q, k, v = value.chunk(3)
            out[f"{prefix}.q_bias"], out[f"{prefix}.v_bias"] = q, v
            _drop_key_bias(prefix, k, key, notes)
        else:
            out[key] = value
    return out


def _drop_key_bias(prefix: str, k_bias: torch.Tensor, key: str, notes: ConvertNotes) -> None:
    """VideoMAE attention has no key bias. Dropping one is exact for plain softmax attention
    (q.b_k shifts a whole row of logits), but not once prefix keys (VPT/prefix tuning) join in."""
    amax = float(k_bias.abs().max()) if k_bias.numel() else 0.0
    if amax <= _KEY_BIAS_ATOL:
        notes.ignored[key] = "zero key bias (VideoMAE has none)"
        return
    notes.ignored[key] = "nonzero key bias dropped"
    msg = (f"{prefix}: key bias |b_k|max={amax:.3g} dropped; plain attention is unchanged "
           f"(softmax ignores a per-row shift) but prefix/prompt keys would see a difference")
    notes.messages.append(msg)
    _log.warning(msg)


Converter = Callable[[StateDict, ConvertNotes], StateDict]

CONVERTERS: dict[str, Converter] = {
    "videopeft": from_official_finetune, "official_finetune": from_official_finetune,
    "official_pretrain": from_official_pretrain, "hf": from_hf, "timm": from_timm}
