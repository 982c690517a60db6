"""VideoViT: the VideoMAE spatiotemporal vision transformer, with timm's key names.

Input is a batch of clips `(B, C, T, H, W)`. A Conv3d tubelet embedding turns it into tokens
`(B, N, D)` with N = T/tubelet * H/patch * W/patch in time-major order; a fixed sinusoid (or learned)
position table is added; pre-norm blocks follow; features are the mean over tokens through `fc_norm`
(VideoMAE's fine-tuning head) or the first token through `norm` (cls-token variant, used when an
image ViT with a class token is inflated).

State-dict keys follow the official VideoMAE fine-tune layout (`patch_embed.proj`, `blocks.i.attn.qkv`,
`blocks.i.attn.q_bias`, `blocks.i.mlp.fc1`, `fc_norm`, `head`), so official weights load without
renaming. Layer scale uses timm's `ls1.gamma` (the official `gamma_1` is renamed on load).
"""
from __future__ import annotations

import fnmatch
import math
import os
from functools import partial
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint
from einops import rearrange
from timm.layers import DropPath, LayerScale, Mlp, trunc_normal_, use_fused_attn

from videopeft.constants import GLOBAL_POOLS

from .archs import MODEL_ARCHS
from .checkpoints import load_pretrained
from .pos_embed import Grid, resample_pos_embed_3d, table_for_grid

__all__ = ["PatchEmbed3D", "Attention", "Block", "VideoViT", "create_model", "list_models"]

LayerNorm = partial(nn.LayerNorm, eps=1e-6)


class PatchEmbed3D(nn.Module):
    """Tubelet embedding: Conv3d with kernel = stride = (tubelet, patch, patch), then flatten."""

    def __init__(self, patch_size: int = 16, tubelet_size: int = 2, in_chans: int = 3,
                 embed_dim: int = 768) -> None:
        super().__init__()
        self.patch_size, self.tubelet_size = patch_size, tubelet_size
        k = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=k, stride=k)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Grid]:
        _, _, t, h, w = x.shape
        if t % self.tubelet_size or h % self.patch_size or w % self.patch_size:
            raise ValueError(f"clip of {t} frames and {h}x{w} px does not split into tubelets of "
                             f"{self.tubelet_size} frames x {self.patch_size}x{self.patch_size} px")
        x = self.proj(x)
        grid = tuple(x.shape[2:])
        # contiguous: a transposed view would give the whole residual stream that layout (every
        # residual add keeps it), so each LayerNorm and linear would copy it again
        return rearrange(x, "b d t h w -> b (t h w) d").contiguous(), grid


class Attention(nn.Module):
    """Multi-head self-attention with VideoMAE's q/v biases (the key has no bias).

    `kv_prefix` is an extension point: a module returning extra keys and values
    `(B or 1, heads, P, head_dim)` that every query also attends to (prefix tuning, VPT-deep's
    precomputed prompts). None means plain attention.
    """

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True,
                 attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.fused_attn = use_fused_attn()
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias, self.v_bias = None, None
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.kv_prefix: nn.Module | None = None
        self._qkv_bias_key: tuple | None = None  # what _qkv_bias_cache was built from
        self._qkv_bias_cache: torch.Tensor | None = None

    def qkv_bias(self) -> torch.Tensor | None:
        """The bias actually applied to qkv: concat(q_bias, 0, v_bias).

        While both biases are frozen the concatenation is kept and rebuilt only when a bias
        changes (load_state_dict, .to(), any in-place edit bumps its version); while one trains,
        or under torch.compile (which fuses it into the projection), it is built every call.
        """
        q, v = self.q_bias, self.v_bias
        if q is None or v is None:
            return None
        if (q.requires_grad or v.requires_grad or torch.compiler.is_compiling()
                or q.is_inference() or v.is_inference()):  # inference tensors have no version
            return torch.cat([q, torch.zeros_like(v), v])
        key = (q.data_ptr(), v.data_ptr(), q._version, v._version, q.dtype, q.device)
        if self._qkv_bias_key != key:
            with torch.inference_mode(False), torch.no_grad():
                self._qkv_bias_cache = torch.cat([q, torch.zeros_like(v), v])
            self._qkv_bias_key = key
        return self._qkv_bias_cache

    def project_qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tokens (B, N, D) -> q, k, v, each (B, heads, N, head_dim)."""
        bias = self.qkv_bias()
        if type(self.qkv) is nn.Linear:  # fast path; a wrapped qkv (LoRA) runs its own forward
            qkv = F.linear(x, self.qkv.weight, bias)
        else:
            qkv = self.qkv(x) if bias is None else self.qkv(x) + bias
        return rearrange(qkv, "b n (three h d) -> three b h n d", three=3, h=self.num_heads).unbind(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.project_qkv(x)
        if self.kv_prefix is not None:
            pk, pv = self.kv_prefix(x)
            k = torch.cat([pk.expand(x.shape[0], -1, -1, -1).to(k.dtype), k], dim=2)
            v = torch.cat([pv.expand(x.shape[0], -1, -1, -1).to(v.dtype), v], dim=2)
        drop = self.attn_drop if self.training else 0.0
        if self.fused_attn:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            attn = F.dropout(attn.softmax(dim=-1), p=drop)
            out = attn @ v
        out = rearrange(out, "b h n d -> b n (h d)")
        return self.proj_drop(self.proj(out))


class Block(nn.Module):
    """Pre-norm transformer block: x + DropPath(ls1 * attn(norm1 x)), then the same with the MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 init_values: float | None = None, drop_path: float = 0.0, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, norm_layer: Callable[[int], nn.Module] = LayerNorm,
                 act_layer: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop, proj_drop)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=proj_drop)
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x))))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


class VideoViT(nn.Module):
    """The VideoMAE ViT for clips (B, C, T, H, W); see the module docstring for the layout.

    Args:
        img_size: input height and width the position table is built for.
        patch_size: spatial patch size (16 in every released VideoMAE).
        num_frames: input frames the position table is built for.
        tubelet_size: frames per tubelet (2).
        num_classes: head outputs; 0 gives `head = Identity` (features only).
        embed_dim, depth, num_heads, mlp_ratio, qkv_bias: transformer shape (timm's names).
        init_values: layer-scale init; 0/None = no layer scale (the VideoMAE default).
        drop_rate: dropout before the head. attn_drop_rate: attention dropout.
        drop_path_rate: stochastic depth, linearly increasing over blocks.
        use_mean_pooling: mean over tokens + fc_norm (True) or first token + norm (False).
        class_token: prepend a learned cls token (image-ViT inflation).
        learnable_pos_embed: learned table (trunc-normal 0.02) instead of the fixed sinusoid.
        pos_source_grid: build the sinusoid table at this (T', H', W') grid and resample it in 3-D to
            the model's grid ("resample" policy); None regenerates it for the model's grid.
        init_scale: head weight and bias are multiplied by this after init (VideoMAE: 0.001).
        use_checkpoint: gradient checkpointing over blocks while training.
    """

    def __init__(self, *, img_size: int = 224, patch_size: int = 16, in_chans: int = 3,
                 num_classes: int = 400, num_frames: int = 16, tubelet_size: int = 2,
                 embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, init_values: float | None = 0.0,
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 use_mean_pooling: bool = True, class_token: bool = False,
                 learnable_pos_embed: bool = False, pos_source_grid: Grid | None = None,
                 init_scale: float = 0.001, use_checkpoint: bool = False) -> None:
        super().__init__()
        self.arch: dict[str, Any] = {k: v for k, v in locals().items()
                                     if k not in ("self", "__class__")}
        if img_size % patch_size or num_frames % tubelet_size:
            raise ValueError(f"img_size {img_size} / num_frames {num_frames} must be multiples of "
                             f"patch_size {patch_size} / tubelet_size {tubelet_size}")
        self.num_classes, self.embed_dim, self.num_features = num_classes, embed_dim, embed_dim
        self.num_prefix_tokens = 1 if class_token else 0
        self.grid: Grid = (num_frames // tubelet_size, img_size // patch_size, img_size // patch_size)
        self.pos_source_grid = tuple(pos_source_grid) if pos_source_grid else None
        self.grad_checkpointing = use_checkpoint
        self.use_mean_pooling = use_mean_pooling

        self.patch_embed = PatchEmbed3D(patch_size, tubelet_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if class_token else None
        if learnable_pos_embed:
            n = self.num_prefix_tokens + math.prod(self.grid)
            self.pos_embed = nn.Parameter(torch.zeros(1, n, embed_dim))
        else:  # fixed table: a non-persistent buffer, so it follows .to() but is never saved
            self.register_buffer("pos_embed", table_for_grid(embed_dim, self.grid,
                                                             self.pos_source_grid), persistent=False)
        self._tables: dict[tuple, torch.Tensor] = {}
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # meta-safe linspace
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, init_values, rates[i], attn_drop_rate)
            for i in range(depth)])
        self.norm = nn.Identity() if use_mean_pooling else LayerNorm(embed_dim)
        self.fc_norm = LayerNorm(embed_dim) if use_mean_pooling else nn.Identity()
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights(init_scale)

    # ------------------------------------------------------------------ init and switches
    def _init_weights(self, init_scale: float) -> None:
        if isinstance(self.pos_embed, nn.Parameter):
            trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if isinstance(self.head, nn.Linear):
            with torch.no_grad():
                self.head.weight.mul_(init_scale)
                self.head.bias.mul_(init_scale)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute block activations in backward to save memory (same gradients)."""
        self.grad_checkpointing = enable

    def set_fused_attn(self, enable: bool = True) -> None:
        """Switch every block between F.scaled_dot_product_attention and the explicit softmax path."""
        for blk in self.blocks:
            blk.attn.fused_attn = enable

    def set_pos_source_grid(self, source_grid: Grid | None) -> None:
        """Choose the sinusoid policy: regenerate for the model's grid (None) or resample from a grid."""
        if isinstance(self.pos_embed, nn.Parameter):
            raise ValueError("a learned position table is resampled on load, not regenerated")
        self.pos_source_grid = tuple(source_grid) if source_grid else None
        self.arch["pos_source_grid"] = self.pos_source_grid
        table = table_for_grid(self.embed_dim, self.grid, self.pos_source_grid)
        self.pos_embed = table.to(self.pos_embed.device)
        self._tables.clear()

    # ------------------------------------------------------------------ forward
    def position_table(self, grid: Grid) -> torch.Tensor:
        """The table for an input grid; the built one when it matches, else regenerated/resampled."""
        if tuple(grid) == self.grid:
            return self.pos_embed
        if isinstance(self.pos_embed, nn.Parameter):
            return resample_pos_embed_3d(self.pos_embed, self.grid, grid, self.num_prefix_tokens)
        key = (tuple(grid), self.pos_embed.device)
        if key not in self._tables:
            source = self.pos_source_grid
            if source is not None:  # keep the resample policy consistent at every input size
                self._tables[key] = resample_pos_embed_3d(
                    table_for_grid(self.embed_dim, source), source, grid).to(self.pos_embed.device)
            else:
                self._tables[key] = table_for_grid(self.embed_dim, grid).to(self.pos_embed.device)
        return self._tables[key]

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, Grid]:
        """Clips (B, C, T, H, W) -> tokens (B, P + N, D) with positions added, and the token grid."""
        x, grid = self.patch_embed(x)
        pos = self.position_table(grid).to(x.dtype)
        if self.cls_token is None:
            return x + pos, grid
        if pos.shape[1] == x.shape[1] + 1:  # learned table with a cls row
            cls = self.cls_token + pos[:, :1]
            return torch.cat([cls.expand(x.shape[0], -1, -1), x + pos[:, 1:]], dim=1), grid
        return torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x + pos], dim=1), grid

    def forward_blocks(self, x: torch.Tensor) -> torch.Tensor:
        """Run the transformer blocks over tokens (B, N, D)."""
        for blk in self.blocks:
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(blk, x, use_reentrant=False)
            else:
                x = blk(x)
        return x

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens (B, N, D) -> features (B, D): mean of the patch tokens + fc_norm, or first token."""
        x = self.norm(x)
        if self.use_mean_pooling:
            return self.fc_norm(x[:, self.num_prefix_tokens:].mean(dim=1))
        return x[:, 0]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Clips (B, C, T, H, W) -> pooled features (B, D)."""
        tokens, _ = self.embed(x)
        return self.pool(self.forward_blocks(tokens))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pooled features -> logits (or the features after head dropout with pre_logits)."""
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def num_tokens(self, num_frames: int, img_size: int | tuple[int, int]) -> int:
        """Tokens for an input of `num_frames` frames at `img_size` (patch tokens + prefix)."""
        h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
        p, t = self.patch_embed.patch_size, self.patch_embed.tubelet_size
        return self.num_prefix_tokens + (num_frames // t) * (h // p) * (w // p)


def list_models(filter: str | Sequence[str] = "", exclude_filters: str | Sequence[str] = ""
                ) -> list[str]:
    """Names accepted by `create_model`, sorted, like `timm.list_models`: `filter` and
    `exclude_filters` are fnmatch patterns (one or a list), e.g. `list_models("*base*")`."""
    def patterns(p: str | Sequence[str]) -> list[str]:
        return [p] if isinstance(p, str) else list(p)

    names = sorted(MODEL_ARCHS)
    if patterns(filter) != [""]:
        names = [n for n in names if any(fnmatch.fnmatch(n, f) for f in patterns(filter))]
    excluded = [f for f in patterns(exclude_filters) if f]
    return [n for n in names if not any(fnmatch.fnmatch(n, f) for f in excluded)]


def create_model(name: str, *, num_classes: int = 400, num_frames: int = 16, img_size: int = 224,
                 tubelet_size: int = 2, pretrained: bool | str | os.PathLike | None = None,
                 checkpoint_path: str | os.PathLike | None = None, global_pool: str | None = None,
                 **overrides: Any) -> VideoViT:
    """Build a VideoViT variant by name; caller kwargs (timm's names) override the variant's.

    timm's usual kwargs work: `num_classes` (0 = no head; default 400, Kinetics-400),
    `drop_rate`, `drop_path_rate`, `global_pool` ("avg" | "token": constants.GLOBAL_POOLS), and
    `pretrained` / `checkpoint_path`: a path (file or HF folder) is loaded by `load_pretrained`
    and its report logged. `pretrained=True` (timm's "download the default weights") is refused:
    videopeft ships no weights, pass the checkpoint's path.
    """
    if name not in MODEL_ARCHS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(list_models())}")
    if pretrained is True:
        raise ValueError(f"create_model({name!r}, pretrained=True): videopeft has no default "
                         f"weights to download; pass pretrained=PATH (a VideoMAE .pth/.bin/"
                         f".safetensors file or an HF folder)")
    if global_pool is not None:
        if global_pool not in GLOBAL_POOLS:
            raise ValueError(f"global_pool: expected one of {list(GLOBAL_POOLS)}, got "
                             f"{global_pool!r} (no pooling: use forward_blocks for the tokens)")
        # "avg" = mean of the patch tokens + fc_norm (VideoMAE fine-tuning), "token" = the first
        # token + norm (the class token when class_token=True, else the first patch token, like
        # HF VideoMAE with use_mean_pooling=False). "" (timm's no pooling) is refused, since
        # forward_features always pools: model.forward_blocks(model.embed(x)[0]) gives the tokens.
        pool = global_pool == "avg"
        if overrides.setdefault("use_mean_pooling", pool) != pool:
            raise ValueError(f"global_pool={global_pool!r} contradicts use_mean_pooling="
                             f"{overrides['use_mean_pooling']!r}")
    kwargs = {**MODEL_ARCHS[name], **overrides}
    model = VideoViT(num_classes=num_classes, num_frames=num_frames, img_size=img_size,
                     tubelet_size=tubelet_size, **kwargs)
    model.arch["name"] = name
    weights = checkpoint_path or (pretrained if pretrained not in (None, False) else None)
    if weights:
        load_pretrained(model, weights)
    return model
