"""The bad-input table: wrong ports, types, files, datasets, commands, policies, hosts and a full disk, across
the CLI, the slash commands and the files. Each must end in one clear message that says what was wrong and
what to do (and the right exit status), and must lose nothing: existing datasets and files stay as they were.

Every row runs the real code path (the CLI in-process, the command table, the loaders, the writer).
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from drivers.calibration import load_calibration
from engine.dataset import format as fmt
from engine.dataset.format import build_features
from engine.dataset.validate import check, has_errors
from engine.dataset.writer import DatasetWriter
from policies.checkpoint import load_policy
from robotui.cli import main
from robotui.command_table import TABLE, CommandError
from tests.act_checkpoint import save_tiny_act
from tests.engine.jobs.sshd import SshServer, sshd  # noqa: F401 (the session fixture)


@dataclass(frozen=True)
class Outcome:
    code: int | None  # exit status (None: not a CLI case)
    text: str  # what the operator sees


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small valid dataset recorded on the simulator, to be misused (and never damaged)."""
    root = tmp_path_factory.mktemp("ds") / "ds"
    code = main(["record", "--sim", "--episodes", "1", "--episode-time", "0.5", "--reset-time", "0", "--task",
                 "pick", "--vcodec", "libx264", "--dataset-root", str(root)])
    assert code == 0
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_act(tmp_path_factory.mktemp("act"))


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != fmt.LOCK_FILE):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Outcome:
    code = main(list(argv))
    captured = capsys.readouterr()
    return Outcome(code, captured.out + captured.err)


def slash(text: str, context: str = "rollout") -> Outcome:
    try:
        TABLE.parse(text, context)
    except CommandError as e:
        return Outcome(None, str(e))
    return Outcome(None, "parsed")


def raised(fn: Callable[[], object]) -> Outcome:
    try:
        fn()
    except Exception as e:
        return Outcome(None, f"{type(e).__name__}: {e}")
    return Outcome(None, "no error")


# ------------------------------------------------------------------------------------------- the cases
# name -> (case, expected exit status, substrings of the message). A case gets (tmp_path, capsys, fixtures).

Case = Callable[..., Outcome]


def port_missing(tmp, cap, **_):
    return cli(cap, "--robot-port", "/dev/ttyNOPE", "--teleop-type", "keyboard", "--cameras", "{}", "teleop",
               "--duration", "1")


def port_busy(tmp, cap, **_):
    from drivers.emulator import EmulatedBus

    with EmulatedBus("feetech", {i: "sts3215" for i in range(1, 7)}, name="busy", port_dir=tmp) as bus:
        import serial

        holder = serial.Serial(bus.port, exclusive=True)
        try:
            return cli(cap, "--robot-port", bus.port, "--teleop-type", "keyboard", "--cameras", "{}", "teleop",
                       "--duration", "1")
        finally:
            holder.close()


def robot_type_wrong(tmp, cap, **_):
    return cli(cap, "teleop", "--robot-type", "so102_follower", "--robot-port", "/dev/null", "--duration", "1")


def calibration_malformed(tmp, cap, **_):
    path = tmp / "robots" / "so_follower" / "arm.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"shoulder_pan": {"id": 1, "drive_mode": 0, "homing_offset": "x"')
    return raised(lambda: load_calibration(path))


def calibration_other_arm(tmp, cap, **_):
    path = tmp / "koch.json"
    fields = {"id": 1, "drive_mode": 0, "homing_offset": 0, "range_min": 0, "range_max": 4095}
    path.write_text(json.dumps({name: fields for name in ("waist", "shoulder", "elbow")}))
    return raised(lambda: load_calibration(path, motors=["shoulder_pan", "shoulder_lift", "elbow_flex"]))


def dataset_missing(tmp, cap, **_):
    return cli(cap, "replay", "--sim", "--dataset", str(tmp / "nope"), "--episode", "0")


def episode_missing(tmp, cap, dataset, **_):
    return cli(cap, "replay", "--sim", "--dataset", str(dataset), "--episode", "7")


def resume_mismatch(tmp, cap, dataset, **_):
    return cli(cap, "record", "--sim", "--resume", "--fps", "15", "--episodes", "1", "--task", "pick",
               "--dataset-root", str(dataset))


def record_over_dataset(tmp, cap, dataset, **_):
    return cli(cap, "record", "--sim", "--episodes", "1", "--task", "pick", "--dataset-root", str(dataset))


def record_no_task(tmp, cap, **_):
    return cli(cap, "record", "--sim", "--dataset-root", str(tmp / "ds"))


def record_bad_fps(tmp, cap, **_):
    return cli(cap, "record", "--sim", "--fps", "0", "--task", "pick", "--dataset-root", str(tmp / "ds"))


def camera_unopenable(tmp, cap, **_):
    return cli(cap, "--cameras", '{"front": {"type": "opencv", "index_or_path": 99}}', "teleop", "--sim",
               "--duration", "1")


def cameras_not_json(tmp, cap, **_):
    return cli(cap, "--cameras", "not json", "teleop", "--sim", "--duration", "1")


def profile_file_broken(tmp, cap, monkeypatch, **_):
    config = tmp / "config"
    (config / "robotui").mkdir(parents=True)
    (config / "robotui" / "profiles.toml").write_text('active = "x"\n[profiles.x]\nrecord_fps = "thirty"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    return cli(cap, "teleop", "--duration", "1")


def dataset_v21(tmp, cap, **_):
    root = tmp / "old"
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps({"codebase_version": "v2.1", "fps": 30, "features": {}}))
    return cli(cap, "dataset", "info", str(root))


def unknown_slash_command(**_):
    return slash("/paws")


def negative_action(**_):
    return slash("/action -2")


def command_on_the_wrong_screen(**_):
    return slash("/takeover", context="home")


def unknown_help_topic(**_):
    return slash("/help actoin")


def policy_missing(tmp, cap, **_):
    return cli(cap, "rollout", "--sim", "--policy", str(tmp / "no-checkpoint"))


def policy_missing_camera(tmp, cap, **_):
    top = save_tiny_act(tmp / "top", cameras={"top": (96, 128)})
    return cli(cap, "rollout", "--sim", "--policy", str(top))


def policy_config_broken(tmp, cap, checkpoint, **_):
    broken = tmp / "broken"
    shutil.copytree(checkpoint, broken)
    (broken / "config.json").write_text('{"type": "act", "chunk_size": "many"')
    return raised(lambda: load_policy(broken))


def policy_unknown_type(tmp, cap, checkpoint, **_):
    other = tmp / "diffusion"
    shutil.copytree(checkpoint, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "type": "diffusion"}))
    return raised(lambda: load_policy(other))


def dagger_without_dataset(tmp, cap, checkpoint, **_):
    return cli(cap, "rollout", "--sim", "--policy", str(checkpoint), "--strategy", "dagger")


def ssh_unreachable(tmp, cap, **_):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the socket closes
    return cli(cap, "jobs", "start", "--name", "unreachable", "--host", f"root@127.0.0.1:{port}", "--", "true")


def ssh_auth_refused(tmp, cap, sshd, **_):  # noqa: F811 (the fixture)
    stranger = tmp / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    return cli(cap, "jobs", "start", "--name", "refused", "--host", sshd.host, "--identity", str(stranger),
               *(a for o in sshd.options for a in ("--ssh-option", o)), "--", "true")


def job_unknown(tmp, cap, **_):
    return cli(cap, "jobs", "cancel", "nosuchjob")


def ask_empty(tmp, cap, **_):
    return cli(cap, "ask", "--sim", "--question", "  ")


def ask_model_missing(tmp, cap, **_):
    return cli(cap, "ask", "--sim", "--question", "where is the cube?", "--model", str(tmp / "no-model"))


def disk_full(tmp, cap, monkeypatch, **_):
    """The disk fills up while an episode is saved: the episode is refused, the dataset stays valid."""
    root = tmp / "ds"
    features = build_features(["a.pos", "b.pos"], {})
    writer = DatasetWriter.create(root, 30, features, "so_follower")

    def episode() -> None:
        writer.begin_episode("pick")
        for _ in range(5):
            writer.add_frame({"observation.state": np.zeros(2, np.float32), "action": np.zeros(2, np.float32)})

    episode()
    writer.save_episode()
    before = digest(root)
    real = fmt.write_parquet_temp

    def full(*args: object, **kwargs: object) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fmt, "write_parquet_temp", full)
    episode()
    outcome = raised(writer.save_episode)
    monkeypatch.setattr(fmt, "write_parquet_temp", real)
    writer.finalize()
    kept = not has_errors(check(root)) and digest(root) == before
    return Outcome(None, outcome.text + (" | dataset kept" if kept else " | DATASET CHANGED"))


CASES: dict[str, tuple[Case, int | None, tuple[str, ...]]] = {
    "port missing": (port_missing, 1, ("/dev/ttyNOPE does not exist", "robotui find-port")),
    "port busy": (port_busy, 1, ("busy",)),
    "robot type wrong": (robot_type_wrong, 2, ("so102_follower", "did you mean 'so101_follower'")),
    "calibration malformed": (calibration_malformed, None, ("arm.json",)),
    "calibration of another arm": (calibration_other_arm, None, ("koch.json", "shoulder_pan")),
    "dataset missing": (dataset_missing, 2, ("no dataset at", "does not exist")),
    "episode missing": (episode_missing, 2, ("episode 7",)),
    "resume with other fps": (resume_mismatch, 2, ("fps",)),
    "record over a dataset": (record_over_dataset, 2, ("already holds a dataset", "--resume")),
    "record without a task": (record_no_task, 2, ("task description is required",)),
    "record at 0 fps": (record_bad_fps, 2, ("--fps must be", ">= 1")),
    "camera that does not open": (camera_unopenable, 1, ("camera 'front'", "find-cameras")),
    "cameras not JSON": (cameras_not_json, 2, ("not json", "JSON")),
    "profiles file broken": (profile_file_broken, 2, ("profiles.toml", "record_fps")),
    "dataset of an old format": (dataset_v21, None, ("v2.1",)),
    "unknown slash command": (unknown_slash_command, None, ("unknown command /paws", "did you mean /pause?")),
    "/action with a negative number": (negative_action, None, ("seconds must be positive",)),
    "command on the wrong screen": (command_on_the_wrong_screen, None, ("/takeover works on the rollout screen",)),
    "/help about a typo": (unknown_help_topic, None, ("did you mean /action?",)),
    "policy missing": (policy_missing, 2, ("cannot load the policy", "no-checkpoint")),
    "policy missing a camera": (policy_missing_camera, 2, ("refused", "camera 'top'")),
    "policy config broken": (policy_config_broken, None, ("CheckpointError", "config.json")),
    "policy of an unknown type": (policy_unknown_type, None, ("'diffusion'", "act")),
    "dagger without a dataset": (dagger_without_dataset, 2, ("--strategy dagger records", "--dataset-root")),
    "SSH host unreachable": (ssh_unreachable, 1, ("refused the connection", "sshd")),
    "SSH login refused": (ssh_auth_refused, 1, ("Permission denied (publickey)", "--identity")),
    "job unknown": (job_unknown, 1, ("no job named 'nosuchjob'",)),
    "empty question": (ask_empty, 2, ("question is empty",)),
    "question model missing": (ask_model_missing, 1, ("no-model",)),
    "disk full while saving": (disk_full, None, ("EpisodeRefused", "is full", "free some space", "dataset kept")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gets_a_clear_message_and_loses_nothing(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest, dataset: Path, checkpoint: Path,
) -> None:
    case, code, expected = CASES[name]
    before = digest(dataset)
    extra = {"sshd": request.getfixturevalue("sshd")} if name == "SSH login refused" else {}
    outcome = case(tmp=tmp_path, cap=capsys, monkeypatch=monkeypatch, dataset=dataset, checkpoint=checkpoint,
                   **extra)
    for text in expected:
        assert text in outcome.text, (name, outcome)
    if code is not None:
        assert outcome.code == code, (name, outcome)
    assert "Traceback" not in outcome.text
    assert digest(dataset) == before  # the shared dataset is never touched by a refusal


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 25

