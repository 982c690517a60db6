"""Classification metrics for multi-view video evaluation.

A video is scored from V views (temporal clips x spatial crops). Each view gives a logit vector;
the views are *fused* into one score vector per video by an explicit rule:

- ``softmax_mean`` (default, VideoMAE since 2022-08): mean over views of softmax(logits);
- ``logit_mean`` (VideoMAE v1 and AdaptFormer): mean over views of the raw logits;
- ``max``: for each class, the max over views of softmax(logits).

Clip-level accuracy scores every view on its own; video-level accuracy scores the fused vector.
Accuracies are percentages. All functions take CPU or GPU tensors and return Python numbers.
"""
from __future__ import annotations

import torch

from videopeft.constants import FUSIONS, Fusion

__all__ = ["fuse_views", "fused_probabilities", "topk_correct", "topk_accuracy", "clip_accuracy",
           "video_accuracy", "per_class_top1", "confusion_matrix", "summarize"]


def fuse_views(logits: torch.Tensor, rule: Fusion = "softmax_mean") -> torch.Tensor:
    """Fuse per-view logits (N, V, K) into per-video scores (N, K) with `rule` (see module doc)."""
    if logits.dim() != 3:
        raise ValueError(f"expected logits of shape (videos, views, classes), got {tuple(logits.shape)}")
    logits = logits.float()
    if rule == "softmax_mean":
        return logits.softmax(dim=-1).mean(dim=1)
    if rule == "logit_mean":
        return logits.mean(dim=1)
    if rule == "max":
        return logits.softmax(dim=-1).amax(dim=1)
    raise ValueError(f"unknown fusion {rule!r}; choose from {', '.join(FUSIONS)}")


def fused_probabilities(logits: torch.Tensor, rule: Fusion = "softmax_mean") -> torch.Tensor:
    """Per-video class probabilities (N, K) from per-view logits (N, V, K): the fused scores,
    with a softmax over the mean logits for ``logit_mean`` (same ranking). ``max`` gives each
    class its largest view probability, so its rows need not sum to 1."""
    scores = fuse_views(logits, rule)
    return scores.softmax(dim=-1) if rule == "logit_mean" else scores


def topk_correct(scores: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean (N,): is the label among the k highest scores? k is capped at the class count.

    Ties are broken by `torch.topk` (lowest index first on CPU), the same for every caller.
    """
    k = min(k, scores.shape[-1])
    top = scores.topk(k, dim=-1).indices
    return (top == labels.view(-1, 1)).any(dim=-1)


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)
                  ) -> list[float]:
    """Percent of rows whose label is in the top-k scores, for each k in `ks` (0.0 for no rows)."""
    if scores.shape[0] == 0:
        return [0.0 for _ in ks]
    return [100.0 * topk_correct(scores, labels, k).double().mean().item() for k in ks]


def clip_accuracy(logits: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)
                  ) -> list[float]:
    """Top-k over every view of every video scored on its own: logits (N, V, K), labels (N,)."""
    n, v, k = logits.shape
    return topk_accuracy(logits.reshape(n * v, k), labels.repeat_interleave(v), ks)


def video_accuracy(logits: torch.Tensor, labels: torch.Tensor, rule: Fusion = "softmax_mean",
                   ks: tuple[int, ...] = (1, 5)) -> list[float]:
    """Top-k of the fused per-video scores: logits (N, V, K), labels (N,)."""
    return topk_accuracy(fuse_views(logits, rule), labels, ks)


def per_class_top1(scores: torch.Tensor, labels: torch.Tensor, class_names: list[str]
                   ) -> dict[str, float]:
    """Top-1 percent per class over the videos of that class; classes without videos are left out."""
    correct = topk_correct(scores, labels, 1)
    out = {}
    for c, name in enumerate(class_names):
        mine = labels == c
        if mine.any():
            out[name] = 100.0 * correct[mine].double().mean().item()
    return out


def confusion_matrix(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) int64 counts; row = true class, column = predicted class."""
    flat = labels.long() * num_classes + pred.long()
    return torch.bincount(flat.cpu(), minlength=num_classes * num_classes).view(num_classes,
                                                                                num_classes)


def summarize(logits: torch.Tensor, labels: torch.Tensor, class_names: list[str],
              rule: Fusion = "softmax_mean") -> dict:
    """Every metric of one evaluation: clip/video top-1/top-5, per-class top-1, confusion matrix.

    `logits` (N, V, K) are the views of the N scored (decodable) videos, `labels` (N,).
    """
    labels = labels.long().cpu()
    logits = logits.float().cpu()
    scores = fuse_views(logits, rule) if len(logits) else torch.zeros(0, len(class_names))
    clip1, clip5 = clip_accuracy(logits, labels) if len(logits) else (0.0, 0.0)
    vid1, vid5 = topk_accuracy(scores, labels)
    pred = scores.argmax(dim=-1) if len(scores) else torch.zeros(0, dtype=torch.long)
    return {
        "clip_top1": clip1, "clip_top5": clip5, "video_top1": vid1, "video_top5": vid5,
        "per_class_top1": per_class_top1(scores, labels, class_names),
        "confusion": confusion_matrix(pred, labels, len(class_names)),
        "scores": scores, "pred": pred,
    }
