"""Visual Prompt Tuning (Jia et al. 2022) on the video ViT, shallow or deep.

location "prepend" (default): p learned tokens go after the cls token (if any) and before the
patch tokens, with no position embedding.
  * shallow (deep=False): inserted before block 0, carried through every block and dropped after
    the last one, so mean pooling never sees them.
  * deep: before each selected block i a fresh set is inserted and after block i its outputs are
    dropped (AdaptFormer's vit_video.py; the same as KMnP/vpt's in-place replacement when every
    block is prompted).
location "add" (the VPT paper's ablation): the prompts are added to the patch tokens and the
sequence length does not change. Patch token n (0-based, time-major) gets prompt n mod p: the p
vectors are tiled along the token order, so with p = 1 one learned vector shifts every token.
Shallow adds once before block 0, deep before every selected block (the sums stay in the stream).
share "inter": one prompt set used by every prompted block (deep only).

Init: uniform(-v, v), v = sqrt(6 / (fan_in + D)), fan_in = in_chans * tubelet * patch * patch,
the fan-in of the Conv3d tubelet embedding. VPT's rule (KMnP/vpt) is the Xavier bound of the image
patch embedding, 3 * prod(patch_size) + D; the video embedding's fan-in includes the tubelet, so
VideoMAE ViT-B gets v = sqrt(6 / (1536 + 768)) = 0.051 (the image rule would give 0.0625).
Prompt dropout (default 0.0, KMnP/vpt MODEL.PROMPT.DROPOUT) acts on the prompt tokens in train mode.
Keys: `vpt.prompts`, shape (S, p, D); S = number of prompted blocks (deep, share "none"), else 1.

Inference for deep "prepend" prompts: a prompt token's output is dropped after its block, so it
only matters through its key and value in that block, and those come from norm1(prompt) alone
(prompts have no position embedding): they do not depend on the input. `precompute_prompt_kv`
computes them once per block and installs them as `Attention.kv_prefix`; the blocks then stop
inserting prompt tokens, giving the same logits while the prompts skip the qkv projection, the
attention queries and the MLP.
"""
from __future__ import annotations

import logging
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from videopeft.models.vit import Block, VideoViT

from .base import AdoptedBlock, link, resolve_layers
from .config import VPTConfig

__all__ = ["VPTConfig", "VisualPrompts", "PromptedBlock", "PromptKV", "PromptKVHandle",
           "apply_vpt", "precompute_prompt_kv", "prompt_init_bound"]

_log = logging.getLogger(__name__)


def prompt_init_bound(model: VideoViT) -> float:
    """v = sqrt(6 / (fan_in + D)) with fan_in = the tubelet embedding's (C * t * p * p)."""
    fan_in = model.patch_embed.proj.weight[0].numel()
    return math.sqrt(6.0 / (fan_in + model.embed_dim))


class VisualPrompts(nn.Module):
    """The learned prompt sets `prompts` (S, p, D); `tokens(i)` gives set i."""

    def __init__(self, num_sets: int, num_prompts: int, dim: int, bound: float, dropout: float = 0.0,
                 device: torch.device | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.num_prompts = num_prompts
        self.prompts = nn.Parameter(torch.empty(num_sets, num_prompts, dim, device=device, dtype=dtype))
        self.dropout = dropout
        nn.init.uniform_(self.prompts, -bound, bound)

    def tokens(self, index: int) -> torch.Tensor:
        """Set `index` as (p, D), with prompt dropout in train mode.

        A method, not `forward`: under no_grad a Parameter view still reports requires_grad, and
        module hooks such as FlopCounterMode's ModuleTracker fail on it.
        """
        return F.dropout(self.prompts[index], self.dropout, self.training)

    def adapter_params(self) -> list[str]:
        """The prompts train (AdapterModule)."""
        return ["prompts"]

    def extra_repr(self) -> str:
        return f"sets={self.prompts.shape[0]}, num_prompts={self.num_prompts}, dropout={self.dropout}"


class PromptedBlock(AdoptedBlock):
    """A Block (same submodules and keys) that inserts prompts before it runs and/or drops them after.

    `prompts` is the model's VisualPrompts, linked (not registered) so `vpt.prompts` is saved once.

    Deep "prepend" VPT between two prompted blocks would drop p tokens and insert p new ones, two
    copies of the whole sequence. Instead `apply_vpt` sets `next_set` on the first block: it
    writes the next block's prompts over its own prompt outputs (p rows, in place on the tensor
    it just made, so autograd and checkpointing see an ordinary op), and the next block has
    `slots_filled` and inserts nothing. Only the first prompted block concatenates; the last
    drops its prompts with a slice (a view when there is no class token).
    """

    def __init__(self, block: Block, prompts: VisualPrompts, index: int, *, insert: bool,
                 drop: bool, location: str, num_prefix_tokens: int) -> None:
        super().__init__(block)
        link(self, "prompts", prompts)
        self.index, self.insert, self.drop = index, insert, drop
        self.location, self.num_prefix_tokens = location, num_prefix_tokens
        self.use_kv_prefix = False  # set by PromptKVHandle: prompts come in through attn.kv_prefix
        self.slots_filled = False  # the input already holds this block's prompts (see above)
        self.next_set: int | None = None  # write this prompt set over the outputs, do not drop

    def _with_prompts(self, x: torch.Tensor) -> torch.Tensor:
        c, tokens = self.num_prefix_tokens, self.prompts.tokens(self.index)
        if self.location == "prepend":
            prompts = tokens.expand(x.shape[0], -1, -1).to(x.dtype)
            return torch.cat([prompts, x] if c == 0 else [x[:, :c], prompts, x[:, c:]], 1)
        n = x.shape[1] - c  # "add": prompt n mod p on patch token n
        tiled = tokens.repeat(math.ceil(n / tokens.shape[0]), 1)[:n].to(x.dtype)
        return x + (tiled if c == 0 else F.pad(tiled, (0, 0, c, 0)))

    def _without_prompts(self, x: torch.Tensor) -> torch.Tensor:
        c, p = self.num_prefix_tokens, self.prompts.num_prompts
        if self.next_set is not None:
            x[:, c:c + p] = self.prompts.tokens(self.next_set).to(x.dtype)
            return x
        return x[:, p:] if c == 0 else torch.cat([x[:, :c], x[:, c + p:]], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_kv_prefix:
            return super().forward(x)
        if self.insert and not self.slots_filled:
            x = self._with_prompts(x)
        x = super().forward(x)
        return self._without_prompts(x) if self.drop else x


def _hand_over_prompts(block: PromptedBlock, following: PromptedBlock) -> None:
    """`block` (deep "prepend", directly followed by `following`) writes the prompts of
    `following` into its prompt outputs (`next_set`) instead of dropping them for it to insert."""
    block.next_set = following.index
    following.slots_filled = True


def apply_vpt(model: VideoViT, cfg: VPTConfig) -> None:
    """Add `model.vpt` (the prompts, which train) and swap the prompted blocks for PromptedBlocks."""
    depth, prepend = len(model.blocks), cfg.location == "prepend"
    layers = resolve_layers(cfg.layers, depth) if cfg.deep else [0]
    num_sets = len(layers) if cfg.deep and cfg.share == "none" else 1
    ref = model.patch_embed.proj.weight
    model.vpt = VisualPrompts(num_sets, cfg.num_prompts, model.embed_dim, prompt_init_bound(model),
                              cfg.dropout, device=ref.device, dtype=ref.dtype)
    common = {"location": cfg.location, "num_prefix_tokens": model.num_prefix_tokens}
    if cfg.deep:
        for slot, i in enumerate(layers):
            model.blocks[i] = PromptedBlock(model.blocks[i], model.vpt, slot if num_sets > 1 else 0,
                                            insert=True, drop=prepend, **common)
        if prepend:
            for i, j in zip(layers, layers[1:]):
                if j == i + 1:
                    _hand_over_prompts(model.blocks[i], model.blocks[j])
    else:
        last = depth - 1
        model.blocks[0] = PromptedBlock(model.blocks[0], model.vpt, 0, insert=True,
                                        drop=prepend and last == 0, **common)
        if prepend and last > 0:
            model.blocks[last] = PromptedBlock(model.blocks[last], model.vpt, 0, insert=False,
                                               drop=True, **common)


# ----------------------------------------------------------------------------- inference mode

class PromptKV(nn.Module):
    """One block's prompt keys and values, (1, heads, p, head_dim) each, as an `Attention.kv_prefix`.

    Non-persistent buffers (never saved). Inference only: prompt dropout would make them stale.
    """

    def __init__(self, k: torch.Tensor, v: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("k", k, persistent=False)
        self.register_buffer("v", v, persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training:
            raise RuntimeError("precomputed VPT prompt keys/values are for eval mode; call "
                               "disable() on the handle from precompute_prompt_kv before training")
        return self.k, self.v


class PromptKVHandle:
    """Switches a deep-VPT model between inserting prompt tokens and attending to their
    precomputed keys/values (same logits, fewer FLOPs). `enable()` recomputes from the current
    prompts, so training in between cannot leave stale values."""

    def __init__(self, model: VideoViT) -> None:
        self.blocks = [b for b in model.blocks if isinstance(b, PromptedBlock)]
        eligible = bool(self.blocks) and all(
            b.insert and b.drop and b.location == "prepend" for b in self.blocks)
        if not eligible:
            raise ValueError("precompute_prompt_kv needs deep VPT with location 'prepend' (prompt "
                             "outputs dropped after every block); this model has none or a "
                             "shallow/'add' variant, whose prompts depend on the input")

    @torch.no_grad()
    def enable(self) -> None:
        """Compute every prompted block's prompt keys/values and stop inserting prompt tokens."""
        for block in self.blocks:
            raw = block.prompts.prompts[block.index][None]  # (1, p, D), no dropout: inference
            _, k, v = block.attn.project_qkv(block.norm1(raw))
            block.attn.kv_prefix = PromptKV(k.detach(), v.detach()).train(block.training)
            block.use_kv_prefix = True

    def disable(self) -> None:
        """Back to inserting prompt tokens (needed for training)."""
        for block in self.blocks:
            block.attn.kv_prefix = None
            block.use_kv_prefix = False


def precompute_prompt_kv(model: VideoViT) -> PromptKVHandle:
    """Install precomputed prompt keys/values in every prompted block (deep, prepend); return the
    handle whose `disable()`/`enable()` switch the mode off and on again."""
    handle = PromptKVHandle(model)
    handle.enable()
    _log.info("VPT: precomputed prompt keys/values for %d blocks", len(handle.blocks))
    return handle
