"""Encoding frames into real video files with PyAV (imported on first use: rendering needs none).

    container  format  video codec              audio codec (the audio-only bad-zoo file)
    webm       webm    VP9 (libvpx-vp9)         Opus
    mp4        mp4     H.264 (libx264)          AAC
    avi        avi     MPEG-4 Part 2 (mpeg4)    MP2
"""
from __future__ import annotations

import os
import sys

import numpy as np

__all__ = ["CONTAINERS", "write_video", "write_audio_only"]

# container -> (PyAV format, video codec, codec options, audio codec for the audio-only file)
_CODECS = {
    "webm": ("webm", "libvpx-vp9", {"deadline": "realtime", "cpu-used": "8", "crf": "20",
                                    "b:v": "0"}, "libopus"),
    "mp4": ("mp4", "libx264", {"preset": "ultrafast", "crf": "18"}, "aac"),
    "avi": ("avi", "mpeg4", {"flags": "+qscale", "global_quality": str(2 * 118)}, "mp2"),  # q 2
}
CONTAINERS = tuple(_CODECS)


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int,
                container: str = "mp4") -> None:
    """Encode uint8 (T, H, W, 3) frames with PyAV: webm = VP9, mp4 = H.264, avi = MPEG-4."""
    import av

    fmt, codec, options, _ = _CODECS[container]
    with av.open(os.fspath(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = dict(options)
        try:
            for frame in frames:
                out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            out.mux(stream.encode())
        except av.error.ArgumentError as err:
            hint = (" (decord was imported before PyAV and its bundled libvpx shadows PyAV's: "
                    "import av or videopeft.data first)" if "decord" in sys.modules else "")
            raise RuntimeError(f"{path}: cannot encode {codec}{hint}: {err}") from None


def write_audio_only(path: str | os.PathLike, container: str) -> None:
    """A file of the container's type with one silent audio stream and no video."""
    import av

    fmt, _, _, codec = _CODECS[container]
    with av.open(os.fspath(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=48000)
        sample_fmt = stream.codec_context.codec.audio_formats[0].name
        samples = stream.codec_context.frame_size or 1024
        for _ in range(10):
            frame = av.AudioFrame(format=sample_fmt, layout="mono", samples=samples)
            frame.sample_rate = 48000
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
