"""Realistic profiles: the synthetic writer's ssv2-240p and kinetics-320p videos have the codec,
frame size, rate, length and keyframes the profiles state, in layouts the readers read.

The sets are written shortened (1 s) through the same code path as the full-length videos; the
keyframe interval of 250 needs a longer video, checked on small frames with the same encoder
settings.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import av.video.frame
import numpy as np
import pytest

from videopeft.cli import make_synthetic
from videopeft.data import decode, read_annotations
from videopeft.data.synthetic import PROFILES, write_synthetic, write_video

SECONDS = 1.0


def stream_facts(path: str | Path) -> dict:
    """What ffprobe would say of the first video stream, from PyAV (every frame decoded)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        return {"codec": stream.codec_context.name, "profile": stream.codec_context.profile,
                "size": (stream.width, stream.height), "fps": stream.average_rate,
                "frames": len(frames),
                "keyframes": [i for i, f in enumerate(frames) if f.key_frame],
                "picture_types": {av.video.frame.PictureType(f.pict_type).name for f in frames}}


@pytest.fixture(scope="module")
def profile_sets(tmp_path_factory) -> dict[str, Path]:
    """One shortened set per profile, written by the command line (no --layout: the profile's)."""
    out = tmp_path_factory.mktemp("profiles")
    for name in PROFILES:
        status = make_synthetic.main(["--profile", name, "--out", str(out / name), "--videos",
                                      "2", "--num-classes", "2", "--seconds", str(SECONDS),
                                      "--no-progress"])
        assert status == 0
    return {name: out / name for name in PROFILES}


@pytest.mark.parametrize("name, codec, suffix", [("ssv2-240p", "vp9", ".webm"),
                                                 ("kinetics-320p", "h264", ".mp4")])
def test_profile_videos_have_the_stated_codec_size_rate_and_length(profile_sets, name, codec,
                                                                   suffix):
    profile = PROFILES[name]
    videos = sorted((profile_sets[name] / "videos").rglob(f"*{suffix}"))
    assert len(videos) == 2
    for path in videos:
        facts = stream_facts(path)
        assert facts["codec"] == codec
        assert facts["size"] == (profile.width, profile.height)
        assert facts["fps"] == Fraction(profile.fps)
        assert abs(facts["frames"] - profile.num_frames(SECONDS)) <= 1
        assert facts["keyframes"][0] == 0


def test_kinetics_profile_is_h264_high_with_b_frames_and_cabac(profile_sets):
    path = next((profile_sets["kinetics-320p"] / "videos").rglob("*.mp4"))
    facts = stream_facts(path)
    assert facts["profile"] == "High"
    assert "B" in facts["picture_types"]
    # x264 writes its settings into the stream (an SEI message): CABAC entropy coding is on
    assert b"cabac=1" in path.read_bytes() and b"cabac=0" not in path.read_bytes()


def test_profile_sets_are_in_the_layouts_the_readers_read(profile_sets):
    for name, folder in profile_sets.items():
        layout = PROFILES[name].layout
        records = [r for split in ("train", "val") for r in read_annotations(
            layout, str(folder / "videos"), str(folder / "annotations"), split)[0]]
        assert len(records) == 2 and {r.label for r in records} == {0, 1}
        frames = decode(records[0].path, [0, 5, 11])
        assert tuple(frames.shape) == (3, PROFILES[name].height, PROFILES[name].width, 3)


def test_kinetics_encoding_puts_a_keyframe_every_250_frames(tmp_path):
    """300 frames at the profile's settings (small frames, so it is quick): keyframes at 0, 250."""
    profile = PROFILES["kinetics-320p"]
    rng = np.random.default_rng(0)
    frames = (rng.integers(0, 256, (36, 64, 3), dtype=np.uint8) for _ in range(300))
    path = tmp_path / "gop.mp4"
    write_video(path, frames, profile.fps, profile.container, profile.encoding)
    facts = stream_facts(path)
    assert facts["frames"] == 300
    assert facts["keyframes"] == [0, 250]


def test_profiles_refuse_sizes_lengths_and_layouts_they_fix(tmp_path):
    from videopeft.errors import ConfigError

    with pytest.raises(ConfigError, match="fixes the frame size and length"):
        write_synthetic(tmp_path / "a", "kinetics", videos=2, num_classes=2, size=64,
                        profile="kinetics-320p")
    with pytest.raises(ConfigError, match="the hmdb51 layout does not read"):
        write_synthetic(tmp_path / "b", "hmdb51", videos=2, num_classes=2,
                        profile="kinetics-320p")
    with pytest.raises(ConfigError, match="profile must be one of"):
        write_synthetic(tmp_path / "c", "ssv2", videos=2, num_classes=2, profile="ssv2-480p")
    assert not any(tmp_path.iterdir())
