"""Decoders return exactly the requested frames, agree with each other, and fail loudly."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from data_fixtures import (  # noqa: F401  (pattern_videos is a fixture)
    BACKEND_CHOICES,
    BACKENDS,
    CONTAINERS,
    PATTERN_FRAMES,
    PATTERN_HW,
    frame_numbers,
    pattern_frames,
    pattern_videos,
)
from videopeft.data import DecodeError, count_frames, decode, open_video
from videopeft.data import decoders
from videopeft.errors import ConfigError
from videopeft.data.synthetic import write_video

INDICES = [5, 0, 23, 5, 5, 12, 1]  # unsorted, repeated, first and last frame


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("backend", BACKEND_CHOICES)
def test_every_backend_returns_exactly_the_requested_frames_in_order(pattern_videos, backend,
                                                                     container):
    frames = decode(pattern_videos[container], INDICES, backend=backend)
    assert frames.dtype == torch.uint8
    assert tuple(frames.shape) == (len(INDICES), *PATTERN_HW, 3)
    assert frame_numbers(frames) == INDICES


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("backend", BACKEND_CHOICES)
def test_frame_count_is_exact_even_for_webm(pattern_videos, backend, container):
    # PyAV's stream.frames is 0 for WebM; the count must come from demuxing.
    assert count_frames(pattern_videos[container], backend=backend) == PATTERN_FRAMES


@pytest.mark.parametrize("container", CONTAINERS)
def test_installed_backends_agree_within_two_grey_levels(pattern_videos, container):
    if len(BACKENDS) < 2:
        pytest.skip(f"only {BACKENDS} installed")
    decoded = {b: decode(pattern_videos[container], INDICES, backend=b).int() for b in BACKENDS}
    first = decoded[BACKENDS[0]]
    for backend, frames in decoded.items():
        assert (frames - first).abs().max() <= 2, f"{backend} vs {BACKENDS[0]} on {container}"


@pytest.mark.parametrize("container", CONTAINERS)
def test_decoded_frames_match_what_was_encoded(pattern_videos, container):
    frames = decode(pattern_videos[container], list(range(PATTERN_FRAMES))).int()
    assert (frames - torch.from_numpy(pattern_frames()).int()).abs().max() <= 4


@pytest.mark.parametrize("bad", [[PATTERN_FRAMES], [-1], [0, 3, PATTERN_FRAMES + 10]])
@pytest.mark.parametrize("backend", BACKEND_CHOICES)
def test_out_of_range_index_raises_decode_error_naming_file_and_backends(pattern_videos, backend,
                                                                         bad):
    path = pattern_videos["mp4"]
    with pytest.raises(DecodeError) as info:
        decode(path, bad, backend=backend)
    message = str(info.value)
    assert str(path) in message and "out of range" in message
    tried = BACKENDS if backend == "auto" else (backend,)
    assert all(f"{name}: " in message for name in tried)


@pytest.mark.parametrize("indices", [[], [1.5], torch.tensor([0.0]), np.array([1.0]), [True]])
def test_non_integer_or_empty_indices_are_a_value_error(pattern_videos, indices):
    with pytest.raises(ValueError, match="frame indices|no frame"):
        decode(pattern_videos["mp4"], indices)


def test_tensor_and_array_indices_are_accepted(pattern_videos):
    for indices in (torch.tensor([3, 1, 3]), np.array([3, 1, 3])):
        assert frame_numbers(decode(pattern_videos["avi"], indices)) == [3, 1, 3]


def test_unreadable_file_error_lists_each_backend_on_one_line(tmp_path):
    path = tmp_path / "garbage.mp4"
    path.write_bytes(os.urandom(3000))
    with pytest.raises(DecodeError) as info:
        decode(path, [0])
    err = info.value
    assert list(err.errors) == list(BACKENDS)
    assert str(err).startswith(f"{path}: cannot decode (")
    assert "\n" not in str(err)
    assert err.backends == ",".join(BACKENDS)


def test_missing_file_is_a_decode_error(tmp_path):
    with pytest.raises(DecodeError, match="missing.webm"):
        count_frames(tmp_path / "missing.webm")


def test_decode_error_survives_pickling_across_workers():
    err = DecodeError("/x/a.webm", {"decord": "bad", "pyav": "worse"})
    clone = pickle.loads(pickle.dumps(err))
    assert str(clone) == str(err) and clone.errors == err.errors


@pytest.mark.skipif("decord" not in BACKENDS or "pyav" not in BACKENDS, reason="needs both")
def test_auto_falls_back_per_file_when_decord_cannot_open_a_one_frame_webm(tmp_path):
    # decord refuses a one-frame WebM ("broken metadata"); auto must hand it to PyAV.
    path = tmp_path / "one.webm"
    write_video(path, pattern_frames(1), 12, "webm")
    with open_video(path) as video:
        assert video.num_frames == 1
        assert frame_numbers(video.get([0, 0, 0])) == [0, 0, 0]
        assert video.backend == "pyav" and "decord" in video.errors
    with pytest.raises(DecodeError, match="decord: "):
        decode(path, [0], backend="decord")


@pytest.mark.skipif(len(BACKENDS) < 2, reason="needs two backends")
def test_auto_falls_back_when_the_first_backend_fails_mid_decode(pattern_videos, monkeypatch):
    first = decoders._OPENERS[BACKENDS[0]]

    class Broken(first):
        def read(self, indices):
            raise RuntimeError("simulated decode failure")

    monkeypatch.setitem(decoders._OPENERS, BACKENDS[0], Broken)
    with open_video(pattern_videos["webm"]) as video:
        assert frame_numbers(video.get([2, 7])) == [2, 7]
        assert video.backend == BACKENDS[1]
        assert "simulated decode failure" in video.errors[BACKENDS[0]]


@pytest.mark.skipif("decord" not in BACKENDS, reason="decord not installed")
def test_decord_reads_in_chunks_and_reorders(pattern_videos, monkeypatch):
    monkeypatch.setattr(decoders, "_DECORD_CHUNK", 3)
    wanted = [23, 0, 11, 11, 4, 17, 9, 2, 20]
    assert frame_numbers(decode(pattern_videos["mp4"], wanted, backend="decord")) == wanted


def test_one_open_video_serves_many_requests(pattern_videos):
    with open_video(pattern_videos["webm"]) as video:
        assert frame_numbers(video.get([1, 2])) == [1, 2]
        assert frame_numbers(video.get([20, 0])) == [20, 0]


@pytest.mark.parametrize("backend", BACKEND_CHOICES)
def test_decoding_leaks_no_file_descriptors(pattern_videos, backend):
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    decode(pattern_videos["webm"], [0], backend=backend)  # warm-up: lazy imports open files
    before = open_fds()
    for _ in range(10):
        for path in pattern_videos.values():
            decode(path, [0, 5], backend=backend)
    assert open_fds() <= before


def test_unknown_or_missing_backend_is_a_user_error(pattern_videos):
    """A ConfigError (a ValueError): the tools report it as one `error:` line."""
    with pytest.raises(ConfigError, match="unknown video backend 'ffmpeg'"):
        decode(pattern_videos["mp4"], [0], backend="ffmpeg")
    if "torchcodec" not in BACKENDS:
        with pytest.raises(ConfigError, match="'torchcodec' is not installed"):
            decode(pattern_videos["mp4"], [0], backend="torchcodec")


@pytest.mark.skipif("decord" not in BACKENDS or "pyav" not in BACKENDS, reason="needs both")
def test_auto_falls_back_when_decord_cannot_read_a_frame_width(tmp_path):
    # decord 0.6 fails on 48-px-wide frames ("The size must exactly match").
    path = tmp_path / "w48.mp4"
    write_video(path, pattern_frames(6, (32, 48)), 12, "mp4")
    with pytest.raises(DecodeError, match="decord: "):
        decode(path, [0], backend="decord")
    assert frame_numbers(decode(path, [5, 0])) == [5, 0]
