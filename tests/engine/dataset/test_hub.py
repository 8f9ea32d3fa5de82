"""Hub push without a network: the card, the upload plan, the refusals, and the call sequence on an HfApi."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import DatasetCard
from huggingface_hub.errors import HfHubHTTPError, RevisionNotFoundError

from engine.dataset import hub
from engine.dataset.hub import (
    CARD_PATH,
    DatasetInvalidError,
    HubAuthError,
    HubOfflineError,
    build_dataset_card,
    push_dataset,
    upload_plan,
)
from tests.engine.dataset.lerobot_fixture import LeRobotStyleDataset, write_lerobot_style_dataset

httpx2 = pytest.importorskip("httpx2")  # the HTTP client huggingface_hub builds its errors from


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> LeRobotStyleDataset:
    root = tmp_path_factory.mktemp("hub") / "ds"
    return write_lerobot_style_dataset(root, [4, 3], {"front": (32, 48)}, episode_tasks=["pick", "place"])


@pytest.fixture
def ds(good: LeRobotStyleDataset, tmp_path: Path) -> Path:
    shutil.copytree(good.root, tmp_path / "ds")
    return tmp_path / "ds"


class RecordingApi:
    """Stands in for HfApi: records each call, optionally fails one."""

    def __init__(self, fail: dict[str, Exception] | None = None) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []
        self.fail = fail or {}

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, args, kwargs))
            if name in self.fail:
                raise self.fail[name]

        return call

    @property
    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


def http_error(cls: type[HfHubHTTPError], status: int) -> HfHubHTTPError:
    response = httpx2.Response(status, request=httpx2.Request("POST", "https://huggingface.co/api/x"))
    return cls(f"{status} error", response=response)


def test_card_has_the_metadata_lerobot_and_the_hub_use(good: LeRobotStyleDataset) -> None:
    info = json.loads((good.root / "meta/info.json").read_text())
    text = build_dataset_card(
        info, repo_id="me/so101_pick", tags=["so101", "LeRobot"], tasks=["pick", "place"]
    )
    card = DatasetCard(text)
    assert card.data.tags == ["LeRobot", "robotui", "so101"]
    assert card.data.task_categories == ["robotics"]
    assert card.data.configs == [{"config_name": "default", "data_files": "data/*/*.parquet"}]
    assert card.data.license == "apache-2.0"
    body = card.text
    assert "# me/so101_pick" in body and 'LeRobotDataset("me/so101_pick")' in body
    assert "| Robot type | `so101_follower` |" in body
    assert "| Episodes | 2 |" in body and "| Frames | 7 (0.2 s at 30 fps) |" in body
    assert "`observation.images.front` 48x32 (h264)" in body
    assert "- pick\n- place" in body
    assert json.loads(body.split("```json\n")[1].split("\n```")[0]) == info


def test_upload_plan_leaves_out_temporary_files(ds: Path) -> None:
    expected = sorted(p.relative_to(ds).as_posix() for p in ds.rglob("*") if p.is_file())
    leftovers = [
        "images/observation.images.front/episode-000002/frame-000000.png",
        "meta/info.json.robotui-tmp",
        ".robotui-staging/observation.images.front.mp4",
        "videos/observation.images.front/chunk-000/file-001.mp4.tmp",
        ".cache/huggingface/download/meta/info.json.metadata",
        ".git/config",
        "README.md",
    ]
    for rel in leftovers:
        (ds / rel).parent.mkdir(parents=True, exist_ok=True)
        (ds / rel).write_text("x")
    plan = upload_plan(ds)
    assert plan == [*expected, CARD_PATH]
    assert "data/chunk-000/file-000.parquet" in plan and "meta/tasks.parquet" in plan


def test_push_offline_says_how_to_get_online(ds: Path) -> None:
    api = RecordingApi()
    with pytest.raises(HubOfflineError, match="HF_HUB_OFFLINE is set") as info:
        push_dataset(ds, "me/so101_pick", api=api)
    assert "passed validation" in str(info.value)
    assert api.calls == []


def test_push_refuses_an_invalid_dataset(ds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "hub_offline", lambda: False)
    (ds / "videos/observation.images.front/chunk-000/file-000.mp4").unlink()
    api = RecordingApi()
    with pytest.raises(DatasetInvalidError, match="nothing was uploaded") as info:
        push_dataset(ds, "me/so101_pick", api=api)
    assert [p.code for p in info.value.problems] == ["video-missing"]
    assert api.calls == []


def test_push_without_token(ds: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub.constants as constants

    monkeypatch.setattr(hub, "hub_offline", lambda: False)
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-stored-tokens"), raising=False)
    with pytest.raises(HubAuthError, match="hf auth login"):
        push_dataset(ds, "me/so101_pick")


def test_push_sequence(ds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "hub_offline", lambda: False)
    api = RecordingApi()
    steps: list[str] = []
    result = push_dataset(ds, "me/so101_pick", private=True, tags=["so101"], api=api, on_step=steps.append)
    assert api.names == ["create_repo", "upload_folder", "upload_file", "delete_tag", "create_tag"]
    _, args, kwargs = api.calls[0]
    assert args == ("me/so101_pick",) and kwargs == {
        "repo_type": "dataset",
        "private": True,
        "exist_ok": True,
    }
    upload = api.calls[1][2]
    assert upload["folder_path"] == str(ds) and upload["repo_type"] == "dataset"
    assert "images/" in upload["ignore_patterns"] and "README.md" in upload["ignore_patterns"]
    card = api.calls[2][2]
    assert card["path_in_repo"] == "README.md"
    assert (
        "- so101" in card["path_or_fileobj"].decode() and "me/so101_pick" in card["path_or_fileobj"].decode()
    )
    assert api.calls[3][2] == {"tag": "v3.0", "repo_type": "dataset"}
    assert api.calls[4][2] == {"tag": "v3.0", "repo_type": "dataset"}
    assert result.url == "https://huggingface.co/datasets/me/so101_pick" and result.tag == "v3.0"
    assert result.files == upload_plan(ds)
    assert len(steps) == 4 and steps[-1] == "tagging v3.0"


def test_first_push_has_no_tag_to_delete(ds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "hub_offline", lambda: False)
    api = RecordingApi(fail={"delete_tag": http_error(RevisionNotFoundError, 404)})
    push_dataset(ds, "me/so101_pick", api=api)
    assert api.names[-2:] == ["delete_tag", "create_tag"]


@pytest.mark.parametrize(("status", "message"), [(401, "log in again"), (403, "write access")])
def test_auth_errors_are_explained(
    ds: Path, monkeypatch: pytest.MonkeyPatch, status: int, message: str
) -> None:
    monkeypatch.setattr(hub, "hub_offline", lambda: False)
    api = RecordingApi(fail={"create_repo": http_error(HfHubHTTPError, status)})
    with pytest.raises(HubAuthError, match=message):
        push_dataset(ds, "someone-else/ds", api=api)
    assert api.names == ["create_repo"]


def test_transport_failure_is_a_hub_error(ds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "hub_offline", lambda: False)
    api = RecordingApi(fail={"upload_folder": ConnectionError("connection reset")})
    with pytest.raises(hub.HubError, match=r"is huggingface\.co reachable"):
        push_dataset(ds, "me/so101_pick", api=api)
