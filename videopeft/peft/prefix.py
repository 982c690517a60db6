"""Prefix tuning (Li & Liang 2021): P learned keys and values that every query attends to, in the
attention of every selected block, through `Attention.kv_prefix`.

Two parameterisations of the same thing:
  * direct (reparam=False): `prefix.kv`, shape (L, 2, P, D) (layer, key/value, token, channel);
  * reparameterised (reparam=True, Li & Liang's stabiliser): kv = MLP(embedding), with
    `prefix.embedding` (P, D) -> `prefix.mlp_in` (D -> H) -> tanh -> `prefix.mlp_out` (H -> L*2*D).
`fold_prefix(model)` evaluates the MLP once and turns a reparameterised model into a direct one
(same logits), and records the method as reparam=False so adapter files load it as such.

Not an identity at init: attending to any finite extra key takes softmax mass from the real
tokens, so even zero keys and values change the output (HF peft's docs say the same). Init is
N(0, 0.02) for `embedding` and `kv` (the ViT's token-parameter scale); the MLP has PyTorch's
default Linear init.
"""
from __future__ import annotations

import dataclasses
import logging

import torch
import torch.nn as nn
import torch.nn.functional as F

from videopeft.models.vit import VideoViT

from .base import TrainableReport, link, mark_trainable, resolve_layers
from .config import PrefixConfig

__all__ = ["PrefixConfig", "PrefixEncoder", "PrefixKV", "apply_prefix", "fold_prefix"]

_log = logging.getLogger(__name__)


class PrefixEncoder(nn.Module):
    """Holds the prefixes of every selected block; `layer_kv(j)` gives block j's (P, D) keys, values."""

    def __init__(self, num_layers: int, num_prefix: int, dim: int, *, reparam: bool, hidden: int,
                 device: torch.device | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.num_layers, self.num_prefix, self.dim = num_layers, num_prefix, dim
        if reparam:
            self.embedding = nn.Parameter(torch.empty(num_prefix, dim, **factory))
            self.mlp_in = nn.Linear(dim, hidden, **factory)
            self.mlp_out = nn.Linear(hidden, num_layers * 2 * dim, **factory)
            nn.init.normal_(self.embedding, std=0.02)
        else:
            self.kv = nn.Parameter(torch.empty(num_layers, 2, num_prefix, dim, **factory))
            nn.init.normal_(self.kv, std=0.02)

    @property
    def reparam(self) -> bool:
        return "kv" not in self._parameters

    def layer_kv(self, j: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values (P, D) of the j-th prefixed block; with reparam only its rows of
        `mlp_out` are evaluated."""
        if not self.reparam:
            return self.kv[j, 0], self.kv[j, 1]
        hidden = torch.tanh(self.mlp_in(self.embedding))
        rows = slice(j * 2 * self.dim, (j + 1) * 2 * self.dim)
        kv = F.linear(hidden, self.mlp_out.weight[rows], self.mlp_out.bias[rows])
        return kv[:, :self.dim], kv[:, self.dim:]

    def adapter_params(self) -> list[str]:
        """Everything trains: `kv`, or the embedding and its MLP (AdapterModule)."""
        return [n for n, _ in self.named_parameters()]

    @torch.no_grad()
    def fold(self) -> None:
        """Replace embedding + MLP by the direct `kv` they produce."""
        if not self.reparam:
            return
        kv = torch.stack([torch.stack(self.layer_kv(j)) for j in range(self.num_layers)])
        del self.embedding, self.mlp_in, self.mlp_out
        self.kv = nn.Parameter(kv.detach().clone())


class PrefixKV(nn.Module):
    """`Attention.kv_prefix` of one block: its prefix as (1, heads, P, head_dim) keys and values.

    The encoder is linked, not registered, so its tensors are saved once, under `prefix.*`.
    """

    def __init__(self, encoder: PrefixEncoder, index: int, num_heads: int) -> None:
        super().__init__()
        link(self, "encoder", encoder)
        self.index, self.num_heads = index, num_heads

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.encoder.layer_kv(self.index)
        return self._heads(k), self._heads(v)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        """(P, D) -> (1, heads, P, head_dim), as a copy: a module output that is a view of a
        Parameter reports requires_grad under no_grad, which breaks torch's ModuleTracker hooks
        (FlopCounterMode); P x D values are cheap to copy."""
        return t.reshape(1, t.shape[0], self.num_heads, -1).transpose(1, 2).clone()


def apply_prefix(model: VideoViT, cfg: PrefixConfig) -> None:
    """Add `model.prefix` (the prefixes, which train) and a PrefixKV to every selected block's
    attention."""
    layers = resolve_layers(cfg.layers, len(model.blocks))
    ref = model.blocks[0].attn.qkv.weight
    model.prefix = PrefixEncoder(len(layers), cfg.num_prefix, model.embed_dim, reparam=cfg.reparam,
                                 hidden=cfg.reparam_hidden, device=ref.device, dtype=ref.dtype)
    for j, i in enumerate(layers):
        attn = model.blocks[i].attn
        attn.kv_prefix = PrefixKV(model.prefix, j, attn.num_heads)


def fold_prefix(model: VideoViT) -> TrainableReport:
    """Fold a reparameterised prefix into direct keys/values (same logits) and record the model's
    method as reparam=False; returns the new trainable report (the group is now `prefix.kv`)."""
    cfg = getattr(model, "peft_config", None)
    if not isinstance(cfg, PrefixConfig):
        raise ValueError(f"fold_prefix needs a model with method 'prefix', got "
                         f"{getattr(cfg, 'name', None)!r}")
    model.prefix.fold()
    folded = dataclasses.replace(cfg, reparam=False)
    report = mark_trainable(model, folded)
    model.peft_config, model.peft_report = folded, report
    _log.info("prefix: folded the reparameterisation into %s", tuple(model.prefix.kv.shape))
    return report
