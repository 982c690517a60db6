"""HF transformers VideoMAE of the same size as a videopeft arch, with an optional AdaptMLP twin.

The comparison baseline for the backbone and training benchmarks. The adapter is written here,
independently of videopeft's code: AdaptFormer's parallel bottleneck (down -> ReLU -> up, x scale,
up-projection zero-initialised) reads the residual stream after attention and is added to the
MLP branch's output. HF's `VideoMAEOutput.forward(hidden, input_tensor)` returns
`dense(hidden) + input_tensor`, where `input_tensor` is exactly that stream, so wrapping each
layer's `output` module places the adapter where AdaptFormer does.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from videopeft.models.archs import MODEL_ARCHS


def hf_videomae(arch: str, *, frames: int, size: int, num_classes: int, impl: str) -> nn.Module:
    """`transformers.VideoMAEForVideoClassification` shaped like videopeft's `arch`, attention
    implementation `impl` ("eager" | "sdpa"), layer-norm eps 1e-6 everywhere like VideoMAE's."""
    import transformers  # optional: only the comparison needs it

    a = {"mlp_ratio": 4.0, **MODEL_ARCHS[arch]}
    cfg = transformers.VideoMAEConfig(
        image_size=size, patch_size=16, num_frames=frames, tubelet_size=2,
        hidden_size=a["embed_dim"], num_hidden_layers=a["depth"],
        num_attention_heads=a["num_heads"], intermediate_size=int(a["embed_dim"] * a["mlp_ratio"]),
        num_labels=num_classes, layer_norm_eps=1e-6, use_mean_pooling=True,
        attn_implementation=impl)
    model = transformers.VideoMAEForVideoClassification(cfg)
    model.fc_norm.eps = 1e-6
    return model


class Bottleneck(nn.Module):
    """scale * up(relu(down(x))); the up-projection starts at zero, so the branch adds nothing."""

    def __init__(self, dim: int, bottleneck: int, scale: float) -> None:
        super().__init__()
        self.down = nn.Linear(dim, bottleneck)
        self.up = nn.Linear(bottleneck, dim)
        self.scale = scale
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(torch.relu(self.down(x))) * self.scale


class ParallelAdapterOutput(nn.Module):
    """HF's MLP output module (dense + residual) plus the bottleneck on the residual stream."""

    def __init__(self, output: nn.Module, adapter: Bottleneck) -> None:
        super().__init__()
        self.output = output
        self.adapter = adapter

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        return self.output(hidden_states, input_tensor) + self.adapter(input_tensor)


def add_parallel_adapters(model: nn.Module, bottleneck: int = 64, scale: float = 0.1) -> int:
    """Put a `ParallelAdapterOutput` in every layer, then train only the adapters, fc_norm and
    the classifier (AdaptFormer's trainable set); returns the number of trainable parameters."""
    for layer in model.videomae.encoder.layer:
        dim = layer.output.dense.out_features
        layer.output = ParallelAdapterOutput(layer.output, Bottleneck(dim, bottleneck, scale))
    for name, p in model.named_parameters():
        p.requires_grad = (".adapter." in name or name.startswith(("fc_norm.", "classifier.")))
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
