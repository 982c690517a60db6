"""VideoMAE masked pre-training: tube masking, a narrow decoder and the normalised-pixel loss.

The module names reproduce the official pre-train checkpoint keys
(MCG-NJU/VideoMAE:modeling_pretrain.py):
`encoder.patch_embed.proj.*`, `encoder.blocks.i.*`, `encoder.norm.*`, `encoder_to_decoder.weight`,
`mask_token`, `decoder.blocks.j.*`, `decoder.norm.*`, `decoder.head.*`. Both position tables are
non-persistent, so `{'model': model.state_dict()}` loads into a fine-tune VideoViT through
`load_pretrained` (layout "official_pretrain") exactly like an official checkpoint.

The encoder sees only the visible tokens; the decoder sees [visible tokens projected to its width +
their positions, mask_token + the masked positions] and predicts the masked tubelets' pixels.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint
from einops import rearrange
from timm.layers import trunc_normal_

from videopeft.constants import IMAGENET_MEAN, IMAGENET_STD

from .archs import DECODER_ARCHS
from .pos_embed import Grid, sinusoid_table
from .vit import Block, LayerNorm, VideoViT, create_model

__all__ = ["tube_mask", "masked_per_slice", "mask_indices", "take_tokens", "patchify",
           "unpatchify", "PretrainDecoder", "PretrainVideoMAE", "create_pretrain_model"]

# added to the std, not the variance (MCG-NJU/VideoMAE:engine_for_pretraining.py)
_TARGET_EPS = 1e-6


def tube_mask(batch: int, grid: Grid, ratio: float,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Tube masking: one random spatial mask per sample, the same for every time slice.

    Each slice has int(ratio * H' * W') masked tokens. Returns bool (B, T'*H'*W'), True = masked,
    flattened time-major like the tokens.
    """
    t, h, w = grid
    per_slice = h * w
    num_masked = masked_per_slice(grid, ratio)
    if not 0 < num_masked < per_slice:
        raise ValueError(f"mask ratio {ratio} masks {num_masked} of {per_slice} tokens per slice; "
                         f"need at least one masked and one visible")
    order = torch.rand(batch, per_slice, generator=generator).argsort(dim=1)
    spatial = torch.zeros(batch, per_slice, dtype=torch.bool)
    spatial.scatter_(1, order[:, :num_masked], True)
    return spatial.unsqueeze(1).expand(batch, t, per_slice).reshape(batch, t * per_slice)


def masked_per_slice(grid: Grid, ratio: float) -> int:
    """Tokens `tube_mask` masks in each time slice of `grid`; a clip has grid[0] times as many."""
    return int(ratio * grid[1] * grid[2])


def patchify(clips: torch.Tensor, tubelet: int, patch: int) -> torch.Tensor:
    """Clips (B, C, T, H, W) -> tubelet pixels (B, N, tubelet*p*p, C), tokens time-major."""
    return rearrange(clips, "b c (t p0) (h p1) (w p2) -> b (t h w) (p0 p1 p2) c",
                     p0=tubelet, p1=patch, p2=patch)


def unpatchify(patches: torch.Tensor, grid: Grid, tubelet: int, patch: int) -> torch.Tensor:
    """Inverse of `patchify`: (B, N, tubelet*p*p, C) -> (B, C, T, H, W)."""
    t, h, w = grid
    return rearrange(patches, "b (t h w) (p0 p1 p2) c -> b c (t p0) (h p1) (w p2)",
                     t=t, h=h, w=w, p0=tubelet, p1=patch, p2=patch)


class PretrainDecoder(nn.Module):
    """Transformer blocks + LayerNorm + linear head to tubelet pixels, for the last tokens only."""

    def __init__(self, dim: int, depth: int, num_heads: int, out_dim: int, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, init_values: float | None = None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([Block(dim, num_heads, mlp_ratio, qkv_bias, init_values)
                                     for _ in range(depth)])
        self.norm = LayerNorm(dim)
        self.head = nn.Linear(dim, out_dim)
        self.grad_checkpointing = False

    def forward(self, x: torch.Tensor, num_predicted: int) -> torch.Tensor:
        """Tokens (B, N, Dd) -> predictions (B, num_predicted, out_dim) for the last tokens."""
        for blk in self.blocks:
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(blk, x, use_reentrant=False)
            else:
                x = blk(x)
        return self.head(self.norm(x[:, -num_predicted:]))


class PretrainVideoMAE(nn.Module):
    """VideoMAE masked autoencoder around a VideoViT encoder (official pre-train key layout).

    Args:
        encoder: VideoViT with num_classes=0, use_mean_pooling=False (a real `norm`), no cls
            token.
        decoder_dim, decoder_depth, decoder_heads: decoder width, blocks and heads.
        normalize_target: per-tubelet, per-channel normalised pixel targets (VideoMAE default).
        mean, std: the input normalisation, undone to get [0, 1] pixels for the target.
    """

    def __init__(self, encoder: VideoViT, decoder_dim: int = 192, decoder_depth: int = 4,
                 decoder_heads: int = 3, normalize_target: bool = True,
                 mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD,
                 ) -> None:
        super().__init__()
        if encoder.cls_token is not None or encoder.use_mean_pooling \
                or not isinstance(encoder.head, nn.Identity):
            raise ValueError("the pre-training encoder needs num_classes=0, use_mean_pooling=False "
                             "and no class token")
        self.encoder = encoder
        self.tubelet = encoder.patch_embed.tubelet_size
        self.patch = encoder.patch_embed.patch_size
        in_chans = encoder.patch_embed.proj.in_channels
        self.normalize_target, self.decoder_heads = normalize_target, decoder_heads
        self.encoder_to_decoder = nn.Linear(encoder.embed_dim, decoder_dim, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder = PretrainDecoder(decoder_dim, decoder_depth, decoder_heads,
                                       out_dim=self.tubelet * self.patch ** 2 * in_chans)
        self.register_buffer("decoder_pos_embed",
                             sinusoid_table(math.prod(encoder.grid), decoder_dim), persistent=False)
        for name, value in (("pixel_mean", mean), ("pixel_std", std)):
            self.register_buffer(name, torch.tensor(value).view(1, -1, 1, 1, 1), persistent=False)
        self._init_weights()

    @property
    def arch(self) -> dict[str, Any]:
        """The encoder's build arguments plus the decoder's, written by `save_pretrained`."""
        dec = self.decoder
        return {**self.encoder.arch, "decoder_dim": self.mask_token.shape[-1],
                "decoder_depth": len(dec.blocks), "decoder_heads": self.decoder_heads,
                "normalize_target": self.normalize_target}

    def _init_weights(self) -> None:
        """Official pre-train init: xavier-uniform linears, zero biases, unit LayerNorms."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        trunc_normal_(self.mask_token, std=0.02)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute encoder and decoder block activations in backward (same gradients)."""
        self.encoder.set_grad_checkpointing(enable)
        self.decoder.grad_checkpointing = enable

    def decoder_table(self, grid: Grid) -> torch.Tensor:
        """Decoder position table (1, N, Dd) for a token grid (regenerated when it differs)."""
        if tuple(grid) == tuple(self.encoder.grid):
            return self.decoder_pos_embed
        table = sinusoid_table(math.prod(grid), self.decoder_pos_embed.shape[-1])
        return table.to(self.decoder_pos_embed.device)

    def predict(self, clips: torch.Tensor, mask: torch.Tensor,
                num_masked: int | None = None) -> torch.Tensor:
        """Clips (B, C, T, H, W) and mask (B, N) -> predictions (B, N_masked, tubelet*p*p*C).

        Masked tokens come out in their token order; the last axis is pixels with channel fastest.
        `num_masked`: the masked count per sample when the caller knows it (the training task
        does): a mask on the GPU is then checked there without a host sync (see `mask_indices`).
        """
        visible, masked = mask_indices(mask, clips.shape[0], self.num_tokens(clips), num_masked)
        return self._predict(clips, visible, masked)

    def num_tokens(self, clips: torch.Tensor) -> int:
        """Tokens of a clip batch (B, C, T, H, W): T/tubelet * H/patch * W/patch."""
        t, h, w = clips.shape[2:]
        return (t // self.tubelet) * (h // self.patch) * (w // self.patch)

    def _predict(self, clips: torch.Tensor, visible: torch.Tensor,
                 masked: torch.Tensor) -> torch.Tensor:
        """`predict` from the visible and masked token indices (B, N_visible), (B, N_masked)."""
        tokens, grid = self.encoder.embed(clips)
        x = self.encoder_to_decoder(self.encoder.norm(self.encoder.forward_blocks(
            take_tokens(tokens, visible))))
        pos = self.decoder_table(grid).to(x.dtype).expand(tokens.shape[0], -1, -1)
        x = torch.cat([x + take_tokens(pos, visible),
                       self.mask_token.to(x.dtype) + take_tokens(pos, masked)], dim=1)
        return self.decoder(x, masked.shape[1])

    def _pixels(self, clips: torch.Tensor) -> torch.Tensor:
        """Normalised clips -> [0, 1] tubelet pixels (B, N, tubelet*p*p, C)."""
        return patchify(clips.float() * self.pixel_std + self.pixel_mean, self.tubelet, self.patch)

    @torch.no_grad()
    def target(self, clips: torch.Tensor) -> torch.Tensor:
        """The regression target (B, N, tubelet*p*p*C): [0, 1] pixels, normalised per tubelet and
        channel with the unbiased std (+1e-6) when `normalize_target`, channel fastest."""
        pixels = self._pixels(clips)
        if self.normalize_target:
            mean = pixels.mean(dim=-2, keepdim=True)
            std = pixels.var(dim=-2, unbiased=True, keepdim=True).sqrt()
            pixels = (pixels - mean) / (std + _TARGET_EPS)
        return rearrange(pixels, "b n p c -> b n (p c)")

    def forward(self, clips: torch.Tensor, mask: torch.Tensor,
                num_masked: int | None = None) -> torch.Tensor:
        """Mean squared error over the masked tokens only (`num_masked`: see `predict`)."""
        visible, masked = mask_indices(mask, clips.shape[0], self.num_tokens(clips), num_masked)
        pred = self._predict(clips, visible, masked)
        return F.mse_loss(pred.float(), take_tokens(self.target(clips), masked))

    @torch.no_grad()
    def reconstruct(self, clips: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """For visualisation: clips in [0, 1] pixels (B, C, T, H, W), masked tubelets predicted.

        Normalised predictions are mapped back with the true tubelet's mean and std, as the
        official visualisation script does (the model never predicts those two statistics).
        """
        b, c = clips.shape[:2]
        pred = rearrange(self.predict(clips, mask).float(), "b n (p c) -> b n p c", c=c)
        pixels = self._pixels(clips)
        masked = pixels[mask].reshape(pred.shape)
        if self.normalize_target:
            std = masked.var(dim=-2, unbiased=True, keepdim=True).sqrt() + _TARGET_EPS
            pred = pred * std + masked.mean(dim=-2, keepdim=True)
        out = pixels.clone()
        out[mask] = pred.reshape(-1, *pred.shape[2:])
        grid = (clips.shape[2] // self.tubelet, clips.shape[3] // self.patch,
                clips.shape[4] // self.patch)
        return unpatchify(out, grid, self.tubelet, self.patch)


def _check_mask(mask: torch.Tensor, batch: int, num_tokens: int) -> int:
    """Validate a (B, N) bool mask with the same masked count per sample; return that count.

    Reads the mask's values: free for a CPU mask, one host sync for a mask on the GPU."""
    _check_mask_shape(mask, batch, num_tokens)
    counts = mask.sum(dim=1)
    if not bool((counts == counts[0]).all()):
        raise ValueError(f"every sample must mask the same number of tokens, got {counts.tolist()}")
    return int(counts[0])


def _check_mask_shape(mask: torch.Tensor, batch: int, num_tokens: int) -> None:
    if mask.dtype != torch.bool or tuple(mask.shape) != (batch, num_tokens):
        raise ValueError(f"mask must be bool of shape ({batch}, {num_tokens}), got "
                         f"{mask.dtype} {tuple(mask.shape)}")


def mask_indices(mask: torch.Tensor, batch: int, num_tokens: int,
                 num_masked: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The visible and the masked token indices of a (B, N) bool mask, (B, N - M) and (B, M),
    each in token order (what boolean indexing would pick, without its data-dependent shape).

    Without `num_masked` the mask is checked by `_check_mask` (a host sync for a GPU mask). With
    it, the equal-count check runs on the mask's device without stopping the host
    (`torch._assert_async`: on a CPU it raises at once, on a GPU the next sync fails).
    """
    _check_mask_shape(mask, batch, num_tokens)
    if num_masked is None:
        num_masked = _check_mask(mask, batch, num_tokens)
    else:
        torch._assert_async((mask.sum(dim=1) == num_masked).all(),
                            "every sample must mask num_masked tokens")
    order = mask.to(torch.uint8).argsort(dim=1, stable=True)  # visible (0) first, then masked
    return order[:, :num_tokens - num_masked], order[:, num_tokens - num_masked:]


def take_tokens(tokens: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Tokens (B, N, D) at per-sample indices (B, K) -> (B, K, D)."""
    return tokens.gather(1, index.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


def create_pretrain_model(name: str, *, num_frames: int = 16, img_size: int = 224,
                          patch_size: int = 16, tubelet_size: int = 2,
                          decoder_dim: int | None = None, decoder_depth: int | None = None,
                          decoder_heads: int | None = None, normalize_target: bool = True,
                          **overrides: Any) -> PretrainVideoMAE:
    """Build the masked autoencoder for a VideoViT variant; decoder sizes default per variant."""
    if name not in DECODER_ARCHS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(DECODER_ARCHS)}")
    encoder = create_model(name, num_classes=0, num_frames=num_frames, img_size=img_size,
                           tubelet_size=tubelet_size, patch_size=patch_size,
                           use_mean_pooling=False, **overrides)
    given = dict(decoder_dim=decoder_dim, decoder_depth=decoder_depth, decoder_heads=decoder_heads)
    dec = {**DECODER_ARCHS[name], **{k: v for k, v in given.items() if v is not None}}
    return PretrainVideoMAE(encoder, normalize_target=normalize_target, **dec)
