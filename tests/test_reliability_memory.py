"""Long-run memory canary: decoding the same small set epoch after epoch does not leak.

A fresh subprocess per backend (so the RSS is the decoder's, not pytest's) builds the training
dataset (`TrainClipDataset`: open, header probe, sample, decode, augment) over 8 videos, runs
WARMUP passes, reads its RSS, runs PASSES more passes and reads it again.

Measured on the dev box (2 shared CPU cores, 32 px, 4-frame clips, 8 videos of 8-12 frames):
RSS ~760 MB (mostly torch itself) after warm-up; growth over 30 more passes (240 decodes)
+0.28 to +0.52 MB with decord and +0.50 to +1.87 MB with PyAV over four runs (`pytest -s`
prints the figures). The bound asserted is GROWTH_BOUND_MB = 30 MB (a leak of ~125 KB per
decode would trip it).
"""
from __future__ import annotations

import json
import subprocess
import textwrap

import pytest

from engine_fixtures import REPO, python, tiny_set, tool_env  # noqa: F401
from videopeft.data.decoders import available_backends

VIDEOS, WARMUP, PASSES = 8, 3, 30
GROWTH_BOUND_MB = 30.0

SCRIPT = textwrap.dedent('''
    import gc, json, os, sys
    sys.path.insert(0, sys.argv[1])
    from videopeft.config import DataConfig
    from videopeft.data import TrainClipDataset, read_annotations
    from videopeft.data.manifest import Manifest

    layout, root, annotation, backend = sys.argv[2:6]
    videos, warmup, passes = map(int, sys.argv[6:9])

    def rss_mb():
        try:
            import psutil
            return psutil.Process().memory_info().rss / 2**20
        except ImportError:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    records, _ = read_annotations(layout, root, annotation, "train")
    cfg = DataConfig(layout=layout, root=root, annotation=annotation, num_frames=4, img_size=32,
                     sampling="segment", workers=0, backend=backend)
    dataset = TrainClipDataset(records[:videos], cfg, Manifest())

    def one_pass():
        for i in range(len(dataset)):
            clip, _, used = dataset[i]
            assert used == i and clip.shape[1] == 4

    for _ in range(warmup):
        one_pass()
    gc.collect()
    before = rss_mb()
    for _ in range(passes):
        one_pass()
    gc.collect()
    after = rss_mb()
    print(json.dumps({"backend": backend, "before_mb": before, "after_mb": after,
                      "decodes": passes * len(dataset)}))
''')


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_decoding_for_many_epochs_keeps_rss_bounded(tiny_set, backend, tmp_path):
    if backend not in available_backends():
        pytest.skip(f"{backend} is not installed")
    script = tmp_path / "canary.py"
    script.write_text(SCRIPT)
    cmd = [python(), str(script), str(REPO), tiny_set.layout, tiny_set.root, tiny_set.annotation,
           backend, str(VIDEOS), str(WARMUP), str(PASSES)]
    proc = subprocess.run(cmd, env=tool_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    growth = figures["after_mb"] - figures["before_mb"]
    print(f"\n{backend}: RSS {figures['before_mb']:.1f} MB after {WARMUP} warm-up passes, "
          f"{figures['after_mb']:.1f} MB after {PASSES} more ({figures['decodes']} decodes): "
          f"growth {growth:+.2f} MB (bound {GROWTH_BOUND_MB} MB)")
    assert figures["decodes"] == PASSES * VIDEOS
    assert growth < GROWTH_BOUND_MB, figures
