"""`robotui jobs` through the real `robotui` parser: a local run and a preset run on a real sshd."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from engine.jobs.registry import registry_path
from robotui.cli import main
from tests.engine.jobs.conftest import SCRIPTED_RUN, scripted_run, wait_for
from tests.engine.jobs.sshd import SshServer, sshd  # noqa: F401 (the session fixture)


def jobs(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["jobs", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _ended(capsys: pytest.CaptureFixture[str], name: str) -> dict:
    def row() -> dict | None:
        rows = {r["name"]: r for r in json.loads(jobs(capsys, "list", "--json")[1])}
        return rows[name] if not rows[name]["state"].startswith("running") else None

    wait_for(row, what=f"{name} to end")
    return row()


def test_local_job_start_tail_list_fetch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code, stdout, _ = jobs(
        capsys,
        "start",
        "--name",
        "loc",
        "--output-dir",
        str(out),
        "--total-steps",
        "10",
        "--",
        *scripted_run(f"--output_dir={out}", "--steps=10"),
    )
    assert code == 0 and stdout.startswith("started loc on local (pid ")
    assert "robotui jobs tail loc --follow" in stdout

    code, stdout, stderr = jobs(capsys, "tail", "loc", "--follow")
    printed = json.loads((out / "printed.json").read_text())
    lines = [text for text, redraw in printed if not redraw]  # a pipe gets no tqdm redraws
    assert code == 0 and stdout.splitlines() == lines
    assert "[job loc finished (exit 0)]" in stderr

    code, stdout, _ = jobs(capsys, "tail", "loc", "-n", "2")
    assert stdout.splitlines() == lines[-2:]

    row = _ended(capsys, "loc")
    assert (row["state"], row["step"], row["total"], row["loss"]) == ("finished", 10, 10, 0.3)
    code, stdout, _ = jobs(capsys, "list")
    header, line = stdout.splitlines()
    assert header.split() == ["NAME", "WHERE", "STATE", "STEP", "LOSS", "ETA"]
    assert line.split() == ["loc", "local", "finished", "10/10", "0.3", "-"]

    code, stdout, _ = jobs(capsys, "fetch", "loc", "--dest", str(tmp_path / "ckpt"))
    assert code == 0 and stdout.strip() == str(tmp_path / "ckpt")
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["step"] == 10

    code, _, stderr = jobs(capsys, "cancel", "loc")
    assert code == 1 and "error: job 'loc' is not running (it finished)" in stderr


def test_cancel_a_running_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert (
        jobs(capsys, "start", "--name", "held", "--", *scripted_run(f"--output_dir={out}", "--hold"))[0] == 0
    )
    wait_for(lambda: "holding" in jobs(capsys, "tail", "held")[1], what="the run to hold")
    code, stdout, _ = jobs(capsys, "cancel", "held")
    assert (code, stdout.strip()) == (0, "job held cancelled")


def test_preset_job_over_ssh(
    sshd: SshServer,  # noqa: F811 (the imported fixture)
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--preset act` builds lerobot-train's flags; `--program` points them at the scripted run, which reads
    `--output_dir=` and `--steps=` as lerobot-train would."""
    program = tmp_path / "bin" / "fake lerobot-train"
    program.parent.mkdir()
    program.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{SCRIPTED_RUN}" "$@"\n')
    program.chmod(0o755)
    dataset = tmp_path / "pick place"
    (dataset / "meta").mkdir(parents=True)
    (dataset / "meta" / "info.json").write_text("{}")
    remote = tmp_path / "remote"
    argv_file = tmp_path / "argv.json"
    code, stdout, stderr = jobs(
        capsys,
        "start",
        "--name",
        "ssh-act",
        "--host",
        sshd.host,
        "--identity",
        str(sshd.identity),
        *[w for opt in sshd.options for w in ("--ssh-option", opt)],
        "--preset",
        "act",
        "--program",
        str(program),
        "--dataset",
        str(dataset),
        "--remote-dataset",
        str(remote / "data"),
        "--run-dir",
        str(remote / "run"),
        "--steps",
        "10",
        "--batch-size",
        "2",
        "--",
        "--argv-file",
        str(argv_file),
    )
    assert code == 0, stderr
    assert f"started ssh-act on {sshd.host}" in stdout and "dataset: 1 file(s) copied" in stderr
    assert (remote / "data" / "meta" / "info.json").read_text() == "{}"

    code, stdout, stderr = jobs(capsys, "tail", "ssh-act", "-f")
    assert code == 0 and "step:10 " in stdout and "[job ssh-act finished (exit 0)]" in stderr
    received = json.loads(argv_file.read_text())
    for flag in (
        f"--dataset.root={remote / 'data'}",
        "--dataset.repo_id=local/pick_place",
        "--policy.type=act",
        f"--output_dir={remote / 'run' / 'train'}",
        "--steps=10",
        "--batch_size=2",
        "--job_name=ssh-act",
        "--policy.push_to_hub=false",
    ):
        assert flag in received

    code, stdout, _ = jobs(capsys, "fetch", "ssh-act")
    fetched = Path(stdout.strip())
    assert code == 0 and fetched.parts[-3:] == ("ssh-act", "000010", "pretrained_model")
    assert json.loads((fetched / "config.json").read_text())["step"] == 10
    row = _ended(capsys, "ssh-act")
    assert (row["where"], row["state"], row["step"], row["total"]) == (sshd.host, "finished", 10, 10)


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        ([], 2, "usage: robotui jobs {list,start,tail,cancel,fetch}"),
        (["start"], 2, "give --preset or a command after `--`"),
        (["start", "--preset", "act"], 2, "--preset needs --dataset"),
        (
            ["start", "--steps", "5", "--", "true"],
            2,
            "hyperparameters, --program and --repo-id need --preset",
        ),
        (["tail", "ghost"], 1, "error: no job named 'ghost' (there are no jobs yet"),
        (["start", "--host=-oProxyCommand=x", "--", "true"], 1, "is not of the form [user@]host[:port]"),
        (["start", "--preset", "act", "--dataset", "d", "--freeze-vision-encoder"], 1, "act has no freeze"),
    ],
)
def test_usage_and_errors(
    argv: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    got, _, stderr = jobs(capsys, *argv)
    assert got == code and message in stderr


def test_corrupt_registry_warning(capsys: pytest.CaptureFixture[str]) -> None:
    registry_path().parent.mkdir(parents=True)
    registry_path().write_text("garbage")
    code, stdout, stderr = jobs(capsys, "list")
    assert code == 0 and stdout.startswith("no jobs yet")
    assert "warning: the job registry" in stderr and "jobs.json.corrupt-" in stderr
