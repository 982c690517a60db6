"""Procedurally generated video benchmarks, written as real encoded files in a dataset layout.

    info = write_synthetic("out/ssv2", "ssv2", videos=200, benchmark="stripes", bad_zoo=True)
    DataConfig(layout=info.layout, root=info.root, annotation=info.annotation)

Modules, in the order a video is made:

* `specs`: the benchmarks ("motion", "stripes"), their classes, and `sample_specs` (what to
  render: class, length, frame rate, size, seed).
* `draw`: `render`, a spec to uint8 frames (T, H, W, 3), a pure function of the spec
  (`render_frames` yields them one at a time).
* `encode`: frames to a WebM (VP9), MP4 (H.264) or AVI (MPEG-4) file with PyAV.
* `profiles`: realistic profiles (ssv2-240p, kinetics-320p): a real dataset's frame size, rate,
  length and encoding, so that decoding costs what it costs on the dataset.
* `layouts`: where each video goes in the ssv2 / hmdb51 / kinetics / list layout, and the
  annotation files, named as `videopeft.data.annotations` reads them.
* `badzoo`: undecodable and suspicious files for the failure paths, listed in bad_zoo.json.
* `writer`: `write_synthetic`, which does all of the above under one folder.

Everything is drawn from numpy Generators seeded from `seed`: the same arguments write the same
frames and annotations.
"""
from videopeft.data.synthetic.draw import render, render_frames
from videopeft.data.synthetic.encode import DEFAULT_ENCODINGS, Encoding, write_video
from videopeft.data.synthetic.layouts import LAYOUT_CONTAINERS
from videopeft.data.synthetic.profiles import PROFILES, VideoProfile, video_profile
from videopeft.data.synthetic.specs import (BENCHMARKS, CLASSES, STRIPE_CLASSES, STRIPE_EVIDENCE,
                                            MotionClass, VideoSpec, benchmark_classes,
                                            sample_specs)
from videopeft.data.synthetic.writer import (DEFAULT_FRAMES_RANGE, DEFAULT_SIZE, SyntheticDataset,
                                             SyntheticVideo, write_synthetic)

__all__ = ["MotionClass", "CLASSES", "STRIPE_CLASSES", "BENCHMARKS", "STRIPE_EVIDENCE",
           "benchmark_classes", "VideoSpec", "SyntheticVideo", "SyntheticDataset",
           "sample_specs", "render", "render_frames", "write_video", "write_synthetic",
           "LAYOUT_CONTAINERS", "Encoding", "DEFAULT_ENCODINGS", "PROFILES", "VideoProfile",
           "video_profile", "DEFAULT_SIZE", "DEFAULT_FRAMES_RANGE"]
