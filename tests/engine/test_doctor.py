"""The doctor's checks: each one's ok/warn/fail decision and that every non-ok result carries a fix."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import doctor
from engine.doctor import (
    CHECKS,
    Check,
    check_cameras,
    check_disk,
    check_encoders,
    check_hf_offline,
    check_hf_token,
    check_hotkeys,
    check_mujoco_render,
    check_port_permissions,
    check_serial_ports,
    check_torch,
    dataset_root,
    run_check,
    run_checks,
)


@pytest.fixture
def emulator_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """One emulator-style port (a link to a real pty) in a private runtime dir."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    port_dir = tmp_path / "run" / "robotui" / "ports"
    port_dir.mkdir(parents=True)
    master, slave = os.openpty()
    link = port_dir / "ttyEMU-follower"
    link.symlink_to(os.ttyname(slave))
    yield link
    os.close(master)
    os.close(slave)


def test_run_checks_covers_every_check_with_a_fix_for_each_problem() -> None:
    checks = run_checks()
    assert [c.name for c in checks] == list(CHECKS)
    for check in checks:
        assert check.status in ("ok", "warn", "fail"), check
        assert check.detail, check
        if check.status != "ok":
            assert check.fix, f"{check.name} is {check.status} without a fix"
        assert "crashed" not in check.detail, check


def test_skip_leaves_checks_out_and_rejects_unknown_names() -> None:
    names = [c.name for c in run_checks(skip=[n for n in CHECKS if n not in ("hf-offline", "disk-space")])]
    assert names == ["hf-offline", "disk-space"]
    with pytest.raises(ValueError, match="unknown checks"):
        run_checks(skip=["nope"])


def test_a_crashing_check_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> Check:
        raise RuntimeError("boom")

    monkeypatch.setitem(CHECKS, "torch", broken)
    check = run_check("torch")
    assert (check.name, check.status) == ("torch", "fail")
    assert "boom" in check.detail and check.fix


# --- disk


def test_disk_space_thresholds(tmp_path: Path) -> None:
    assert check_disk(tmp_path, fail_below_gb=0, warn_below_gb=0).status == "ok"
    warn = check_disk(tmp_path, fail_below_gb=0, warn_below_gb=1e9)
    assert warn.status == "warn" and "HF_LEROBOT_HOME" in warn.fix
    fail = check_disk(tmp_path, fail_below_gb=1e9, warn_below_gb=1e9)
    assert fail.status == "fail" and "need at least" in fail.detail and fail.fix


def test_disk_check_uses_the_nearest_existing_parent(tmp_path: Path) -> None:
    root = tmp_path / "not" / "created" / "yet"
    check = check_disk(root, fail_below_gb=0, warn_below_gb=0)
    assert check.status == "ok" and str(root) in check.detail
    assert not root.exists()


def test_dataset_root_follows_lerobot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path / "lr"))
    assert dataset_root() == tmp_path / "lr"
    monkeypatch.delenv("HF_LEROBOT_HOME")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert dataset_root() == tmp_path / "hf" / "lerobot"
    monkeypatch.delenv("HF_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert dataset_root() == tmp_path / "cache" / "huggingface" / "lerobot"


# --- encoders


def test_encoders_present() -> None:
    assert check_encoders({"libsvtav1", "libx264", "mpeg4"}).status == "ok"
    assert check_encoders().status == "ok"  # the PyPI av wheel ships both


def test_missing_encoder_is_named_with_the_fix() -> None:
    check = check_encoders({"libx264"})
    assert check.status == "warn"
    assert "libsvtav1" in check.detail and "libx264" in check.detail
    assert "pip install" in check.fix


def test_no_encoder_blocks_recording() -> None:
    check = check_encoders({"mpeg4"})
    assert check.status == "fail" and "cannot be recorded" in check.detail and check.fix


# --- hub


def test_hf_token_from_env_is_found_but_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secretvalue")
    check = check_hf_token()
    assert check.status == "ok" and "env HF_TOKEN" in check.detail
    assert "hf_secretvalue" not in check.detail


def test_hf_token_from_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.delenv("HF_TOKEN_PATH", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    assert check_hf_token().status == "warn"
    (tmp_path / "token").write_text("hf_fromfile\n")
    check = check_hf_token()
    assert (
        check.status == "ok" and str(tmp_path / "token") in check.detail and "hf_fromfile" not in check.detail
    )


def test_no_token_warns_with_login_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    check = check_hf_token(token_path=tmp_path / "none")
    assert check.status == "warn" and "hf auth login" in check.fix


def test_offline_mode_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = check_hf_offline()
    assert offline.status == "warn" and "unset HF_HUB_OFFLINE" in offline.fix
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert check_hf_offline().status == "ok"


# --- hardware


def test_serial_ports_found_through_the_emulator_dir(emulator_port: Path) -> None:
    check = check_serial_ports()
    assert check.status == "ok" and f"{emulator_port} (emulator)" in check.detail
    assert check_port_permissions().status == "ok"


def test_no_serial_ports_is_a_warning_with_a_way_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "empty-run"))
    monkeypatch.setattr("drivers.ports.DEV_DIR", tmp_path)
    monkeypatch.setattr("drivers.ports.BY_ID_DIR", tmp_path)
    check = check_serial_ports()
    assert check.status == "warn" and check.detail == "no serial ports found"
    assert "robotui --sim" in check.fix


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux lists /dev/video*")
def test_cameras_none_and_unopenable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("drivers.cameras.opencv.VIDEO_DEV_DIR", tmp_path)
    none = check_cameras()
    assert none.status == "warn" and none.detail == "no cameras found" and "/dev/video" in none.fix
    (tmp_path / "video0").write_bytes(b"not a camera")
    locked = check_cameras()
    assert locked.status == "warn" and "none opens" in locked.detail and "video group" in locked.fix


def test_torch_reports_version_and_device() -> None:
    import torch

    check = check_torch()
    assert check.status == "ok" and torch.__version__ in check.detail
    assert any(device in check.detail for device in ("cuda", "mps", "cpu"))


def test_mujoco_renders_headless() -> None:
    check = check_mujoco_render()
    assert check.status == "ok", check


def test_broken_gl_backend_fails_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUJOCO_GL", "nonsense")
    check = check_mujoco_render()
    assert check.status == "fail" and "MUJOCO_GL=nonsense" in check.detail
    assert "MUJOCO_GL=egl" in check.fix and "libegl1" in check.fix


def test_hotkeys_without_a_display_is_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("the DISPLAY rule is Linux's")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("XDG_SESSION_TYPE", raising=False)
    check = check_hotkeys()
    assert check.status == "ok" and "no DISPLAY" in check.detail
    monkeypatch.setenv("XDG_SESSION_TYPE", "wayland")
    assert "Wayland" in check_hotkeys().detail


def test_checks_serialise_for_json() -> None:
    assert doctor.Check("x", "warn", "d", "f").as_dict() == {
        "name": "x",
        "status": "warn",
        "detail": "d",
        "fix": "f",
    }
