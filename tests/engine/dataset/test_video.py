"""StreamingEncoder, stream-copy concatenation and probing, checked by decoding with PyAV directly."""

from __future__ import annotations

import threading
from pathlib import Path

import av
import numpy as np
import pytest

from engine.dataset import video
from engine.dataset.video import (
    EncoderError,
    Segment,
    StreamingEncoder,
    VideoAppender,
    VideoEncoding,
    encoder_available,
    probe_video,
    remux,
    video_frames,
    video_info_block,
)

H, W, FPS = 48, 64, 30
CODECS = ["libsvtav1", "libx264"]


def colour(i: int) -> tuple[int, int, int]:
    """Well-separated solid colours, so codec loss cannot make one frame look like another."""
    return ((i * 67) % 200 + 28, (i * 131) % 200 + 28, (i * 29) % 200 + 28)


def solid(i: int) -> np.ndarray:
    return np.broadcast_to(np.array(colour(i), np.uint8), (H, W, 3)).copy()


def decode(path: Path) -> list[tuple[float, np.ndarray]]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [(float(f.pts * s.time_base), f.to_ndarray(format="rgb24")) for f in c.decode(s)]


def encode(path: Path, first: int, n: int, codec: str, **kw: object) -> video.EncodedEpisode:
    enc = StreamingEncoder(
        path,
        fps=FPS,
        width=W,
        height=H,
        encoding=VideoEncoding(vcodec=codec).resolved(),
        queue_cap=1000,
        **kw,
    )
    for i in range(first, first + n):
        assert enc.put(solid(i))
    return enc.finish()


@pytest.mark.parametrize("codec", CODECS)
def test_every_fed_frame_is_in_the_video_at_its_timestamp(tmp_path: Path, codec: str) -> None:
    out = encode(tmp_path / "ep.mp4", 0, 12, codec)
    assert out.frames == 12 and out.size_bytes == (tmp_path / "ep.mp4").stat().st_size
    frames = decode(tmp_path / "ep.mp4")
    assert len(frames) == 12
    for k, (t, img) in enumerate(frames):
        assert abs(t - k / FPS) < 1e-4
        assert np.abs(img.reshape(-1, 3).mean(0) - colour(k)).max() < 8, (k, img.reshape(-1, 3).mean(0))
    assert out.stats is not None and out.stats["count"].tolist() == [12]
    expected = np.mean([colour(i) for i in range(12)], axis=0) / 255
    np.testing.assert_allclose(out.stats["mean"].reshape(3), expected, atol=1e-9)


def test_probe_reports_the_stream_and_info_block_keeps_encoder_fields(tmp_path: Path) -> None:
    encode(tmp_path / "a.mp4", 0, 4, "libsvtav1")
    encode(tmp_path / "b.mp4", 0, 4, "libx264")
    av1 = probe_video(tmp_path / "a.mp4")
    assert av1 == {
        "video.height": H,
        "video.width": W,
        "video.codec": "av1",
        "video.pix_fmt": "yuv420p",
        "video.fps": FPS,
        "video.channels": 3,
        "has_audio": False,
    }
    assert probe_video(tmp_path / "b.mp4")["video.codec"] == "h264"
    enc = VideoEncoding().resolved()
    block = video_info_block(tmp_path / "a.mp4", {"is_depth_map": False, **enc.info_fields()})
    assert list(block) == [
        "is_depth_map", "video.height", "video.width", "video.codec", "video.pix_fmt", "video.fps",
        "video.channels", "has_audio", "video.g", "video.crf", "video.preset", "video.fast_decode",
        "video.video_backend", "video.extra_options",
    ]  # fmt: skip
    assert (block["video.g"], block["video.crf"], block["video.preset"]) == (2, 30, 12)


@pytest.mark.parametrize("codec", CODECS)
def test_remux_concatenates_with_contiguous_timestamps_and_truncates(tmp_path: Path, codec: str) -> None:
    encode(tmp_path / "a.mp4", 0, 9, codec)
    encode(tmp_path / "b.mp4", 9, 6, codec)
    assert remux([Segment(tmp_path / "a.mp4"), Segment(tmp_path / "b.mp4")], tmp_path / "ab.mp4", FPS) == 15
    # Appending onto an already concatenated file, as the writer does at every save.
    encode(tmp_path / "c.mp4", 15, 5, codec)
    assert (
        remux([Segment(tmp_path / "ab.mp4", 15), Segment(tmp_path / "c.mp4")], tmp_path / "abc.mp4", FPS)
        == 20
    )
    frames = decode(tmp_path / "abc.mp4")
    assert len(frames) == 20 and video_frames(tmp_path / "abc.mp4") == (20, pytest.approx(20 / FPS))
    for k, (t, img) in enumerate(frames):
        assert abs(t - k / FPS) < 1e-4, (k, t)
        assert np.abs(img.reshape(-1, 3).mean(0) - colour(k)).max() < 8, k
    # Keeping only a prefix drops a tail segment (what recovery does with an uncommitted episode).
    assert remux([Segment(tmp_path / "abc.mp4", 15)], tmp_path / "trim.mp4", FPS) == 15
    assert [round(t * FPS) for t, _ in decode(tmp_path / "trim.mp4")] == list(range(15))
    with pytest.raises(EncoderError):
        remux([Segment(tmp_path / "a.mp4", 12)], tmp_path / "short.mp4", FPS)


def test_full_queue_marks_the_episode_broken_instead_of_dropping_frames(tmp_path: Path, monkeypatch) -> None:
    gate = threading.Event()
    real = video._to_video_frame

    def stalled(image: np.ndarray) -> av.VideoFrame:
        gate.wait(10)
        return real(image)

    monkeypatch.setattr(video, "_to_video_frame", stalled)
    enc = StreamingEncoder(
        tmp_path / "ep.mp4",
        fps=FPS,
        width=W,
        height=H,
        encoding=VideoEncoding(vcodec="libx264").resolved(),
        queue_cap=3,
    )
    accepted = [enc.put(solid(i)) for i in range(8)]
    # Frame 0 is either stalled in the thread or still queued; either way 3 frames wait when the cap is hit,
    # and from then on nothing is queued.
    assert accepted[:3] == [True] * 3 and not any(accepted[4:])
    assert enc.overflowed and enc.broken
    assert enc.frames_fed == 8 and enc.max_depth <= 3
    gate.set()
    with pytest.raises(EncoderError, match="Redo the episode"):
        enc.finish()
    enc.cancel()
    assert not (tmp_path / "ep.mp4").exists()


def test_encoder_failure_surfaces_at_finish_not_on_the_control_thread(tmp_path: Path) -> None:
    bad = VideoEncoding(vcodec="libx264", pix_fmt="no-such-format")
    enc = StreamingEncoder(tmp_path / "ep.mp4", fps=FPS, width=W, height=H, encoding=bad, queue_cap=10)
    enc.put(solid(0))
    enc._thread.join(10)
    assert enc.error is not None and enc.put(solid(1)) is False
    with pytest.raises(EncoderError, match="failed"):
        enc.finish()


def test_cancel_stops_the_thread_and_removes_the_file(tmp_path: Path) -> None:
    enc = StreamingEncoder(
        tmp_path / "ep.mp4",
        fps=FPS,
        width=W,
        height=H,
        encoding=VideoEncoding(vcodec="libx264").resolved(),
        queue_cap=50,
    )
    for i in range(5):
        enc.put(solid(i))
    enc.cancel()
    assert not enc._thread.is_alive() and not (tmp_path / "ep.mp4").exists()


def test_wrong_frame_shape_is_refused_immediately(tmp_path: Path) -> None:
    enc = StreamingEncoder(
        tmp_path / "ep.mp4",
        fps=FPS,
        width=W,
        height=H,
        encoding=VideoEncoding(vcodec="libx264").resolved(),
        queue_cap=5,
    )
    with pytest.raises(ValueError, match="48x64x3 uint8"):
        enc.put(np.zeros((H, W, 4), np.uint8))
    with pytest.raises(ValueError):
        enc.put(np.zeros((H, W, 3), np.float32))
    enc.cancel()


@pytest.mark.parametrize("codec", CODECS)
def test_one_frame_episodes_concatenate_at_the_dataset_fps(tmp_path: Path, codec: str) -> None:
    """A one-frame episode (a takeover of one tick) between longer ones: B-frame reordering would give it a
    different decode delay than its neighbours, and the stream copy would then stretch one frame."""
    lengths = [8, 1, 1, 5]
    first = 0
    for k, n in enumerate(lengths):
        encode(tmp_path / f"{k}.mp4", first, n, codec)
        first += n
    out = tmp_path / "all.mp4"
    assert remux([Segment(tmp_path / f"{k}.mp4") for k in range(len(lengths))], out, FPS) == first
    assert video_frames(out) == (first, pytest.approx(first / FPS))
    frames = decode(out)
    assert [round(t * FPS) for t, _ in frames] == list(range(first))
    for k, (_, img) in enumerate(frames):
        assert np.abs(img.reshape(-1, 3).mean(0) - colour(k)).max() < 8, k


def test_appending_to_a_file_recorded_with_b_frames_keeps_the_fps(tmp_path: Path) -> None:
    """A dataset recorded elsewhere with B-frames (decode delay 1), resumed by robotui (no B-frames)."""
    base = tmp_path / "bframes.mp4"
    with av.open(str(base), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=FPS, options={"g": "8", "bf": "2"})
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for i in range(8):
            for packet in s.encode(av.VideoFrame.from_ndarray(solid(i), format="rgb24")):
                c.mux(packet)
        for packet in s.encode(None):
            c.mux(packet)
    with av.open(str(base)) as c:
        assert any(p.dts is not None and p.pts is not None and p.dts < p.pts for p in c.demux(c.streams.video[0]))
    encode(tmp_path / "one.mp4", 8, 1, "libx264")
    appender = VideoAppender(tmp_path / "out.mp4", FPS, Segment(base))
    assert appender.append(tmp_path / "one.mp4") == 9
    assert video_frames(tmp_path / "out.mp4") == (9, pytest.approx(9 / FPS))
    assert [round(t * FPS) for t, _ in decode(tmp_path / "out.mp4")] == list(range(9))


def test_codec_options_and_selection() -> None:
    svt = VideoEncoding().resolved()
    assert svt.vcodec == "libsvtav1" and svt.preset == 12
    assert svt.codec_options() == {"g": "2", "crf": "30", "preset": "12", "svtav1-params": "fast-decode=0"}
    x264 = VideoEncoding(vcodec="h264", extra_options={"crf": "10", "bf": "3"}).resolved()
    assert x264.vcodec == "libx264" and x264.preset is None
    assert x264.codec_options() == {"bf": "0", "g": "2", "crf": "30"}  # extras never override structured keys
    assert VideoEncoding(vcodec="auto").resolved().vcodec in video.AUTO_CODECS
    assert video.pick_auto_codec(["no-such-encoder", "libx264"]) == "libx264"
    assert not encoder_available("libaom-av1-missing")
    with pytest.raises(EncoderError, match="not available"):
        VideoEncoding(vcodec="no-such-encoder").resolved()
    back = VideoEncoding.from_info({"video.codec": "av1", **svt.info_fields()})
    assert back == svt


@pytest.mark.parametrize("with_base", [True, False])
def test_appender_builds_base_plus_episode(tmp_path: Path, with_base: bool) -> None:
    encode(tmp_path / "base.mp4", 0, 10, "libx264")
    encode(tmp_path / "ep.mp4", 10, 4, "libx264")
    base = Segment(tmp_path / "base.mp4", 8) if with_base else None  # frames 8, 9 are an uncommitted tail
    app = VideoAppender(tmp_path / "out.mp4", FPS, base)
    first = 8 if with_base else 0
    assert app.append(tmp_path / "ep.mp4") == first + 4
    got = decode(tmp_path / "out.mp4")
    want = [*range(8), *range(10, 14)] if with_base else list(range(10, 14))
    assert len(got) == len(want)
    for k, ((t, img), src) in enumerate(zip(got, want, strict=True)):
        assert abs(t - k / FPS) < 1e-4
        assert np.abs(img.reshape(-1, 3).mean(0) - colour(src)).max() < 8, k


def test_appender_cancel_removes_its_temp_file(tmp_path: Path) -> None:
    encode(tmp_path / "base.mp4", 0, 6, "libx264")
    app = VideoAppender(tmp_path / "out.mp4", FPS, Segment(tmp_path / "base.mp4", 6))
    app.cancel()
    assert not (tmp_path / "out.mp4").exists() and not app._thread.is_alive()
    broken = VideoAppender(tmp_path / "out2.mp4", FPS, Segment(tmp_path / "missing.mp4", 3))
    with pytest.raises(EncoderError, match="could not copy"):
        broken.append(tmp_path / "base.mp4")
    broken.cancel()
    assert not (tmp_path / "out2.mp4").exists()
