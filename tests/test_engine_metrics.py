"""Fusion rules and accuracy metrics on hand-made logits with hand-computed expectations.

Video A (label 0) has three views that disagree: their arg-maxes are 0, 2 and 1, and each fusion
rule picks a different class. Video B (label 2) has three views that agree.

Softmaxes of A's views, by hand (e = Euler's number):
    v1 = [0, -2, -1]: [1, e^-2, e^-1] / 1.503214          = [0.665241, 0.090031, 0.244728]
    v2 = [1,  0,  3]: [e, 1, e^3] / 23.803340             = [0.114195, 0.042010, 0.843795]
    v3 = [-1, 1, -3]: [e^-1, e, e^-3] / 3.135950          = [0.117310, 0.866813, 0.015876]
    logit_mean   = [0, -1/3, -1/3]                          -> class 0 (right)
    softmax_mean = [0.298916, 0.332951, 0.368133]           -> class 2
    max          = [0.665241, 0.866813, 0.843795]           -> class 1
"""
from __future__ import annotations

import pytest
import torch

from videopeft.engine import metrics as M

A_VIEWS = [[0.0, -2.0, -1.0], [1.0, 0.0, 3.0], [-1.0, 1.0, -3.0]]
B_VIEWS = [[0.0, 0.0, 2.0], [0.0, 1.0, 3.0], [1.0, 0.0, 2.0]]
CLASSES = ["a", "b", "c"]


@pytest.fixture
def logits() -> torch.Tensor:
    return torch.tensor([A_VIEWS, B_VIEWS])  # (videos 2, views 3, classes 3)


@pytest.fixture
def labels() -> torch.Tensor:
    return torch.tensor([0, 2])


@pytest.mark.parametrize("rule, expected", [
    ("logit_mean", [0.0, -1 / 3, -1 / 3]),
    ("softmax_mean", [0.298916, 0.332951, 0.368133]),
    ("max", [0.665241, 0.866813, 0.843795]),
])
def test_each_fusion_rule_matches_the_hand_computed_scores(logits, rule, expected):
    fused = M.fuse_views(logits, rule)
    torch.testing.assert_close(fused[0], torch.tensor(expected), atol=1e-6, rtol=0)


@pytest.mark.parametrize("rule, pred_a", [("logit_mean", 0), ("softmax_mean", 2), ("max", 1)])
def test_views_that_disagree_give_a_different_prediction_per_rule(logits, rule, pred_a):
    assert M.fuse_views(logits, rule).argmax(-1).tolist() == [pred_a, 2]


@pytest.mark.parametrize("rule, top1", [("logit_mean", 100.0), ("softmax_mean", 50.0),
                                        ("max", 50.0)])
def test_video_top1_scores_the_fused_vector(logits, labels, rule, top1):
    assert M.video_accuracy(logits, labels, rule, ks=(1,)) == [top1]


def test_clip_accuracy_scores_every_view_on_its_own(logits, labels):
    # A: views predict 0, 2, 1 (1 of 3 right); B: 2, 2, 2 (3 of 3) -> 4 / 6
    top1, top2 = M.clip_accuracy(logits, labels, ks=(1, 2))
    assert top1 == pytest.approx(400 / 6)
    # top-2 of A's views: {0, 2}, {2, 0}, {1, 0} all hold 0; B's all hold 2
    assert top2 == 100.0


def test_top_k_is_capped_at_the_number_of_classes(logits, labels):
    assert M.video_accuracy(logits, labels, "softmax_mean", ks=(1, 5)) == [50.0, 100.0]


def test_top2_of_the_disagreeing_video(logits, labels):
    # softmax_mean ranks A as 2, 1, 0 and max as 1, 2, 0: the label 0 is third for both
    assert M.video_accuracy(logits, labels, "softmax_mean", ks=(2,)) == [50.0]
    assert M.video_accuracy(logits, labels, "max", ks=(2,)) == [50.0]
    assert M.video_accuracy(logits, labels, "logit_mean", ks=(2,)) == [100.0]


def test_per_class_top1_leaves_out_classes_without_videos(logits, labels):
    scores = M.fuse_views(logits, "softmax_mean")
    assert M.per_class_top1(scores, labels, CLASSES) == {"a": 0.0, "c": 100.0}


def test_confusion_matrix_rows_are_true_classes():
    pred, true = torch.tensor([2, 2, 0, 1]), torch.tensor([0, 2, 0, 1])
    expected = torch.tensor([[1, 0, 1], [0, 1, 0], [0, 0, 1]])
    assert torch.equal(M.confusion_matrix(pred, true, 3), expected)


def test_summarize_collects_every_metric(logits, labels):
    s = M.summarize(logits, labels, CLASSES, "max")
    assert s["video_top1"] == 50.0 and s["video_top5"] == 100.0
    assert s["clip_top1"] == pytest.approx(400 / 6) and s["clip_top5"] == 100.0
    assert s["per_class_top1"] == {"a": 0.0, "c": 100.0}
    assert s["pred"].tolist() == [1, 2]
    assert s["confusion"].tolist() == [[0, 1, 0], [0, 0, 0], [0, 0, 1]]


def test_summarize_of_no_videos_is_zero_not_an_error():
    s = M.summarize(torch.zeros(0, 2, 3), torch.zeros(0, dtype=torch.long), CLASSES)
    assert (s["video_top1"], s["clip_top1"], s["per_class_top1"]) == (0.0, 0.0, {})


def test_unknown_fusion_rule_is_refused(logits):
    with pytest.raises(ValueError, match="unknown fusion 'median'"):
        M.fuse_views(logits, "median")
