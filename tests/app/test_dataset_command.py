"""`robotui dataset info|check|push` on LeRobot-style datasets, through the command's own parser."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from robotui.commands import dataset as dataset_command
from tests.engine.dataset.lerobot_fixture import LeRobotStyleDataset, write_lerobot_style_dataset


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="robotui")
    dataset_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps at 80 columns otherwise


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> LeRobotStyleDataset:
    root = tmp_path_factory.mktemp("cmd") / "ds"
    return write_lerobot_style_dataset(
        root, [5, 7, 4], {"front": (32, 48), "wrist": (16, 16)}, episode_tasks=["pick", "place", "pick"]
    )


@pytest.fixture
def ds(good: LeRobotStyleDataset, tmp_path: Path) -> Path:
    shutil.copytree(good.root, tmp_path / "ds")
    return tmp_path / "ds"


def test_info(good: LeRobotStyleDataset, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["dataset", "info", str(good.root)]) == 0
    out = capsys.readouterr().out
    lines = {line.split("  ")[0].strip(): line for line in out.splitlines() if line.strip()}
    assert "so101_follower" in lines["robot type"]
    assert lines["fps"].split()[-1] == "30"
    assert lines["episodes"].split()[-1] == "3"
    assert "16 (0.5 s)" in lines["frames"]
    assert "2: pick; place" in lines["tasks"]
    assert "observation.images.front 48x32 h264" in out and "observation.images.wrist 16x16 h264" in out
    assert "KiB" in lines["size on disk"]


def test_info_json(good: LeRobotStyleDataset, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["dataset", "info", str(good.root), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["episodes"], summary["frames"], summary["fps"]) == (3, 16, 30)
    assert summary["duration_s"] == pytest.approx(16 / 30)
    assert summary["tasks"] == ["pick", "place"]
    assert summary["cameras"][0] == {
        "key": "observation.images.front",
        "height": 32,
        "width": 48,
        "storage": "video",
        "codec": "h264",
    }
    assert summary["size_bytes"] == sum(p.stat().st_size for p in good.root.rglob("*") if p.is_file())


def test_info_probes_codec_when_info_has_no_video_block(ds: Path, capsys: pytest.CaptureFixture[str]) -> None:
    info = json.loads((ds / "meta/info.json").read_text())
    for ft in info["features"].values():
        ft.pop("info", None)
    (ds / "meta/info.json").write_text(json.dumps(info))
    assert cli(["dataset", "info", str(ds), "--json"]) == 0
    assert {c["codec"] for c in json.loads(capsys.readouterr().out)["cameras"]} == {"h264"}


def test_info_on_uncached_repo_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["dataset", "info", "someone/not-here"]) == 1
    err = capsys.readouterr().err
    assert "not cached" in err and "HF_HUB_OFFLINE" in err


def test_check_good(good: LeRobotStyleDataset, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["dataset", "check", str(good.root)]) == 0
    assert "no problems found" in capsys.readouterr().out
    assert cli(["dataset", "check", str(good.root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "errors": 0, "warnings": 0, "problems": []}


def test_check_reports_problems_with_fixes(ds: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (ds / "videos/observation.images.wrist/chunk-000/file-000.mp4").unlink()
    assert cli(["dataset", "check", str(ds)]) == 1
    out = capsys.readouterr().out
    assert "videos/observation.images.wrist/chunk-000/file-000.mp4" in out and "[video-missing]" in out
    assert "restore the file" in out and "1 error, 0 warnings" in out
    assert cli(["dataset", "check", str(ds), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and [p["code"] for p in report["problems"]] == ["video-missing"]
    assert set(report["problems"][0]) == {"severity", "code", "where", "what", "fix"}


def test_check_warnings_pass_unless_strict(ds: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (ds / "images").mkdir()
    (ds / "images" / "frame-000000.png").write_bytes(b"png")
    assert cli(["dataset", "check", str(ds)]) == 0
    assert "0 errors, 1 warning" in capsys.readouterr().out
    assert cli(["dataset", "check", str(ds), "--strict"]) == 1


def test_check_repair(ds: Path, capsys: pytest.CaptureFixture[str]) -> None:
    info = json.loads((ds / "meta/info.json").read_text())
    info["total_frames"] = 99
    (ds / "meta/info.json").write_text(json.dumps(info, indent=4))
    assert cli(["dataset", "check", str(ds)]) == 1
    capsys.readouterr()
    assert cli(["dataset", "check", str(ds), "--repair"]) == 0
    out = capsys.readouterr().out
    assert "repair:" in out and "no problems found" in out
    assert json.loads((ds / "meta/info.json").read_text())["total_frames"] == 16


def test_check_missing_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["dataset", "check", str(tmp_path / "nope")]) == 1
    assert "[root-missing]" in capsys.readouterr().out


def test_push_dry_run_lists_the_upload(ds: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (ds / "images").mkdir()
    (ds / "images" / "frame-000000.png").write_bytes(b"png")
    assert cli(["dataset", "push", str(ds), "--repo-id", "me/pick", "--dry-run", "--private"]) == 0
    out = capsys.readouterr().out
    assert "data/chunk-000/file-000.parquet" in out and "meta/info.json" in out
    assert "README.md  (generated dataset card)" in out and "images/" not in out
    n_files = sum(1 for p in ds.rglob("*") if p.is_file() and "images" not in p.parts) + 1
    assert f"would upload {n_files} files" in out and "to datasets/me/pick (private) and tag it v3.0" in out


def test_push_dry_run_refuses_invalid(ds: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (ds / "meta/stats.json").unlink()
    assert cli(["dataset", "push", str(ds), "--repo-id", "me/pick", "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert "stats-missing" in err and "nothing would be uploaded" in err


def test_push_offline(ds: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["dataset", "push", str(ds), "--repo-id", "me/pick"]) == 1
    assert "HF_HUB_OFFLINE is set" in capsys.readouterr().err


def test_no_action_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["dataset"]) == 2
    assert "robotui dataset {info,check,push}" in capsys.readouterr().err
