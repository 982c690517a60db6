"""Frame-accurate video decoding behind one interface: decord, PyAV and (if installed) torchcodec.

`decode(path, indices)` returns exactly the requested frames, in the requested order, repeats
allowed, as a `uint8` tensor `(T, H, W, C)`. With `backend="auto"` the backends are tried in the
order of `AUTO_ORDER` (decord, pyav, torchcodec) and the next one takes over *per file* when one
fails to open or decode it; a file that no backend can read raises `DecodeError`, whose message
names the file and each backend's error.

Traps handled here:
* PyAV reports 0 frames for WebM (no `nb_frames` in the container): frames are counted by
  demuxing the video packets instead.
* Readers are created on demand by `open_video`, never stored on a dataset, so nothing holding a
  native handle is pickled or shared across a DataLoader fork.
* decord grows memory when it seeks around long videos: it is asked for unique, sorted indices in
  chunks of `_DECORD_CHUNK` frames, the result is reordered afterwards, and the reader is dropped
  as soon as the file is done.
* PyAV containers are only ever opened in a `with` block, so they are always closed. PyAV
  decodes from the start up to the last wanted frame (no seeking, so it is exact for any codec);
  that suits clips of seconds, and decord, which seeks, comes first for longer videos.
* decord 0.6 cannot read some tiny frame widths (16, 24, 48 and 72 px: "DECORDArrayCopyFromTo:
  The size must exactly match") and one-frame WebM files ("broken metadata"); `auto` hands those
  files to PyAV.
* decord loads its bundled FFmpeg and libvpx globally; PyAV is imported first so that PyAV keeps
  its own (otherwise VP9 encoding with PyAV fails in the same process).

`probe_warnings(video)` names what is suspicious about a file that *did* decode (one frame only,
an extension that disagrees with the container, fewer frames than the header states, no read
permission for the owner). It costs an `os.stat` and the container header (`Video.header`), which
the PyAV reader already holds and other backends get from one header-only PyAV open: no decoding.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import os
import stat
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol, Sequence

import numpy as np
import torch

try:  # PyAV before decord: decord loads its bundled FFmpeg and libvpx with RTLD_GLOBAL, and when
    import av  # noqa: F401  # they are loaded first they shadow PyAV's, breaking VP9 encoding
except ImportError:
    pass

from videopeft.constants import AUTO_ORDER, BACKENDS
from videopeft.data.native_log import native_stderr_to_log
from videopeft.errors import ConfigError, DecodeError, one_line

__all__ = ["DecodeError", "DecodeOptions", "Video", "VideoHeader", "open_video", "decode",
           "count_frames", "reduced_size", "available_backends", "unusable_backends",
           "read_header", "probe_warnings"]

_log = logging.getLogger(__name__)

_MODULES = {"decord": "decord", "pyav": "av", "torchcodec": "torchcodec.decoders"}
_DECORD_CHUNK = 32  # frames per decord get_batch call (bounds its memory on long videos)
_SIZES: dict[str, tuple[int, int]] = {}  # per process: (height, width) of files decord opened


@dataclass(frozen=True)
class VideoHeader:
    """What a file's container states about its first video stream, before any decoding."""

    format: str  # FFmpeg's demuxer name: "matroska,webm", "mov,mp4,m4a,3gp,3g2,mj2", "avi", ...
    frames: int  # frame count stored in the header (0: none stored, as in WebM)
    duration: float  # seconds, from the stream or else the container (0.0: unknown)
    fps: float  # average frame rate (0.0: unknown)

    @property
    def expected_frames(self) -> int:
        """Frames the header promises: its count, else duration x frame rate (0: unknown)."""
        if self.frames > 0:
            return self.frames
        return int(round(self.duration * self.fps)) if self.duration > 0 and self.fps > 0 else 0


def _header_of(container: Any, stream: Any) -> VideoHeader:
    """A `VideoHeader` from an open PyAV container and its video stream (no decoding)."""
    duration = 0.0
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / 1_000_000  # AV_TIME_BASE
    rate = stream.average_rate or stream.guessed_rate
    return VideoHeader(format=container.format.name, frames=max(int(stream.frames or 0), 0),
                       duration=duration, fps=float(rate) if rate else 0.0)


def read_header(path: str | os.PathLike) -> VideoHeader | None:
    """The container header of a file through PyAV; None without PyAV or when it cannot."""
    av = _module("pyav")
    if av is None:
        return None
    try:
        with av.open(os.fspath(path)) as container:
            return _header_of(container, _video_stream(container))
    except Exception:  # a header we cannot read only means fewer checks
        return None


# ----------------------------------------------------------------------------- backends


_UNUSABLE: dict[str, str] = {}  # backend -> why it cannot be used here (not installed, no FFmpeg)


@functools.cache
def _module(backend: str) -> Any | None:
    """Import a backend's module once; None (reason in `unusable_backends()`) when it cannot run.

    torchcodec needs FFmpeg's shared libraries (libavutil.so.56-61) on the library path; releases
    >= 0.9 import without them (`torchcodec.ffmpeg_major_version` is None) and fail on the first
    decoder, older ones fail at import with a RuntimeError: both count as unusable.
    """
    try:
        module = importlib.import_module(_MODULES[backend])
    except ImportError as err:
        absent = err.name == _MODULES[backend].split(".")[0]  # not a missing dependency of it
        _UNUSABLE[backend] = ("not installed" if absent
                              else f"installed but cannot be imported ({one_line(err)})")
        return None
    except (RuntimeError, OSError) as err:
        _UNUSABLE[backend] = f"installed but cannot load its libraries ({one_line(err)})"
        return None
    if backend == "decord":  # FFmpeg's console lines ("moov atom not found"); its own C++ lines
        module.logging.set_level(module.logging.QUIET)  # are caught by native_stderr_to_log
    if backend == "torchcodec" and getattr(importlib.import_module("torchcodec"),
                                           "ffmpeg_major_version", 0) is None:
        _UNUSABLE[backend] = ("installed but found no FFmpeg shared libraries (libavutil.so.56-61 "
                              "on the library path; see the README's torchcodec notes)")
        return None
    return module


def unusable_backends() -> dict[str, str]:
    """The backends that cannot run here, each with the reason (for messages and test skips)."""
    for name in AUTO_ORDER:
        _module(name)
    return {name: _UNUSABLE[name] for name in AUTO_ORDER if name in _UNUSABLE}


def available_backends() -> list[str]:
    """The installed backends that can run here, in the order `auto` tries them."""
    return [name for name in AUTO_ORDER if _module(name) is not None]


class _Reader(Protocol):
    num_frames: int

    def read(self, indices: list[int]) -> np.ndarray:
        """Frames for unique, sorted, in-range `indices` as uint8 (T, H, W, C)."""

    def close(self) -> None:
        """Release native handles."""


@dataclass(frozen=True)
class DecodeOptions:
    """How a reader decodes: frames scaled down so their short side is at most `short_side` px
    (0 = full size; never scaled up), with `threads` decoder threads (1: the DataLoader workers are
    the parallelism, and decoder threads on top of them would only oversubscribe the cores)."""

    short_side: int = 0
    threads: int = 1


def reduced_size(width: int, height: int, short_side: int) -> tuple[int, int] | None:
    """(width, height) with the short side scaled to `short_side`, aspect kept (rounded); None
    when the frame is already that small or `short_side` is 0."""
    if short_side <= 0 or min(width, height) <= short_side:
        return None
    scale = short_side / min(width, height)
    if width <= height:
        return short_side, int(round(height * scale))
    return int(round(width * scale)), short_side


class _DecordReader:
    """decord.VideoReader on `options.threads` CPU threads (scaled by decord when frames are
    larger than `options.short_side`); frames fetched in sorted chunks."""

    def __init__(self, path: str, options: DecodeOptions = DecodeOptions()) -> None:
        decord = _module("decord")
        self._vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=options.threads)
        if options.short_side:
            height, width = self._vr[0].shape[:2] if _SIZES.get(path) is None else _SIZES[path]
            _SIZES[path] = (height, width)
            size = reduced_size(width, height, options.short_side)
            if size is not None:  # decord scales while it converts to RGB
                self._vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=options.threads,
                                              width=size[0], height=size[1])
        self.num_frames = len(self._vr)

    def read(self, indices: list[int]) -> np.ndarray:
        chunks = [_as_numpy(self._vr.get_batch(indices[i:i + _DECORD_CHUNK]))
                  for i in range(0, len(indices), _DECORD_CHUNK)]
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def close(self) -> None:
        self._vr = None


def _as_numpy(batch: Any) -> np.ndarray:
    """decord returns its own NDArray, or a torch tensor if someone set the torch bridge."""
    return batch.numpy() if isinstance(batch, torch.Tensor) else batch.asnumpy()


class _PyAVReader:
    """PyAV: counts frames at open (demuxing when the header has no count), decodes in order."""

    def __init__(self, path: str, options: DecodeOptions = DecodeOptions()) -> None:
        self._path, self._threads = path, options.threads
        av = _module("pyav")
        with av.open(path) as container:
            stream = _video_stream(container)
            size = reduced_size(stream.codec_context.width, stream.codec_context.height,
                                options.short_side)
            self._size = {} if size is None else {"width": size[0], "height": size[1]}
            try:  # for probe_warnings, at no extra cost; never a reason to fail the file
                self.header: VideoHeader | None = _header_of(container, stream)
            except Exception:
                self.header = None
            count = stream.frames
            if count <= 0:  # WebM/Matroska store no frame count: count the video packets
                count = sum(1 for packet in container.demux(stream) if packet.size > 0)
        self.num_frames = count

    def read(self, indices: list[int]) -> np.ndarray:
        av = _module("pyav")
        wanted, last = set(indices), indices[-1]
        frames: list[np.ndarray] = []
        decoded = 0
        with av.open(self._path) as container:
            stream = _video_stream(container)
            stream.codec_context.thread_count = self._threads
            for i, frame in enumerate(container.decode(stream)):
                decoded = i + 1
                if i in wanted:  # convert (and scale) only the frames asked for
                    frames.append(frame.to_ndarray(format="rgb24", **self._size))
                if i >= last:
                    break
        if len(frames) != len(indices):
            raise IndexError(f"frame {last} requested but only {decoded} frames could be decoded")
        return np.stack(frames)

    def close(self) -> None:
        pass  # containers are opened and closed inside each call


def _video_stream(container: Any) -> Any:
    if not container.streams.video:
        raise ValueError("no video stream in the file")
    return container.streams.video[0]


class _TorchCodecReader:
    """torchcodec.decoders.VideoDecoder in exact seek mode (used only when it is installed)."""

    def __init__(self, path: str, options: DecodeOptions = DecodeOptions()) -> None:
        decoders = _module("torchcodec")
        self._dec = decoders.VideoDecoder(path, seek_mode="exact", dimension_order="NHWC",
                                          num_ffmpeg_threads=options.threads)
        self.num_frames = len(self._dec)
        meta = self._dec.metadata
        self._size = reduced_size(meta.width, meta.height, options.short_side)

    def read(self, indices: list[int]) -> np.ndarray:
        frames = self._dec.get_frames_at(indices=indices).data
        if self._size is not None:  # torchcodec decodes at full size; scale as the others do
            import torch.nn.functional as F
            frames = F.interpolate(frames.permute(0, 3, 1, 2), size=self._size[::-1],
                                   mode="bilinear", antialias=True).permute(0, 2, 3, 1)
        return frames.contiguous().numpy()

    def close(self) -> None:
        self._dec = None


_OPENERS: dict[str, Callable[[str, DecodeOptions], _Reader]] = {
    "decord": _DecordReader, "pyav": _PyAVReader, "torchcodec": _TorchCodecReader}


# ----------------------------------------------------------------------------- public interface


def _candidates(backend: str) -> list[str]:
    """The backends to try for `backend`; ConfigError (a user error) for one that is unknown or
    not installed."""
    if backend == "auto":
        names = available_backends()
        if not names:
            raise ConfigError(f"no video backend installed (tried imports for {list(AUTO_ORDER)})")
        return names
    if backend not in AUTO_ORDER:
        raise ConfigError(f"unknown video backend {backend!r}: expected one of {list(BACKENDS)}")
    if _module(backend) is None:
        raise ConfigError(f"video backend {backend!r} is {_UNUSABLE[backend]} "
                          f"(installed: {available_backends()})")
    return [backend]


def _check_indices(indices: Iterable[Any]) -> list[int]:
    """Indices as a list of python ints; integers only, at least one."""
    if isinstance(indices, torch.Tensor):
        if indices.is_floating_point():
            raise ValueError(f"frame indices must be integers, got a {indices.dtype} tensor")
        out = indices.reshape(-1).tolist()
    elif isinstance(indices, np.ndarray):
        if not np.issubdtype(indices.dtype, np.integer):
            raise ValueError(f"frame indices must be integers, got a {indices.dtype} array")
        out = indices.reshape(-1).tolist()
    else:
        out = list(indices)
        bad = [i for i in out if isinstance(i, bool) or not isinstance(i, (int, np.integer))]
        if bad:
            raise ValueError(f"frame indices must be integers, got {bad[0]!r}")
        out = [int(i) for i in out]
    if not out:
        raise ValueError("no frame indices requested")
    return out


class Video:
    """An opened video: frame count and exact frames, with per-file fallback across backends.

    Open once and call `get` as often as needed (eval takes all its views from one decode).
    `backend` names the backend in use; `errors` holds what the backends before it reported.
    """

    def __init__(self, path: str | os.PathLike, backend: str = "auto",
                 options: DecodeOptions = DecodeOptions()) -> None:
        self.path = os.fspath(path)
        self.options = options
        self.errors: dict[str, str] = {}
        self.backend = ""
        self._header: VideoHeader | None = None
        self._header_read = False
        self._todo = _candidates(backend)
        self._reader: _Reader | None = None
        self._next_backend()

    def _next_backend(self) -> None:
        """Open the file with the next backend that can; DecodeError when none is left."""
        while self._todo:
            name = self._todo.pop(0)
            try:
                with native_stderr_to_log(_log) if name == "decord" else contextlib.nullcontext():
                    self._reader = _OPENERS[name](self.path, self.options)
            except Exception as err:  # any backend failure means: try the next backend
                self.errors[name] = one_line(err)
                _log.debug("%s: %s cannot open it (%s)", self.path, name, self.errors[name])
                continue
            if self._reader.num_frames < 1:
                self.errors[name] = "no video frames"
                self._reader = None
                continue
            self.backend = name
            return
        self.backend, self._reader = "", None
        raise DecodeError(self.path, self.errors)

    @property
    def num_frames(self) -> int:
        """Frame count reported by the backend in use."""
        if self._reader is None:
            raise DecodeError(self.path, self.errors)
        return self._reader.num_frames

    @property
    def header(self) -> VideoHeader | None:
        """The container header (the PyAV reader's, else one header-only PyAV open); cached."""
        if not self._header_read:
            self._header = getattr(self._reader, "header", None) or read_header(self.path)
            self._header_read = True
        return self._header

    def get(self, indices: Sequence[int] | torch.Tensor | np.ndarray) -> torch.Tensor:
        """Exactly the frames at `indices` (in order, repeats allowed) as uint8 (T, H, W, C)."""
        wanted = _check_indices(indices)
        unique = sorted(set(wanted))
        while True:
            if self._reader is None:
                raise DecodeError(self.path, self.errors)
            try:
                n = self._reader.num_frames
                if unique[0] < 0 or unique[-1] >= n:
                    bad = unique[0] if unique[0] < 0 else unique[-1]
                    raise IndexError(f"frame index {bad} out of range for {n} frames")
                frames = self._reader.read(unique)
                break
            except Exception as err:  # any backend failure means: try the next backend
                self.errors[self.backend] = one_line(err)
                _log.debug("%s: %s failed (%s)", self.path, self.backend, self.errors[self.backend])
                self._reader.close()
                self._next_backend()
        if wanted == unique:  # sorted without repeats: the frames are already in order
            return torch.from_numpy(np.ascontiguousarray(frames))
        position = {frame: row for row, frame in enumerate(unique)}
        order = [position[i] for i in wanted]
        return torch.from_numpy(np.ascontiguousarray(frames[order]))

    def close(self) -> None:
        """Release the backend's handles (safe to call twice)."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> "Video":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------- warnings

# extension -> the FFmpeg demuxer names (tokens of `VideoHeader.format`) that may hide behind it
_EXTENSION_FORMATS = {".webm": {"matroska", "webm"}, ".mkv": {"matroska", "webm"},
                      ".mp4": {"mov", "mp4"}, ".m4v": {"mov", "mp4"}, ".mov": {"mov", "mp4"},
                      ".avi": {"avi"}}


def _short_format(name: str) -> str:
    """A demuxer name for messages: mp4 for "mov,mp4,m4a,3gp,3g2,mj2", matroska for
    "matroska,webm", any other name unchanged."""
    tokens = name.split(",")
    return next((t for t in ("mp4", "matroska") if t in tokens), name)


def _truncated_margin(expected: int) -> int:
    """Missing frames tolerated before a file counts as truncated: rounding of duration x fps
    and variable frame rates make the header's promise approximate."""
    return max(2, expected // 10)


def probe_warnings(video: Video) -> list[str]:
    """What is suspicious about an open video that decodes; [] for a healthy one.

    Checks, cheapest first, without decoding: the owner has no read permission (readable only as
    root); the extension disagrees with the container; the header promises clearly more frames
    than the backend can read (truncated); else a single frame.
    """
    problems: list[str] = []
    try:
        if not os.stat(video.path).st_mode & stat.S_IRUSR:
            why = ("readable only because we run as root" if os.geteuid() == 0
                   else "readable through its group or other bits")
            problems.append(f"no read permission for its owner ({why})")
    except (OSError, AttributeError):  # AttributeError: no geteuid (Windows)
        pass
    num_frames, header = video.num_frames, video.header
    if header is not None:
        ext = os.path.splitext(video.path)[1].lower()
        allowed = _EXTENSION_FORMATS.get(ext)
        if allowed and allowed.isdisjoint(header.format.split(",")):
            problems.append(f"extension {ext} but container is {_short_format(header.format)}")
        expected = header.expected_frames
        if expected and num_frames < expected - _truncated_margin(expected):
            problems.append(f"truncated: header says {expected} frames, decoded {num_frames}")
            return problems  # its single frame, if so, is the truncation's doing
    if num_frames == 1:
        problems.append("only 1 frame")
    return problems


def open_video(path: str | os.PathLike, backend: str = "auto",
               options: DecodeOptions = DecodeOptions()) -> Video:
    """Open a video with `backend` ("auto" = first of decord, pyav, torchcodec that works),
    decoding as `options` say (size, threads)."""
    return Video(path, backend, options)


def decode(path: str | os.PathLike, indices: Sequence[int] | torch.Tensor | np.ndarray,
           backend: str = "auto") -> torch.Tensor:
    """Frames at exactly `indices` (in order, repeats allowed) as uint8 (T, H, W, C)."""
    with open_video(path, backend) as video:
        return video.get(indices)


def count_frames(path: str | os.PathLike, backend: str = "auto") -> int:
    """Number of frames in the video, as the first backend that can open it reports."""
    with open_video(path, backend) as video:
        return video.num_frames
