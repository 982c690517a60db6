"""Video data: decode -> sample -> transform, dataset readers, bad-video manifest, synthetic set.

    frames = decode("a.webm", [0, 4, 4, 8])            # uint8 (T, H, W, C), exactly those frames
    idx = sample_segments(count_frames("a.webm"), 16, train=True)
    clip = build_train_transform(cfg)(decode("a.webm", idx))   # float (C, T, H, W)
    dataset, classes = build_dataset(cfg, "train", train=True, manifest=Manifest())
"""
from videopeft.data.datasets import (
    CheckResult,
    EvalVideoDataset,
    TrainClipDataset,
    VideoRecord,
    build_dataset,
    check_videos,
    clip_indices,
    eval_collate,
    read_annotations,
)
from videopeft.data.decoders import (
    DecodeError,
    Video,
    available_backends,
    count_frames,
    decode,
    open_video,
)
from videopeft.data.manifest import Manifest
from videopeft.data.sampling import frames_for_study, sample_dense, sample_segments
from videopeft.data.transforms import (
    EvalTransform,
    TrainTransform,
    build_eval_transform,
    build_train_transform,
)

__all__ = [
    "decode", "count_frames", "DecodeError", "open_video", "Video", "available_backends",
    "sample_segments", "sample_dense", "frames_for_study",
    "build_train_transform", "build_eval_transform", "TrainTransform", "EvalTransform",
    "read_annotations", "VideoRecord", "TrainClipDataset", "EvalVideoDataset", "eval_collate",
    "build_dataset", "clip_indices", "check_videos", "CheckResult", "Manifest",
]
