"""Local jobs: detached from robotui, found again after a restart, status that survives pid reuse, cancel,
fetch in place, and a registry that never loses a file it cannot read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine.jobs import JobError, JobLauncher, JobRecord, JobRegistry, JobSpec, JobState
from engine.jobs.registry import registry_path
from tests.engine.jobs.conftest import live, live_group_members, scripted_run, wait_for

ROOT = Path(__file__).resolve().parents[3]

START_AND_EXIT = """
import sys
from engine.jobs import JobLauncher, JobSpec
spec = JobSpec.create("survivor", sys.argv[1:])
record = JobLauncher().start(spec)
print(record.pid)
"""


def _done(launcher: JobLauncher, name: str) -> JobRecord:
    wait_for(lambda: launcher.snapshot(name).record.state.done, what=f"{name} to end")
    return launcher.snapshot(name).record


def test_job_outlives_the_robotui_that_started_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = scripted_run(f"--output_dir={out}", "--steps=2", "--hold")
    starter = subprocess.run(
        [sys.executable, "-c", START_AND_EXIT, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert starter.returncode == 0, starter.stderr
    pid = int(starter.stdout)
    # The robotui process is gone; a new one (new registry object) finds the job running, in its own session.
    launcher = JobLauncher(JobRegistry(), cancel_grace_s=3)
    wait_for(lambda: b"holding" in launcher.read_log("survivor")[1], what="the run to reach its hold")
    assert launcher.snapshot("survivor").record.state is JobState.RUNNING
    assert os.getsid(pid) == pid and os.getpgid(pid) == pid and os.getsid(pid) != os.getsid(0)
    worker = int((out / "worker.pid").read_text())
    assert launcher.cancel("survivor").state is JobState.CANCELLED
    assert live_group_members(pid) == [] and not live(worker)


@pytest.mark.parametrize(("exit_code", "state"), [(0, JobState.FINISHED), (3, JobState.FAILED)])
def test_restarted_robotui_sees_the_end_and_exit_code(
    tmp_path: Path, exit_code: int, state: JobState
) -> None:
    spec = JobSpec.create(
        "run",
        scripted_run(f"--output_dir={tmp_path / 'out'}", "--steps=10", f"--exit={exit_code}"),
        output_dir=str(tmp_path / "out"),
        total_steps=10,
    )
    JobLauncher().start(spec)
    later = JobLauncher(JobRegistry())
    record = _done(later, "run")
    assert (record.state, record.exit_code, record.ended_at is not None) == (state, exit_code, True)
    snap = later.snapshot("run")
    assert (snap.progress.step, snap.progress.total, snap.progress.loss) == (10, 10, pytest.approx(0.3))
    stored = json.loads(registry_path().read_text())["jobs"][0]
    assert (stored["state"], stored["exit_code"]) == (state.value, exit_code)


def test_a_new_process_with_the_jobs_pid_is_not_the_job(tmp_path: Path, launcher: JobLauncher) -> None:
    """The leader is SIGKILLed (OOM, reboot): no exit code. Even with a live process now at the recorded pid,
    the job is reported ended, because the start time recorded with the pid does not match."""
    gate = tmp_path / "gate"
    spec = JobSpec.create(
        "oom", scripted_run(f"--output_dir={tmp_path / 'out'}", "--steps=4", "--gate", str(gate))
    )
    record = launcher.start(spec)
    wait_for(lambda: b"waiting for gate" in launcher.read_log("oom")[1], what="the run to wait")
    os.killpg(record.pid, signal.SIGKILL)
    wait_for(lambda: not live(record.pid), what="the leader to die")
    impostor = subprocess.Popen(["sleep", "30"])
    try:
        run_dir = Path(record.run_dir_abs)
        (run_dir / "job.pid").write_text(f"{impostor.pid} {record.start_token}\n")
        ended = launcher.snapshot("oom").record
        assert ended.state is JobState.FAILED and ended.exit_code is None
        assert "without an exit code" in ended.detail
    finally:
        impostor.kill()
        impostor.wait()


def test_cancel_stops_the_whole_group(tmp_path: Path, launcher: JobLauncher) -> None:
    out = tmp_path / "out"
    record = launcher.start(JobSpec.create("c", scripted_run(f"--output_dir={out}", "--steps=2", "--hold")))
    wait_for(lambda: (out / "worker.pid").is_file() and b"holding" in launcher.read_log("c")[1], what="hold")
    worker = int((out / "worker.pid").read_text())
    assert live(worker) and os.getpgid(worker) == record.pid
    cancelled = launcher.cancel("c")
    assert cancelled.state is JobState.CANCELLED and cancelled.exit_code == 128 + signal.SIGTERM
    assert live_group_members(record.pid) == []
    with pytest.raises(JobError, match="not running"):
        launcher.cancel("c")


def test_fetch_a_local_checkpoint(tmp_path: Path, launcher: JobLauncher) -> None:
    out = tmp_path / "out"
    launcher.start(JobSpec.create("f", scripted_run(f"--output_dir={out}", "--steps=6"), output_dir=str(out)))
    _done(launcher, "f")
    assert launcher.fetch("f") == out / "checkpoints" / "000006" / "pretrained_model"
    copy = launcher.fetch("f", checkpoint="000003", dest=tmp_path / "copy")
    assert copy == tmp_path / "copy" and json.loads((copy / "config.json").read_text())["step"] == 3
    with pytest.raises(JobError, match="not a checkpoint folder name"):
        launcher.fetch("f", checkpoint="../..")
    launcher.start(JobSpec.create("no-out", ["true"]))
    with pytest.raises(JobError, match="without an output folder"):
        launcher.fetch("no-out")


def test_follow_metrics_jsonl_and_log(tmp_path: Path, launcher: JobLauncher) -> None:
    out = tmp_path / "out"
    launcher.start(JobSpec.create("m", scripted_run(f"--output_dir={out}", "--steps=10")))
    steps = [json.loads(line.text)["step"] for line in launcher.follow("m", path=str(out / "metrics.jsonl"))]
    assert steps == [5, 10]
    log = [line.text for line in launcher.follow("m")]
    assert log[0].endswith("Creating dataset") and log[-1].startswith("INFO 2026-08-20 10:00:10")
    start, tail = launcher.read_log("m", -20)
    assert start + len(tail) == (Path(launcher.registry.get("m").run_dir_abs) / "job.log").stat().st_size


def test_start_problems_are_named(tmp_path: Path, launcher: JobLauncher) -> None:
    with pytest.raises(JobError, match=r"'robotui-no-such-program' is not found on this machine"):
        launcher.start(JobSpec.create("x", ["robotui-no-such-program"]))
    launcher.start(JobSpec.create("x", ["true"], run_dir=str(tmp_path / "run")))
    with pytest.raises(JobError, match="a job named 'x' already exists"):
        launcher.start(JobSpec.create("x", ["true"]))
    with pytest.raises(JobError, match="already holds a job"):
        launcher.start(JobSpec.create("y", ["true"], run_dir=str(tmp_path / "run")))
    with pytest.raises(JobError, match="no job named 'nope' \\(known jobs: x;"):
        launcher.snapshot("nope")


def test_corrupt_registry_is_kept_and_replaced(capsys: pytest.CaptureFixture[str]) -> None:
    path = registry_path()
    path.parent.mkdir(parents=True)
    path.write_text('{"version": 1, "jobs": [{"spec": ')
    registry = JobRegistry()
    assert registry.records() == []
    assert registry.warning and "could not be read" in registry.warning
    aside = [p for p in path.parent.iterdir() if p.name.startswith("jobs.json.corrupt-")]
    assert len(aside) == 1 and aside[0].read_text() == '{"version": 1, "jobs": [{"spec": '
    assert str(aside[0]) in registry.warning
    registry.add(JobRecord(spec=JobSpec.create("after", ["true"])))
    assert [r.name for r in JobRegistry().records()] == ["after"]

    path.write_text('{"version": 1, "jobs": {"not": "a list"}}')
    again = JobRegistry()
    assert again.records() == [] and "expected" in (again.warning or "")


def test_registry_writers_do_not_lose_each_others_jobs() -> None:
    def add(i: int) -> None:
        JobRegistry().add(JobRecord(spec=JobSpec.create(f"job{i}", ["true"])))

    threads = [threading.Thread(target=add, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.name for r in JobRegistry().records()) == sorted(f"job{i}" for i in range(12))
    assert not [p for p in registry_path().parent.iterdir() if p.suffix == ".tmp"]
