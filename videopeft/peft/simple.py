"""Methods that add nothing and only choose what to unfreeze: bitfit, partial, linear, full.

Each returns its rules (report group -> which existing parameters, by name), which
`mark_trainable` applies like every other method's groups.
bitfit (Ben Zaken et al. 2022): every bias in the model: Linear and Conv3d `bias`, the attention's
    `q_bias`/`v_bias` (VideoMAE's qkv has no Linear bias; these are its bias terms) and the
    LayerNorm biases (`norm1/norm2/fc_norm .bias`); LayerNorm weights stay frozen.
partial: the last k blocks (all their parameters).
linear: nothing beyond the common set, i.e. head + fc_norm, as AdaptFormer's linear probe does.
full: everything.
"""
from __future__ import annotations

from videopeft.errors import ConfigError
from videopeft.models.vit import VideoViT

from .base import Rules
from .config import BitFitConfig, FullConfig, LinearConfig, PartialConfig

__all__ = ["BitFitConfig", "PartialConfig", "LinearConfig", "FullConfig", "select_bitfit",
           "select_partial", "select_linear", "select_full", "BIAS_NAMES"]

BIAS_NAMES = ("bias", "q_bias", "v_bias")


def select_bitfit(model: VideoViT, cfg: BitFitConfig) -> Rules:
    """{"bias": every parameter registered as bias, q_bias or v_bias on its module}."""
    return {"bias": lambda name: name.rpartition(".")[2] in BIAS_NAMES}


def select_partial(model: VideoViT, cfg: PartialConfig) -> Rules:
    """{"last_blocks": parameters of blocks L-k .. L-1}."""
    depth = len(model.blocks)
    if cfg.k > depth:
        raise ConfigError(f"expected at most {depth} (the model's depth), got {cfg.k}", key="method.k")
    prefixes = tuple(f"blocks.{i}." for i in range(depth - cfg.k, depth))
    return {"last_blocks": lambda name: name.startswith(prefixes)}


def select_linear(model: VideoViT, cfg: LinearConfig) -> Rules:
    """Nothing beyond the common head/fc_norm groups."""
    return {}


def select_full(model: VideoViT, cfg: FullConfig) -> Rules:
    """{"backbone": every parameter} (head/fc_norm are reported in their own groups)."""
    return {"backbone": lambda name: True}
