"""FLOPs of a video model, one definition for every report: measured, and analytical for VideoViT.

What is counted: the products, i.e. every matmul (linear layers, attention's q.k^T and attn.v) and
convolution (the tubelet embedding), with a multiply-add as 2 FLOPs. Elementwise work (norms,
softmax, activations, bias and residual adds) is not counted, as in the usual ViT figures.

* Forward FLOPs per view (`forward_flops`): one forward pass on one clip (1, C, T, H, W).
* Training FLOPs (`training_flops`): that forward plus the backward autograd runs for the model's
  trainable set. The backward of a product computes one product of the same size per operand that
  needs a gradient: the weight gradient of a trainable layer, the input gradient of any layer that
  something trainable lies before. Hence:
    - full fine-tuning: 3x forward, less the tubelet embedding's input gradient (the clip needs
      none): 2.99x for ViT-B 16x224;
    - a frozen backbone (PEFT): frozen linear layers after the first trainable parameter cost 2x
      (forward + input gradient, no weight gradient), attention's products 3x (both operands are
      activations), trainable layers 3x, and layers before the first trainable parameter 1x.
  Gradient-checkpointing recomputation is not model work and is not counted.

Why measured this way: `torch.utils.flop_counter.FlopCounterMode` counts a fused attention kernel
only when its torch version has a formula for it (torch 2.14's CPU flash-attention kernel is
counted as 0 FLOPs). During a count, every module with a `fused_attn` switch (VideoViT's and timm's
attention) takes its explicit softmax path and any other `scaled_dot_product_attention` call runs
under the math backend, so the counter sees plain batched matmuls, which every version counts; the
result is the same whatever kernel the model uses otherwise. PEFT modules (adapters, LoRA, prompts,
prefixes) are counted because they run. Counting happens on the meta device (shapes only: no
arithmetic, no memory, ViT-B in well under a second) through `torch.func.functional_call`, which
leaves the model's own tensors alone; a forward that needs values (boolean masking in masked
pre-training) is counted on the model's own device instead.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable, Iterator

import torch
import torch.nn as nn

__all__ = ["ClipShape", "Forward", "forward_flops", "training_flops", "vit_forward_flops",
           "explicit_attention"]

_log = logging.getLogger(__name__)

ClipShape = tuple[int, int, int, int]  # (C, T, H, W) of one clip
Forward = Callable[[nn.Module, torch.Tensor], Any]  # (model, clips) -> output; default model(clips)


@contextlib.contextmanager
def explicit_attention(model: nn.Module) -> Iterator[None]:
    """Within the block, attention runs as explicit matmuls: every `fused_attn` switch off and any
    remaining `scaled_dot_product_attention` on the math backend; the switches are restored."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    switched = [m for m in model.modules() if getattr(m, "fused_attn", None) is True]
    for m in switched:
        m.fused_attn = False
    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        for m in switched:
            m.fused_attn = True


class _Call(nn.Module):
    """`forward(model, x)` as a module, so functional_call can swap the model's tensors for it."""

    def __init__(self, model: nn.Module, forward: Forward | None) -> None:
        super().__init__()
        self.model, self.call = model, forward

    def forward(self, x: torch.Tensor) -> Any:
        return self.call(self.model, x) if self.call else self.model(x)


def _count(model: nn.Module, x: torch.Tensor, forward: Forward | None, *, backward: bool,
           on_meta: bool) -> int:
    """FlopCounterMode total over forward (+ backward) of `model` on `x`, attention explicit, in
    eval mode (no dropout, no checkpoint recomputation); on_meta: with meta stand-ins for every
    parameter and buffer (same shapes and requires_grad)."""
    from torch.func import functional_call
    from torch.utils.flop_counter import FlopCounterMode

    call = _Call(model, forward)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with explicit_attention(model), torch.set_grad_enabled(backward), counter:
            if on_meta:
                tensors = {n: torch.empty_like(t, device="meta").requires_grad_(
                    backward and t.requires_grad)
                    for n, t in [*call.named_parameters(), *call.named_buffers()]}
                out = functional_call(call, tensors, (x.to("meta"),))
                trainable = [t for t in tensors.values() if t.requires_grad]
            else:
                out = call(x)
                trainable = [p for p in call.parameters() if p.requires_grad]
            if backward and trainable and isinstance(out, torch.Tensor) and out.requires_grad:
                # gradients returned, not accumulated: the model's .grad stay untouched
                torch.autograd.grad(out.float().sum(), trainable, allow_unused=True)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def _measure(model: nn.Module, clip: ClipShape, batch: int, forward: Forward | None,
             backward: bool, device: torch.device | None) -> int:
    """Count on the meta device; a forward that needs values runs on `device` (default: where
    the model's first parameter lives)."""
    x = torch.zeros(batch, *clip, device="meta")
    try:
        return _count(model, x, forward, backward=backward, on_meta=True)
    except (NotImplementedError, RuntimeError) as err:  # e.g. .item() or masking on meta
        first = next(model.parameters(), None)
        device = device or (first.device if first is not None else torch.device("cpu"))
        _log.debug("FLOPs: counting on %s, not meta (%s)", device, str(err).splitlines()[0])
        return _count(model, torch.zeros(batch, *clip, device=device), forward,
                      backward=backward, on_meta=False)


def forward_flops(model: nn.Module, clip: ClipShape, *, batch: int = 1,
                  forward: Forward | None = None, device: torch.device | None = None) -> int:
    """Forward FLOPs (multiply-add = 2) of `model` on `batch` clips of shape `clip` (C, T, H, W).

    `forward(model, x)` replaces `model(x)` for models with another call signature; `device` is
    where to count when the forward cannot run on the meta device. See the module docstring.
    """
    return _measure(model, clip, batch, forward, False, device)


def training_flops(model: nn.Module, clip: ClipShape, *, batch: int = 1,
                   forward: Forward | None = None, device: torch.device | None = None) -> int:
    """Forward + backward FLOPs of one training step's model work on `batch` clips, for the
    model's current trainable set (requires_grad); the rule is in the module docstring."""
    return _measure(model, clip, batch, forward, True, device)


def vit_forward_flops(model: nn.Module, num_frames: int, img_size: int) -> int:
    """Analytical forward FLOPs of a plain VideoViT (no PEFT method) on one clip.

    In multiply-adds, with N tokens (patches + class token), width D and MLP width H:
    tubelet embedding patches * D * (C * t * p * p); per block qkv 3ND^2, q.k^T and attn.v
    2N^2 D, output projection ND^2, MLP 2NDH (12ND^2 + 2N^2 D for H = 4D); head D * classes.
    """
    d = model.embed_dim
    tokens = model.num_tokens(num_frames, img_size)
    patches = tokens - model.num_prefix_tokens
    hidden = model.blocks[0].mlp.fc1.out_features
    embed = patches * d * model.patch_embed.proj.weight[0].numel()
    block = 4 * tokens * d * d + 2 * tokens * tokens * d + 2 * tokens * d * hidden
    head = d * model.num_classes
    return 2 * (embed + len(model.blocks) * block + head)
