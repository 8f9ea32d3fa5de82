"""The headless commands through the real `robotui` parser: doctor, find-cameras, find-port (non-interactive)."""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from engine.doctor import CHECKS, Check
from robotui.cli import main


@pytest.fixture(autouse=True)
def _no_real_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the ports and cameras a test makes: no /dev devices, an empty emulator dir, stdin not a terminal."""
    empty = tmp_path / "no-devices"
    empty.mkdir()
    monkeypatch.setattr("drivers.ports.DEV_DIR", empty)
    monkeypatch.setattr("drivers.ports.BY_ID_DIR", empty)
    monkeypatch.setattr("drivers.cameras.opencv.VIDEO_DEV_DIR", empty)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))


class Ptys:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(exist_ok=True)
        self.fds: list[int] = []
        self.targets: dict[str, str] = {}

    def add(self, name: str) -> Path:
        master, slave = os.openpty()
        self.fds += [master, slave]
        self.targets[name] = os.ttyname(slave)
        return self.plug(name)

    def plug(self, name: str) -> Path:
        path = self.dir / name
        path.symlink_to(self.targets[name])
        return path

    def unplug(self, name: str) -> None:
        (self.dir / name).unlink()


@pytest.fixture
def ports(tmp_path: Path) -> Iterator[Ptys]:
    p = Ptys(tmp_path / "ports")
    yield p
    for fd in p.fds:
        os.close(fd)


@pytest.fixture
def later() -> Iterator[Callable[[float, Callable[[], None]], None]]:
    """Schedule a plug/unplug on a timer; every timer is cancelled and joined at teardown."""
    timers: list[threading.Timer] = []

    def schedule(delay_s: float, action: Callable[[], None]) -> None:
        timer = threading.Timer(delay_s, action)
        timers.append(timer)
        timer.start()

    yield schedule
    for timer in timers:
        timer.cancel()
        timer.join(timeout=2)


# --- doctor


def test_doctor_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in report["checks"]] == list(CHECKS)
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    assert report["ok"] is (not failed)
    assert code == (1 if failed else 0)
    assert all(c["fix"] for c in report["checks"] if c["status"] != "ok")


def test_doctor_exits_non_zero_when_a_check_fails(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        CHECKS, "torch", lambda: Check("torch", "fail", "torch is broken", "pip install torch")
    )
    skip = [arg for name in CHECKS if name not in ("torch", "hf-offline") for arg in ("--skip", name)]
    assert main(["doctor", *skip]) == 1
    out = capsys.readouterr().out
    assert "torch is broken" in out and "To fix:" in out and "pip install torch" in out
    assert "1 failed" in out
    assert main(["doctor", "--json", *skip]) == 1
    assert json.loads(capsys.readouterr().out)["ok"] is False


# --- find-cameras


def test_find_cameras_with_none_says_what_to_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["find-cameras"]) == 0
    out = capsys.readouterr().out
    assert "No cameras found." in out and "dmesg" in out and "robotui --sim" in out
    assert main(["find-cameras", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_find_cameras_saves_a_picture_per_camera(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = tmp_path / "cam.mp4"
    container = av.open(str(video), "w")
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    for _ in range(60):
        image = np.full((48, 64, 3), (0, 200, 0), np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()

    out_dir = tmp_path / "captured"
    argv = ["find-cameras", "--target", str(video), "--output-dir", str(out_dir), "--record-time-s", "0.2"]
    assert main([*argv, "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["id"] == str(video) and entry["error"] is None
    assert entry["default_stream_profile"]["width"] == 64 and entry["measured_fps"] > 0
    picture = Path(entry["image"])
    assert picture.parent == out_dir and picture.suffix == ".png"
    with Image.open(picture) as img:
        assert img.size == (64, 48)
        red, green, blue = img.getpixel((32, 24))
        assert green > 150 and red < 60 and blue < 60

    assert main(argv) == 0
    assert "Pictures saved in" in capsys.readouterr().out


# --- find-port


def test_find_port_names_the_port_that_disappears_and_confirms_the_replug(
    ports: Ptys, later: Callable, capsys: pytest.CaptureFixture[str]
) -> None:
    follower = ports.add("ttyEMU-follower")
    ports.add("ttyEMU-leader")
    later(0.3, lambda: ports.unplug("ttyEMU-follower"))
    later(1.2, lambda: ports.plug("ttyEMU-follower"))
    code = main(["find-port", "--extra-dir", str(ports.dir), "--timeout", "10", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result == {
        "port": str(follower),
        "by_id": None,
        "replugged": True,
        "port_after_replug": str(follower),
        "error": None,
    }
    assert "Unplug the arm's USB cable" in captured.err and f"The arm's port is {follower}" in captured.err


def test_find_port_reports_a_new_name_after_replug(
    ports: Ptys, later: Callable, capsys: pytest.CaptureFixture[str]
) -> None:
    ports.add("ttyEMU-a")
    master, slave = os.openpty()
    ports.fds += [master, slave]
    later(0.2, lambda: ports.unplug("ttyEMU-a"))
    later(1.0, lambda: (ports.dir / "ttyEMU-b").symlink_to(os.ttyname(slave)))
    assert main(["find-port", "--extra-dir", str(ports.dir), "--timeout", "10"]) == 0
    out = capsys.readouterr().out
    assert f"The arm's port is {ports.dir / 'ttyEMU-a'}" in out
    assert f"came back as {ports.dir / 'ttyEMU-b'}" in out


def test_find_port_times_out_clearly(ports: Ptys, capsys: pytest.CaptureFixture[str]) -> None:
    ports.add("ttyEMU-follower")
    assert main(["find-port", "--extra-dir", str(ports.dir), "--timeout", "0.3"]) == 1
    out = capsys.readouterr().out
    assert "No port disappeared within 0.3 s" in out and "cable" in out


def test_find_port_refuses_to_guess_when_several_vanish(
    ports: Ptys, later: Callable, capsys: pytest.CaptureFixture[str]
) -> None:
    ports.add("ttyEMU-left")
    ports.add("ttyEMU-right")

    def pull_the_hub() -> None:
        ports.unplug("ttyEMU-left")
        ports.unplug("ttyEMU-right")

    later(0.2, pull_the_hub)
    assert main(["find-port", "--extra-dir", str(ports.dir), "--timeout", "10", "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["error"] == "several-ports"
    assert "2 ports disappeared at once" in captured.err


def test_find_port_with_no_ports(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["find-port", "--timeout", "1"]) == 1
    assert "No serial ports found" in capsys.readouterr().out
