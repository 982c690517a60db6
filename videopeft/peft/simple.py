"""Methods that add nothing and only choose what to unfreeze: bitfit, partial, linear, full.

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

from .config import BitFitConfig, FullConfig, LinearConfig, PartialConfig

__all__ = ["BitFitConfig", "PartialConfig", "LinearConfig", "FullConfig", "apply_bitfit",
           "apply_partial", "apply_linear", "apply_full", "BIAS_NAMES"]

BIAS_NAMES = ("bias", "q_bias", "v_bias")


def apply_bitfit(model: VideoViT, cfg: BitFitConfig) -> dict[str, list[str]]:
    """{"bias": every parameter registered as bias, q_bias or v_bias on its module}."""
    names = [f"{mod}.{p}" if mod else p for mod, m in model.named_modules()
             for p, _ in m.named_parameters(recurse=False) if p in BIAS_NAMES]
    return {"bias": names}


def apply_partial(model: VideoViT, cfg: PartialConfig) -> dict[str, list[str]]:
    """{"last_blocks": parameters of blocks L-k .. L-1}."""
    depth = len(model.blocks)
    if cfg.k > depth:
        raise ConfigError(f"method.k: expected at most {depth} (the model's depth), got {cfg.k}")
    return {"last_blocks": [f"blocks.{i}.{n}" for i in range(depth - cfg.k, depth)
                            for n, _ in model.blocks[i].named_parameters()]}


def apply_linear(model: VideoViT, cfg: LinearConfig) -> dict[str, list[str]]:
    """Nothing beyond the common head/fc_norm groups."""
    return {}


def apply_full(model: VideoViT, cfg: FullConfig) -> dict[str, list[str]]:
    """{"backbone": every parameter} (head/fc_norm are reported in their own groups)."""
    return {"backbone": [n for n, _ in model.named_parameters()]}
