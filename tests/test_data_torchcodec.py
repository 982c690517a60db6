"""The torchcodec backend: exact frames where it can run; where it cannot (not installed, or no
FFmpeg shared libraries), it is left out of `auto`, named with the reason, and these tests skip
saying why. The generic decoder tests (tests/test_data_decoders.py) also cover torchcodec
whenever it is usable, since they run over every available backend."""
from __future__ import annotations

import sys
import types

import pytest
import torch

from data_fixtures import CONTAINERS, PATTERN_FRAMES, frame_numbers, pattern_videos  # noqa: F401
from videopeft.data import DecodeError, count_frames, decode, decoders
from videopeft.errors import one_line

INDICES = [5, 0, 23, 5, 5, 12, 1]


def _torchcodec_or_skip() -> None:
    reason = decoders.unusable_backends().get("torchcodec")
    if reason:
        pytest.skip(f"torchcodec {reason}")


@pytest.mark.parametrize("container", CONTAINERS)
def test_torchcodec_returns_exactly_the_requested_frames(pattern_videos, container):
    _torchcodec_or_skip()
    path = pattern_videos[container]
    assert count_frames(path, backend="torchcodec") == PATTERN_FRAMES
    frames = decode(path, INDICES, backend="torchcodec")
    assert frames.dtype == torch.uint8 and frames.shape[-1] == 3
    assert frame_numbers(frames) == INDICES
    pyav = decode(path, INDICES, backend="pyav").int()
    assert (frames.int() - pyav).abs().max() <= 2


def test_torchcodec_errors_are_one_short_line_naming_the_file(tmp_path):
    _torchcodec_or_skip()
    missing = tmp_path / "missing.mp4"
    with pytest.raises(DecodeError) as err:
        decode(missing, [0], backend="torchcodec")
    line = err.value.errors["torchcodec"]
    assert "\n" not in line and ".cpp:" not in line and "No such file" in line


@pytest.fixture
def torchcodec_without_ffmpeg(monkeypatch):
    """A stand-in torchcodec that imports but found no FFmpeg (what 0.9+ does without it)."""
    package = types.ModuleType("torchcodec")
    package.ffmpeg_major_version = None
    package.decoders = types.ModuleType("torchcodec.decoders")
    monkeypatch.setitem(sys.modules, "torchcodec", package)
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", package.decoders)
    decoders._module.cache_clear()
    decoders._UNUSABLE.clear()
    yield
    decoders._module.cache_clear()  # forget the stand-in once monkeypatch restores sys.modules
    decoders._UNUSABLE.clear()


def test_torchcodec_without_ffmpeg_is_unusable_and_says_why(torchcodec_without_ffmpeg,
                                                             pattern_videos):
    assert "torchcodec" not in decoders.available_backends()
    assert "no FFmpeg shared libraries" in decoders.unusable_backends()["torchcodec"]
    with pytest.raises(ValueError, match="'torchcodec' is installed but found no FFmpeg"):
        decode(pattern_videos["mp4"], [0], backend="torchcodec")
    assert frame_numbers(decode(pattern_videos["mp4"], [3], backend="auto")) == [3]


def test_cpp_source_locations_are_dropped_from_error_lines():
    err = RuntimeError("SingleStreamDecoder, /__w/torchcodec/src/SingleStreamDecoder.cpp:41, "
                       "Could not open input file: a.mp4 No such file or directory")
    assert one_line(err) == ("RuntimeError: Could not open input file: a.mp4 No such "
                             "file or directory")
