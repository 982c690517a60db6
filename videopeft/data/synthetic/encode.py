"""Encoding frames into real video files with PyAV (imported on first use: rendering needs none).

    container  format  video codec              audio codec (the audio-only bad-zoo file)
    webm       webm    VP9 (libvpx-vp9)         Opus
    mp4        mp4     H.264 (libx264)          AAC
    avi        avi     MPEG-4 Part 2 (mpeg4)    MP2

Each container has a default `Encoding` (fast, quality-based: small test videos); a realistic
profile (`videopeft.data.synthetic.profiles`) brings its own.
"""
from __future__ import annotations

import itertools
import os
import sys
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

__all__ = ["CONTAINERS", "Encoding", "DEFAULT_ENCODINGS", "write_video", "write_audio_only"]


@dataclass(frozen=True)
class Encoding:
    """How a video stream is encoded: PyAV format and codec, the codec's options, and the
    stream's target bit rate and keyframe interval (0 = the encoder's own default)."""

    format: str
    codec: str
    options: dict[str, str] = field(default_factory=dict)
    bit_rate: int = 0  # bits/s; 0 = no target (the options set a constant quality instead)
    gop: int = 0  # frames between keyframes at most

    def describe(self) -> str:
        """The settings in one line, as the README and result files state them."""
        parts = [self.codec, *(f"{k}={v}" for k, v in self.options.items())]
        if self.bit_rate:
            parts.append(f"b:v={self.bit_rate // 1000}k")
        if self.gop:
            parts.append(f"g={self.gop}")
        return " ".join(parts)


DEFAULT_ENCODINGS = {
    "webm": Encoding("webm", "libvpx-vp9", {"deadline": "realtime", "cpu-used": "8", "crf": "20",
                                            "b:v": "0"}),
    "mp4": Encoding("mp4", "libx264", {"preset": "ultrafast", "crf": "18"}),
    "avi": Encoding("avi", "mpeg4", {"flags": "+qscale", "global_quality": str(2 * 118)}),  # q 2
}
_AUDIO_CODECS = {"webm": "libopus", "mp4": "aac", "avi": "mp2"}
CONTAINERS = tuple(DEFAULT_ENCODINGS)


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: int,
                container: str = "mp4", encoding: Encoding | None = None) -> None:
    """Encode uint8 (H, W, 3) frames with PyAV, one at a time as they come (an array
    (T, H, W, 3) or any iterable of frames): by default webm = VP9, mp4 = H.264, avi = MPEG-4."""
    import av

    enc = encoding or DEFAULT_ENCODINGS[container]
    frames = iter(frames)
    first = next(frames)
    with av.open(os.fspath(path), "w", format=enc.format) as out:
        stream = out.add_stream(enc.codec, rate=fps)
        stream.width, stream.height = first.shape[1], first.shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = dict(enc.options)
        if enc.bit_rate:
            stream.codec_context.bit_rate = enc.bit_rate
        if enc.gop:
            stream.codec_context.gop_size = enc.gop
        try:
            for frame in itertools.chain([first], frames):
                out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            out.mux(stream.encode())
        except av.error.ArgumentError as err:
            hint = (" (decord was imported before PyAV and its bundled libvpx shadows PyAV's: "
                    "import av or videopeft.data first)" if "decord" in sys.modules else "")
            raise RuntimeError(f"{path}: cannot encode {enc.codec}{hint}: {err}") from None


def write_audio_only(path: str | os.PathLike, container: str) -> None:
    """A file of the container's type with one silent audio stream and no video."""
    import av

    with av.open(os.fspath(path), "w", format=DEFAULT_ENCODINGS[container].format) as out:
        stream = out.add_stream(_AUDIO_CODECS[container], rate=48000)
        sample_fmt = stream.codec_context.codec.audio_formats[0].name
        samples = stream.codec_context.frame_size or 1024
        for _ in range(10):
            frame = av.AudioFrame(format=sample_fmt, layout="mono", samples=samples)
            frame.sample_rate = 48000
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
