"""Streaming video encoding during capture, stream-copy concatenation, and probing for info.json.

One `StreamingEncoder` per camera and episode: the control thread only copies the frame into a queue, a
worker thread encodes it with PyAV at `pts = frame index`, `time_base = 1/fps`, so saving an episode only
flushes the encoder's tail. Unlike LeRobot's streaming encoder, a full queue never drops a frame silently: the
episode is marked broken and refused at save, because a video shorter than its parquet rows fails every
timestamp lookup later (lerobot-interop.md §4.6, §5.6).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from engine.dataset.stats import ImageStatsAccumulator, Stats

log = logging.getLogger(__name__)

# `auto` tries these in order; the hardware names are listed by PyAV even where they cannot open, so each
# is probed. libx264 closes the list for builds without SVT-AV1.
AUTO_CODECS = (
    "h264_videotoolbox",
    "hevc_videotoolbox",
    "h264_nvenc",
    "hevc_nvenc",
    "h264_vaapi",
    "h264_qsv",
    "libsvtav1",
    "libx264",
)
CODEC_ALIASES = {"av1": "libsvtav1", "h264": "libx264", "hevc": "libx265"}
# Canonical stream codec (what info.json records) back to the encoder that writes it, for resume.
ENCODER_FOR_CODEC = {"av1": "libsvtav1", "h264": "libx264", "hevc": "libx265"}


class EncoderError(RuntimeError):
    """The encoder failed or fell behind; the episode cannot be saved and must be recorded again."""


@dataclass(frozen=True)
class VideoEncoding:
    """Encoder settings; defaults are LeRobot's `RGBEncoderConfig` (libsvtav1, yuv420p, g=2, crf=30)."""

    vcodec: str = "libsvtav1"
    pix_fmt: str = "yuv420p"
    g: int | None = 2
    crf: int | None = 30
    preset: int | str | None = None  # None: 12 for libsvtav1, the encoder's default otherwise
    fast_decode: int = 0
    threads: int | None = None
    extra_options: Mapping[str, str] = field(default_factory=dict)

    def resolved(self) -> VideoEncoding:
        """Aliases and `auto` replaced by a concrete, openable encoder; libsvtav1's preset filled in."""
        name = CODEC_ALIASES.get(self.vcodec, self.vcodec)
        if name == "auto":
            name = pick_auto_codec()
        elif not encoder_available(name):
            raise EncoderError(
                f"video encoder '{name}' is not available here (try vcodec='libx264' or 'auto')"
            )
        preset = self.preset
        if preset is None and name == "libsvtav1":
            preset = 12
        return replace(self, vcodec=name, preset=preset)

    def codec_options(self) -> dict[str, str]:
        """PyAV/FFmpeg options for the encoder; `extra_options` never override the structured ones."""
        opts: dict[str, str] = {}
        name = self.vcodec
        if self.g is not None:
            opts["g"] = str(self.g)
        if name != "libsvtav1":
            # No B-frames: their reordering delay depends on the episode's length (a 1-frame episode has
            # none), and episodes are concatenated by stream copy, which needs one delay for the whole file.
            opts["bf"] = "0"
        if name == "libsvtav1":
            if self.crf is not None:
                opts["crf"] = str(self.crf)
            if self.preset is not None:
                opts["preset"] = str(self.preset)
            params = f"fast-decode={self.fast_decode}"
            if self.threads:
                params += f":lp={self.threads}"
            opts["svtav1-params"] = params
        elif name in ("libx264", "libx265"):
            if self.crf is not None:
                opts["crf"] = str(self.crf)
            if self.preset is not None:
                opts["preset"] = str(self.preset)
            if self.fast_decode:
                opts["tune"] = "fastdecode"
            if self.threads:
                opts["threads"] = str(self.threads)
        elif name.endswith("_nvenc"):
            opts["rc"] = "constqp"
            if self.crf is not None:
                opts["qp"] = str(self.crf)
            if self.preset is not None:
                opts["preset"] = str(self.preset)
        elif name.endswith("_videotoolbox") and self.crf is not None:
            opts["global_quality"] = str(max(1, min(100, 100 - 2 * self.crf)))
        elif name.endswith("_vaapi") and self.crf is not None:
            opts["qp"] = str(self.crf)
        elif name.endswith("_qsv") and self.crf is not None:
            opts["global_quality"] = str(self.crf)
        return {**{k: str(v) for k, v in self.extra_options.items()}, **opts}

    def info_fields(self) -> dict[str, Any]:
        """The encoder half of a video feature's `info` block (the stream half comes from `probe_video`)."""
        return {
            "video.pix_fmt": self.pix_fmt,
            "video.g": self.g,
            "video.crf": self.crf,
            "video.preset": self.preset,
            "video.fast_decode": self.fast_decode,
            "video.video_backend": "pyav",
            "video.extra_options": dict(self.extra_options),
        }

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> VideoEncoding:
        """The settings a dataset was recorded with, from a filled video `info` block (used on resume)."""
        codec = info.get("video.codec")
        if codec is None:
            raise ValueError("the video info block has no video.codec")
        return cls(
            vcodec=ENCODER_FOR_CODEC.get(codec, codec),
            pix_fmt=info.get("video.pix_fmt", "yuv420p"),
            g=info.get("video.g", 2),
            crf=info.get("video.crf", 30),
            preset=info.get("video.preset"),
            fast_decode=info.get("video.fast_decode", 0) or 0,
            extra_options=dict(info.get("video.extra_options") or {}),
        )


@functools.cache
def encoder_available(name: str) -> bool:
    """True when the encoder opens here (listed hardware encoders often fail to open without the device)."""
    _quiet_svt()
    try:
        ctx = av.CodecContext.create(name, "w")
        ctx.width, ctx.height, ctx.pix_fmt = 64, 64, "yuv420p"
        ctx.time_base = Fraction(1, 30)
        ctx.open()
    except Exception:
        return False
    return True


def pick_auto_codec(candidates: Sequence[str] = AUTO_CODECS) -> str:
    for name in candidates:
        if encoder_available(name):
            return name
    raise EncoderError(f"none of the video encoders {list(candidates)} is available")


def _quiet_svt() -> None:
    # SVT-AV1 prints its banner and warnings straight to fd 2, which garbles a terminal UI; keep errors only.
    os.environ.setdefault("SVT_LOG", "1")


# ------------------------------------------------------------------------------------------------ encoder


def _to_video_frame(image: np.ndarray) -> av.VideoFrame:
    """Kept as a module function so tests can stall the encoder thread deterministically."""
    return av.VideoFrame.from_ndarray(image, format="rgb24")


@dataclass(frozen=True)
class EncodedEpisode:
    path: Path
    frames: int
    size_bytes: int
    stats: Stats | None  # image stats in [0, 1] units, (3, 1, 1)


_STOP = object()


class StreamingEncoder:
    """Encodes one camera's frames of one episode on its own thread as they arrive.

    `put` never blocks: it copies the frame into an unbounded queue but refuses once `queue_cap` frames are
    waiting, marking the episode broken (`overflowed`) instead of dropping frames unnoticed. The queue depth,
    frames fed and frames encoded are plain attributes the UI may read at any time.
    """

    def __init__(
        self,
        path: Path,
        *,
        fps: int,
        width: int,
        height: int,
        encoding: VideoEncoding,
        queue_cap: int,
        name: str = "camera",
        compute_stats: bool = True,
    ) -> None:
        if queue_cap < 1:
            raise ValueError("queue_cap must be at least 1")
        self.path = Path(path)
        self.fps = int(fps)
        self.width, self.height = int(width), int(height)
        self.encoding = encoding
        self.queue_cap = queue_cap
        self.name = name
        self.frames_fed = 0
        self.frames_encoded = 0
        self.max_depth = 0
        self.overflowed = False
        self.error: BaseException | None = None
        self._stats = ImageStatsAccumulator() if compute_stats else None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._abandon = threading.Event()
        self._finish_sent = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name=f"encoder-{name}", daemon=True)
        self._thread.start()

    # ---- control-thread side

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    @property
    def lag_s(self) -> float:
        """How far the encoder trails capture, in seconds of video."""
        return self.queue_depth / self.fps

    @property
    def broken(self) -> bool:
        return self.overflowed or self.error is not None

    def put(self, frame: np.ndarray) -> bool:
        """Queue a copy of an HxWx3 uint8 frame. False when the episode is already broken (frame not kept)."""
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"{self.name}: expected a {self.height}x{self.width}x3 uint8 frame, got {frame.shape} {frame.dtype}"
            )
        if self._finish_sent:
            raise RuntimeError(f"{self.name}: frame after finish")
        self.frames_fed += 1
        if self.broken:
            return False
        depth = self._queue.qsize()
        if depth >= self.queue_cap:
            self.overflowed = True
            self._abandon.set()
            log.error("%s: encoder queue reached %d frames; episode marked unsavable", self.name, depth)
            return False
        self._queue.put(np.array(frame, copy=True))
        self.max_depth = max(self.max_depth, depth + 1)
        return True

    def request_finish(self) -> None:
        """Ask the thread to flush and close (lets several cameras flush in parallel before `finish`)."""
        if not self._finish_sent:
            self._finish_sent = True
            self._queue.put(_STOP)

    def finish(self, timeout: float | None = 120.0) -> EncodedEpisode:
        """Flush the encoder's tail and return the complete episode mp4; raises EncoderError if unusable."""
        self.request_finish()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abandon.set()
            raise EncoderError(f"{self.name}: the video encoder did not finish within {timeout} s")
        self._raise_if_broken()
        if self.frames_fed == 0:
            raise EncoderError(f"{self.name}: no frames were recorded")
        if self.frames_encoded != self.frames_fed:
            raise EncoderError(f"{self.name}: encoded {self.frames_encoded} of {self.frames_fed} frames")
        frames, _ = video_frames(self.path)
        if frames != self.frames_fed:
            raise EncoderError(
                f"{self.name}: the episode video holds {frames} frames, {self.frames_fed} were fed"
            )
        stats = self._stats.stats() if self._stats is not None else None
        return EncodedEpisode(self.path, frames, self.path.stat().st_size, stats)

    def cancel(self) -> None:
        """Stop without saving: the thread discards what is queued and the partial file is removed."""
        self._abandon.set()
        self.request_finish()
        self._thread.join(30.0)
        self.path.unlink(missing_ok=True)

    def _raise_if_broken(self) -> None:
        if self.overflowed:
            raise EncoderError(
                f"{self.name}: the video encoder fell {self.queue_cap} frames behind capture, so this episode's "
                "video would not match its data. Redo the episode, and lower the camera resolution or fps, "
                "or record with vcodec='libx264' (faster than libsvtav1 on a small CPU)."
            )
        if self.error is not None:
            raise EncoderError(f"{self.name}: the video encoder failed: {self.error!r}") from self.error

    # ---- encoder thread

    def _run(self) -> None:
        container = stream = None
        tb = Fraction(1, self.fps)
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    break
                if self._abandon.is_set():
                    continue  # broken or cancelled: drain without spending CPU
                if container is None:
                    container, stream = self._open()
                vf = _to_video_frame(item)
                vf.pts = self.frames_encoded
                vf.time_base = tb
                for packet in stream.encode(vf):
                    container.mux(packet)
                if self._stats is not None:
                    self._stats.add(item)
                self.frames_encoded += 1
            if container is not None and not self._abandon.is_set():
                for packet in stream.encode(None):
                    container.mux(packet)
        except BaseException as exc:  # reported through finish(); the control thread must never see it raise
            self.error = exc
            self._abandon.set()
            log.exception("%s: video encoder failed", self.name)
        finally:
            if container is not None:
                try:
                    container.close()
                except Exception as exc:
                    if self.error is None:
                        self.error = exc

    def _open(self) -> tuple[Any, Any]:
        if self.encoding.vcodec == "libsvtav1":
            _quiet_svt()
        container = av.open(str(self.path), "w", format="mp4")
        stream = container.add_stream(
            self.encoding.vcodec, rate=self.fps, options=self.encoding.codec_options()
        )
        stream.width, stream.height = self.width, self.height
        stream.pix_fmt = self.encoding.pix_fmt
        stream.time_base = Fraction(1, self.fps)
        return container, stream


# ------------------------------------------------------------------------------------- concat and probing


@dataclass(frozen=True)
class Segment:
    """Part of a remux: the first `frames` frames of `path` (all of them when None)."""

    path: Path
    frames: int | None = None


class _Muxer:
    """An mp4 built by stream-copying segments one after another, each shifted to start at the frame after
    the previous one, so frame k of the result sits at exactly k/fps (LeRobot's `from_timestamp + timestamp`
    lookup needs that). Segments must share codec, size, pix_fmt and time base, as one encoder config makes
    them.

    Decode timestamps are kept continuous across segments: a segment encoded with less reordering delay than
    the one before it (a file recorded with B-frames, resumed without them) would otherwise leave a gap that
    the container reads as one long frame, and the video would no longer play at the dataset's fps.
    """

    def __init__(self, container: Any, fps: int) -> None:
        self.out = container
        self.fps = fps
        self.stream: Any = None
        self.frames = 0
        self._next_dts: int | None = None  # the decode time the next packet may take at the latest

    def copy(self, seg: Segment) -> int:
        """Append `seg`; returns the frames copied."""
        with av.open(str(seg.path)) as src:
            istream = src.streams.video[0]
            if self.stream is None:
                self.stream = self.out.add_stream_from_template(istream, opaque=True)
            tb = istream.time_base
            offset = Fraction(self.frames, self.fps) / tb
            if offset.denominator != 1:
                raise EncoderError(f"{seg.path}: time base {tb} cannot hold frame boundaries at {self.fps} fps")
            cutoff = None if seg.frames is None else Fraction(seg.frames, self.fps) / tb
            kept = 0
            dts_shift: int | None = None
            for packet in src.demux(istream):
                if packet.pts is None:
                    continue  # the demuxer's end-of-stream marker
                if cutoff is not None and packet.pts >= cutoff:
                    continue
                packet.pts += int(offset)
                if packet.dts is not None:
                    if dts_shift is None:
                        gap = 0 if self._next_dts is None else packet.dts + int(offset) - self._next_dts
                        dts_shift = int(offset) - max(gap, 0)
                    packet.dts += dts_shift
                    self._next_dts = packet.dts + (packet.duration or int(Fraction(1, self.fps) / tb))
                packet.stream = self.stream
                self.out.mux(packet)
                kept += 1
        if seg.frames is not None and kept != seg.frames:
            raise EncoderError(f"{seg.path}: wanted {seg.frames} frames, found {kept}")
        self.frames += kept
        return kept


def remux(segments: Sequence[Segment], output: Path, fps: int) -> int:
    """Stream-copy segments one after another into `output` (no re-encode); returns the frame count.

    No `faststart`: moving the index to the front would rewrite the whole file at every save, and readers
    (PyAV, torchcodec, HTTP range requests) do not need it.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(output), "w", format="mp4") as out:
        muxer = _Muxer(out, fps)
        for seg in segments:
            muxer.copy(seg)
    return muxer.frames


class VideoAppender:
    """Builds "the camera's current file + the new episode" in `output` (a temp file), in two steps.

    While the episode is recorded, a thread stream-copies what the current file already holds (`base`) and
    fsyncs it; `append` then only copies the episode's own packets and closes the file. So a save costs the
    episode's size, not the file's, however large the file has grown.
    """

    def __init__(self, output: Path, fps: int, base: Segment | None) -> None:
        self.output = output
        self.fps = fps
        self._base = base
        self._muxer: _Muxer | None = None
        self._error: BaseException | None = None
        self._done = False
        output.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(
            target=self._prepare, name=f"appender-{output.parent.name}", daemon=True
        )
        self._thread.start()

    def _prepare(self) -> None:
        try:
            self._muxer = _Muxer(av.open(str(self.output), "w", format="mp4"), self.fps)
            if self._base is not None:
                self._muxer.copy(self._base)
                fd = os.open(self.output, os.O_RDONLY)  # flush the copy now, so the commit's fsync is short
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except BaseException as exc:
            self._error = exc

    def append(self, episode: Path, timeout: float | None = 120.0) -> int:
        """Add the episode's packets after the base and close the file; returns the file's frame count."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise EncoderError(f"copying {self._base} did not finish within {timeout} s")
        if self._error is not None:
            raise EncoderError(f"could not copy the current video file: {self._error!r}") from self._error
        muxer = self._muxer
        assert muxer is not None
        try:
            muxer.copy(Segment(episode))
            muxer.out.close()
        except BaseException:
            with contextlib.suppress(Exception):
                muxer.out.close()
            raise
        finally:
            self._done = True
        return muxer.frames

    def cancel(self) -> None:
        """Abandon the build and remove the temp file."""
        self._thread.join()
        if self._muxer is not None and not self._done:
            with contextlib.suppress(Exception):
                self._muxer.out.close()
        self._done = True
        self.output.unlink(missing_ok=True)


def video_frames(path: Path) -> tuple[int, float]:
    """(frame count, duration in s) of a video file's first video stream, from the container header."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = s.frames
        if not frames:  # containers without a frame count in the header: count packets
            frames = sum(1 for p in c.demux(s) if p.pts is not None)
        duration = (
            float(s.duration * s.time_base) if s.duration is not None else frames / float(s.average_rate)
        )
    return int(frames), duration


def probe_video(path: Path) -> dict[str, Any]:
    """The stream half of a video feature's `info` block, as LeRobot's `get_video_info` reports it."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        cc = s.codec_context
        fmt = cc.format
        info: dict[str, Any] = {
            "video.height": int(cc.height),
            "video.width": int(cc.width),
            "video.codec": cc.codec.canonical_name,
            "video.pix_fmt": cc.pix_fmt,
            "video.fps": int(s.base_rate or s.average_rate),
            "video.channels": len(fmt.components) if fmt is not None else 3,
            "has_audio": bool(c.streams.audio),
        }
        if c.streams.audio:
            a = c.streams.audio[0]
            info.update(
                {
                    "audio.channels": a.channels,
                    "audio.codec": a.codec_context.codec.canonical_name,
                    "audio.bit_rate": a.bit_rate,
                    "audio.sample_rate": a.sample_rate,
                    "audio.bit_depth": a.format.bits if a.format is not None else None,
                    "audio.channel_layout": a.layout.name if a.layout is not None else None,
                }
            )
    return info


def video_info_block(path: Path, known: Mapping[str, Any]) -> dict[str, Any]:
    """A video feature's complete `info` block: the stream's fields from `path`, then the `known` ones
    (encoder settings recorded at creation) where the stream says nothing, as LeRobot's `update_video_info`."""
    block: dict[str, Any] = {"is_depth_map": bool(known.get("is_depth_map", False)), **probe_video(path)}
    for key, value in known.items():
        block.setdefault(key, value)
    return block
