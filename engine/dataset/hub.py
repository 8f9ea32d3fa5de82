"""Push a dataset to the Hugging Face Hub the way LeRobot's `push_to_hub` does, so `LeRobotDataset(repo_id)`
loads it: the whole root minus temporary files, a dataset card with the `LeRobot` tag and the parquet
config, and the `v3.0` git tag that LeRobot resolves revisions with (without it loading fails with
`RevisionNotFoundError`). The dataset is validated first: a broken upload costs more than a refusal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.dataset.format import CODEBASE_VERSION, STAGING_DIR, TEMP_SUFFIX
from engine.dataset.reader import hub_offline, read_info, read_tasks
from engine.dataset.validate import Problem, check

CARD_PATH = "README.md"
DEFAULT_LICENSE = "apache-2.0"
DEFAULT_TAGS = ("LeRobot", "robotui")
# images/ holds the PNGs of an episode being recorded; the rest are crash leftovers. README.md is replaced by
# the generated card. Patterns follow huggingface_hub's fnmatch rules ("dir/" means everything below it).
IGNORE_PATTERNS = (
    "images/",
    f"*{TEMP_SUFFIX}",
    f"{STAGING_DIR}/",
    "*.tmp",
    "*.partial",
    "*.lock",
    "*.ffconcat",
    "*.DS_Store",
    CARD_PATH,
)


class HubError(RuntimeError):
    """A push that could not happen; the message says why and what to do."""


class HubOfflineError(HubError):
    pass


class HubAuthError(HubError):
    pass


class DatasetInvalidError(HubError):
    def __init__(self, message: str, problems: list[Problem]) -> None:
        super().__init__(message)
        self.problems = problems


@dataclass(frozen=True)
class PushResult:
    repo_id: str
    url: str
    files: list[str] = field(default_factory=list)
    tag: str = CODEBASE_VERSION


def _ignore_patterns() -> list[str]:
    from huggingface_hub.hf_api import DEFAULT_IGNORE_PATTERNS

    return [*IGNORE_PATTERNS, *DEFAULT_IGNORE_PATTERNS]


def upload_plan(root: str | Path) -> list[str]:
    """Paths (relative, posix) that a push would upload, in upload order; the generated card comes last.

    Filtering uses huggingface_hub's own matcher with the same patterns `push_dataset` hands to
    `upload_folder`, so this is the list the Hub receives.
    """
    from huggingface_hub.utils import filter_repo_objects

    base = Path(root).expanduser().resolve()
    files = sorted(p.relative_to(base).as_posix() for p in base.glob("**/*") if p.is_file())
    kept = list(filter_repo_objects(files, ignore_patterns=_ignore_patterns()))
    return [*kept, CARD_PATH]


def _camera_summary(features: Mapping[str, Any]) -> list[str]:
    out = []
    for key, ft in features.items():
        if ft.get("dtype") not in ("video", "image"):
            continue
        h, w = (ft.get("shape") or [0, 0])[:2]
        codec = (ft.get("info") or {}).get("video.codec") or ft["dtype"]
        out.append(f"`{key}` {w}x{h} ({codec})")
    return out


def build_dataset_card(
    info: Mapping[str, Any],
    *,
    repo_id: str,
    tags: Iterable[str] | None = None,
    tasks: Sequence[str] | None = None,
    license: str = DEFAULT_LICENSE,
) -> str:
    """README.md for the Hub: YAML metadata the Hub and LeRobot look for, then a short summary of info.json."""
    from huggingface_hub import DatasetCardData

    all_tags = list(dict.fromkeys([*DEFAULT_TAGS, *(tags or [])]))
    meta = DatasetCardData(
        license=license,
        task_categories=["robotics"],
        tags=all_tags,
        configs=[{"config_name": "default", "data_files": "data/*/*.parquet"}],
    )
    fps = info.get("fps") or 0
    frames = int(info.get("total_frames") or 0)
    duration = f" ({frames / fps:.1f} s at {fps} fps)" if fps else ""
    rows = [
        ("Robot type", f"`{info.get('robot_type') or 'unknown'}`"),
        ("Episodes", str(info.get("total_episodes", 0))),
        ("Frames", f"{frames}{duration}"),
        ("Tasks", str(info.get("total_tasks", 0))),
        ("Cameras", ", ".join(_camera_summary(info.get("features") or {})) or "none"),
        ("Format", f"LeRobotDataset {info.get('codebase_version', CODEBASE_VERSION)}"),
    ]
    lines = [
        "---",
        meta.to_yaml(),
        "---",
        "",
        f"# {repo_id}",
        "",
        "Recorded with robotui in the LeRobotDataset v3.0 format. Load it with LeRobot >= 0.4 "
        f'(`LeRobotDataset("{repo_id}")`) or with robotui.',
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
    ]
    if tasks:
        lines += ["", "## Tasks", "", *(f"- {t}" for t in tasks[:20])]
        if len(tasks) > 20:
            lines.append(f"- ... and {len(tasks) - 20} more")
    lines += [
        "",
        "## meta/info.json",
        "",
        "```json",
        json.dumps(info, indent=4, ensure_ascii=False),
        "```",
        "",
    ]
    return "\n".join(lines)


def _http_error(exc: Exception, repo_id: str) -> HubError:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status == 401:
        return HubAuthError(f"the Hub rejected the token (401): log in again with `hf auth login` ({exc})")
    if status == 403:
        return HubAuthError(
            f"the token may not write to {repo_id!r} (403): use a token with write access, or push to a "
            f"namespace you own ({exc})"
        )
    return HubError(f"the Hub refused the push of {repo_id!r}: {exc}")


def push_dataset(
    root: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    tags: Iterable[str] | None = None,
    token: str | None = None,
    license: str = DEFAULT_LICENSE,
    api: Any = None,
    on_step: Callable[[str], None] | None = None,
) -> PushResult:
    """Validate, upload the folder, write the card, (re)create the `v3.0` tag.

    `api` is an `HfApi` (built from `token` or the logged-in token when None). `on_step` receives a short
    line before each network step, for progress output.
    """
    root = Path(root).expanduser()
    step = on_step or (lambda _msg: None)
    problems = check(root)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        listed = "\n".join(f"  {p}" for p in errors[:10])
        raise DatasetInvalidError(
            f"{root} has {len(errors)} problem(s) that would break loading on the Hub; nothing was uploaded:\n"
            f"{listed}\nRun `robotui dataset check {root}` for details (`--repair` fixes interrupted recordings).",
            errors,
        )
    if hub_offline():
        raise HubOfflineError(
            "HF_HUB_OFFLINE is set, so nothing can be pushed. Unset it (`unset HF_HUB_OFFLINE`) on a machine "
            f"with network access and run the push again; {root} passed validation and is ready."
        )
    from huggingface_hub.errors import HfHubHTTPError, RevisionNotFoundError

    if api is None:
        from huggingface_hub import HfApi, get_token

        token = token or get_token()
        if not token:
            raise HubAuthError(
                "no Hugging Face token: run `hf auth login` with a token that has write access, or set HF_TOKEN"
            )
        api = HfApi(token=token)
    info = read_info(root)
    card = build_dataset_card(info, repo_id=repo_id, tags=tags, tasks=list(read_tasks(root).values()))
    files = upload_plan(root)
    try:
        step(f"creating dataset repo {repo_id}")
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        step(f"uploading {len(files) - 1} files")
        api.upload_folder(
            repo_id=repo_id,
            folder_path=str(root),
            repo_type="dataset",
            ignore_patterns=list(IGNORE_PATTERNS),
            commit_message=f"Upload dataset ({info.get('total_episodes', 0)} episodes)",
        )
        step("writing the dataset card")
        api.upload_file(
            path_or_fileobj=card.encode(),
            path_in_repo=CARD_PATH,
            repo_id=repo_id,
            repo_type="dataset",
            commit_message="Update dataset card",
        )
        step(f"tagging {CODEBASE_VERSION}")
        try:
            api.delete_tag(repo_id, tag=CODEBASE_VERSION, repo_type="dataset")
        except RevisionNotFoundError:
            pass  # first push: there is no tag to move yet
        except HfHubHTTPError as exc:
            if getattr(getattr(exc, "response", None), "status_code", None) != 404:
                raise
        api.create_tag(repo_id, tag=CODEBASE_VERSION, repo_type="dataset")
    except HfHubHTTPError as exc:
        raise _http_error(exc, repo_id) from exc
    except HubError:
        raise
    except Exception as exc:  # transport errors come from whichever HTTP client huggingface_hub uses
        raise HubError(f"could not push {repo_id!r} (is huggingface.co reachable?): {exc}") from exc
    return PushResult(repo_id, f"https://huggingface.co/datasets/{repo_id}", files)
