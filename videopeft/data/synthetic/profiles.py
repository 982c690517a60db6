"""Realistic profiles: synthetic videos written at a real dataset's frame size, rate, length and
encoding, so that decoding them costs what decoding the dataset costs.

    profile        layout    file  codec           size     fps  length        keyframes
    ssv2-240p      ssv2      webm  VP9             427x240  12   4 s (48 f)    every 128 f at most
    kinetics-320p  kinetics  mp4   H.264 (High)    568x320  30   10 s (300 f)  every 250 f

Encoder settings (PyAV / FFmpeg option names):

* ssv2-240p: libvpx-vp9, deadline=realtime, cpu-used=8, target bit rate 175 kb/s (libvpx's
  default VBR), g=128, yuv420p. SSv2's files are VP9 WebM, 240 px tall, 12 fps.
* kinetics-320p: libx264, preset=veryfast, profile=high, x264-params scenecut=0, target bit rate
  400 kb/s (ABR), g=250, yuv420p. `veryfast` keeps what YouTube's H.264 files use and
  `ultrafast` turns off: CABAC, 3 B-frames, 8x8 transforms, the deblocking filter; every decoder
  pays for them. Keyframes at 0, 250, ...: x264's default interval, made explicit, and no extra
  ones at scene cuts, so a clip from late in the video decodes from up to 249 frames back.

The bit rates are stated targets, not measurements of the datasets (none is downloaded here).
They matter: on these 568x320 videos a quality-based H.264 encode (crf 18) came out at 0.9-5 Mb/s
for the videos with sensor noise, which then decoded 1.7-5x slower than at 400 kb/s, and at
40-70 kb/s for those without. A target rate keeps every video near one cost, whatever its
content.
"""
from __future__ import annotations

from dataclasses import dataclass

from videopeft.data.synthetic.encode import Encoding
from videopeft.data.synthetic.layouts import LAYOUT_CONTAINERS
from videopeft.errors import ConfigError

__all__ = ["VideoProfile", "PROFILES", "video_profile"]


@dataclass(frozen=True)
class VideoProfile:
    """What a dataset's files look like: its reader's layout, frame size and rate, length, and
    the encoder settings that give a comparable decode cost."""

    name: str
    layout: str
    width: int
    height: int
    fps: int
    seconds: float
    encoding: Encoding

    @property
    def container(self) -> str:
        return self.encoding.format

    def num_frames(self, seconds: float | None = None) -> int:
        """Frames of a video `seconds` long (default: the profile's length)."""
        return max(1, round((self.seconds if seconds is None else seconds) * self.fps))

    def layouts(self) -> list[str]:
        """The layouts whose readers take this profile's container."""
        return [name for name, container in LAYOUT_CONTAINERS.items()
                if container == self.container]


PROFILES: dict[str, VideoProfile] = {
    "ssv2-240p": VideoProfile(
        "ssv2-240p", "ssv2", 427, 240, 12, 4.0,
        Encoding("webm", "libvpx-vp9", {"deadline": "realtime", "cpu-used": "8"},
                 bit_rate=175_000, gop=128)),
    "kinetics-320p": VideoProfile(
        "kinetics-320p", "kinetics", 568, 320, 30, 10.0,
        Encoding("mp4", "libx264", {"preset": "veryfast", "profile": "high",
                                    "x264-params": "scenecut=0"},
                 bit_rate=400_000, gop=250)),
}


def video_profile(name: str) -> VideoProfile:
    """A profile by name; ConfigError naming the choices otherwise."""
    if name not in PROFILES:
        raise ConfigError(f"profile must be one of {list(PROFILES)}, got {name!r}")
    return PROFILES[name]
