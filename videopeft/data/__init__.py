"""Video data: decode -> sample -> transform, annotation readers, datasets, bad-video manifest.

    frames = decode("a.webm", [0, 4, 4, 8])            # uint8 (T, H, W, C), exactly those frames
    idx = sample_segments(count_frames("a.webm"), 16, train=True)
    clip = build_train_transform(cfg)(decode("a.webm", idx))   # float (C, T, H, W)
    dataset, classes = build_dataset(cfg, "train", train=True, manifest=Manifest())

Modules: decoders, sampling, transforms (the worker pipeline, and the worker half of device
augmentation), randaugment (timm's RandAugment in both modes), device_augment (the device half),
transfer (crops from the workers to the device), annotations (readers and the layouts' file
names), datasets, preflight (data checks before a run), check (`check_videos`), manifest,
synthetic (generated benchmarks).
Names load on first use (see `videopeft._lazy`).
"""
from videopeft._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    ".decoders": ["Video", "available_backends", "count_frames", "decode", "open_video"],
    "videopeft.errors": ["DecodeError"],
    ".sampling": ["frames_for_study", "sample_dense", "sample_segments"],
    ".transforms": ["EvalTransform", "TrainTransform", "build_eval_transform",
                    "build_train_transform"],
    ".randaugment": ["RandAugmentPlanner", "apply_rand_augment"],
    ".annotations": ["VideoRecord", "read_annotations"],
    ".datasets": ["EvalVideoDataset", "TrainClipDataset", "build_dataset", "clip_indices",
                  "collate_train", "eval_collate"],
    ".device_augment": ["DeviceAugment", "build_device_augment", "normalize_clips",
                        "resolve_augment"],
    ".check": ["CheckResult", "check_videos"],
    ".manifest": ["Manifest"],
})
