"""The launcher against a real sshd on 127.0.0.1 (key-only): launch, tail across a dropped connection,
cancel, fetch, dataset sync, shell quoting, and the messages for hosts that cannot be used."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from engine.jobs import JobError, JobLauncher, JobProgress, JobRecord, JobSpec, JobState, SshHost
from engine.jobs.shell import STREAM, remote_command
from engine.jobs.spec import data_dir
from engine.jobs.transport import SshTransport, rsync_failure
from tests.engine.jobs.conftest import (
    live,
    live_group_members,
    remote_kwargs,
    scripted_run,
    wait_for,
)
from tests.engine.jobs.sshd import SshServer


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_launch_follow_across_a_dropped_connection_then_fetch(
    sshd: SshServer, tmp_path: Path, launcher: JobLauncher
) -> None:
    out, gate = tmp_path / "out", tmp_path / "gate"
    spec = JobSpec.create(
        "drop",
        scripted_run(f"--output_dir={out}", "--steps=40", "--gate", str(gate)),
        run_dir=str(tmp_path / "run"),
        output_dir=str(out),
        total_steps=40,
        **remote_kwargs(sshd),
    )
    record = launcher.start(spec)
    assert record.run_dir_abs == str(tmp_path / "run") and record.pid > 0
    assert launcher.snapshot("drop").record.state is JobState.RUNNING

    follower = launcher.follow("drop")
    got = []
    dropped_pid = None
    for line in follower:
        got.append((line.text, line.overwrite))
        if line.text == "waiting for gate" and dropped_pid is None:
            dropped_pid = follower.connection_pid
            assert dropped_pid is not None
            master = _shared_connection_pid(sshd)
            os.kill(dropped_pid, signal.SIGKILL)  # the connection drops mid-tail: client ...
            if master:
                os.kill(master, signal.SIGKILL)  # ... and the TCP connection under it
            gate.touch()  # the run goes on writing while nobody listens
    assert follower.reconnects >= 1 and dropped_pid is not None
    printed = [tuple(item) for item in json.loads((out / "printed.json").read_text())]
    assert got == printed  # every line once, in order, "\r" redraws marked

    progress = JobProgress(total=40)
    for text, _ in got:
        progress.feed_line(text)
    assert (progress.step, progress.total, progress.loss) == (40, 40, pytest.approx(0.075))
    assert progress.series["loss"].values[0] == pytest.approx(0.6) and len(progress.series["loss"]) == 8

    wait_for(lambda: launcher.snapshot("drop").record.state.done, what="the job to end")
    snap = launcher.snapshot("drop")
    assert (snap.record.state, snap.record.exit_code) == (JobState.FINISHED, 0)
    assert snap.progress.step == 40 and snap.log_size == (tmp_path / "run" / "job.log").stat().st_size

    fetched = launcher.fetch("drop")
    assert fetched == data_dir() / "checkpoints" / "drop" / "000040" / "pretrained_model"
    assert _tree(fetched) == _tree(out / "checkpoints" / "000040" / "pretrained_model")
    assert json.loads((fetched / "config.json").read_text())["step"] == 40
    half = launcher.fetch("drop", checkpoint="000020", dest=tmp_path / "mine")
    assert json.loads((half / "config.json").read_text())["step"] == 20
    with pytest.raises(JobError, match="no checkpoint 001000"):
        launcher.fetch("drop", checkpoint="001000")


def test_cancel_kills_the_remote_process_group(
    sshd: SshServer, tmp_path: Path, launcher: JobLauncher
) -> None:
    out = tmp_path / "out"
    spec = JobSpec.create(
        "hold",
        scripted_run(f"--output_dir={out}", "--steps=3", "--hold"),
        run_dir=str(tmp_path / "run"),
        **remote_kwargs(sshd),
    )
    record = launcher.start(spec)
    wait_for(lambda: b"holding" in launcher.read_log("hold")[1], what="the run to reach its hold")
    worker = int((out / "worker.pid").read_text())
    assert live(record.pid) and live(worker) and os.getpgid(worker) == record.pid

    cancelled = launcher.cancel("hold")
    assert cancelled.state is JobState.CANCELLED and cancelled.cancel_requested
    assert live_group_members(record.pid) == [] and not live(worker)
    assert JobLauncher().snapshot("hold").record.state is JobState.CANCELLED  # a "restarted" robotui agrees
    with pytest.raises(JobError, match="not running"):
        launcher.cancel("hold")


def test_dataset_is_synced_once(sshd: SshServer, tmp_path: Path, launcher: JobLauncher) -> None:
    dataset = tmp_path / "my data 'set'"
    (dataset / "meta").mkdir(parents=True)
    (dataset / "meta" / "info.json").write_text('{"fps": 30}')
    (dataset / "data chunk").mkdir()
    (dataset / "data chunk" / "file 0.parquet").write_bytes(os.urandom(20000))
    remote = tmp_path / "remote side" / "datasets; $(x)" / "ds"
    messages: list[str] = []
    kwargs = dict(dataset=str(dataset), remote_dataset=str(remote), **remote_kwargs(sshd))

    for name in ("sync1", "sync2"):
        spec = JobSpec.create(name, ["true"], run_dir=str(tmp_path / name), **kwargs)
        launcher.start(spec, on_status=messages.append)
    assert "dataset: 2 file(s) copied" in messages and "dataset already up to date" in messages
    assert _tree(remote) == _tree(dataset)

    info = dataset / "meta" / "info.json"
    info.write_text('{"fps": 15}')
    later = info.stat().st_mtime + 5  # an edit made later (rsync compares size and whole-second mtimes)
    os.utime(info, (later, later))
    transport = SshTransport(SshHost.parse(sshd.host), str(sshd.identity), sshd.options)
    assert transport.push(str(dataset), str(remote)).files == 1
    assert (remote / "meta" / "info.json").read_text() == '{"fps": 15}'


NASTY = [
    "'; touch {p}/pwned1; echo '",
    "$(touch {p}/pwned2)",
    "`touch {p}/pwned3`",
    "a\nb; touch {p}/pwned4",
    '"; touch {p}/pwned5; "',
    "x && touch {p}/pwned6 || true",
    "* ~ $HOME \\ \t %s {{}} !!",
    "",
    "--policy.path=it's here",
]


@pytest.mark.parametrize("where", ["local", "ssh"])
def test_arguments_and_paths_arrive_verbatim(
    where: str, sshd: SshServer, tmp_path: Path, launcher: JobLauncher
) -> None:
    weird = tmp_path / "dir with 'quotes' \"and\" $(touch pwned0) ; spaces"
    args = [a.format(p=tmp_path) for a in NASTY]
    argv_file = weird / "argv.json"
    out = weird / "out `x`"
    kwargs = remote_kwargs(sshd) if where == "ssh" else {}
    spec = JobSpec.create(
        "quotes",
        scripted_run("--argv-file", str(argv_file), f"--output_dir={out}", "--steps=2", *args),
        run_dir=str(weird / "run; touch pwned7"),  # never a destructive payload: a failure must be harmless
        output_dir=str(out),
        **kwargs,
    )
    weird.mkdir()
    launcher.start(spec)
    wait_for(lambda: launcher.snapshot("quotes").record.state.done, what="the job to end")
    assert launcher.snapshot("quotes").record.state is JobState.FINISHED
    assert json.loads(argv_file.read_text())[-len(args) :] == args
    assert launcher.fetch("quotes", dest=tmp_path / "fetched").joinpath("config.json").is_file()
    leftovers = [*tmp_path.rglob("pwned*"), *Path.cwd().glob("pwned*"), *Path.home().glob("pwned*")]
    assert not leftovers


def test_login_shell_sees_one_quoted_command(tmp_path: Path) -> None:
    """What ssh hands the remote login shell, run by bash and dash: the script gets the words as they were."""
    args = [a.format(p=tmp_path) for a in NASTY]
    for shell in ("bash", "sh"):
        out = subprocess.run(
            [shell, "-c", remote_command('printf "%s\\0" "$@"', args)], capture_output=True, check=True
        ).stdout
        assert out.decode().split("\0")[:-1] == args
    assert not list(tmp_path.rglob("pwned*"))


def test_unreachable_and_refusing_hosts(sshd: SshServer, tmp_path: Path, launcher: JobLauncher) -> None:
    closed = SshServer(
        port=_closed_port(),
        user=sshd.user,
        identity=sshd.identity,
        known_hosts=sshd.known_hosts,
        pid=0,
        log=sshd.log,
    )
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    cases = [
        (remote_kwargs(closed), f"refused the connection on port {closed.port}: is sshd running"),
        ({**remote_kwargs(sshd), "host": "nobody@no-such-host.invalid"}, "cannot resolve the host name"),
        (
            {**remote_kwargs(sshd), "identity": str(stranger)},
            r"refused the login \(Permission denied \(publickey\)\): give the right key with --identity",
        ),
        (
            {
                **remote_kwargs(sshd),
                "ssh_options": (
                    "StrictHostKeyChecking=yes",
                    f"UserKnownHostsFile={tmp_path / 'empty_known_hosts'}",
                ),
            },
            "host key of 127.0.0.1 is not known here",
        ),
    ]
    for kwargs, message in cases:
        kwargs["ssh_options"] = (
            "ControlPath=none",
            *kwargs["ssh_options"],
        )  # no shared, already-logged-in connection
        spec = JobSpec.create("nope", ["true"], run_dir=str(tmp_path / "run"), **kwargs)
        with pytest.raises(JobError, match=message):
            launcher.start(spec)
    assert launcher.registry.records() == [] and not (tmp_path / "run").exists()


def test_remote_problems_are_named(sshd: SshServer, tmp_path: Path, launcher: JobLauncher) -> None:
    dataset = tmp_path / "ds"
    dataset.mkdir()
    (dataset / "f").write_text("x")
    spec = JobSpec.create(
        "missing",
        ["robotui-no-such-trainer", "--steps=1"],
        run_dir=str(tmp_path / "run"),
        dataset=str(dataset),
        remote_dataset=str(tmp_path / "remote"),
        **remote_kwargs(sshd),
    )
    with pytest.raises(JobError, match=r"'robotui-no-such-trainer' is not found on .*give its full path"):
        launcher.start(spec)
    assert not (tmp_path / "remote").exists()  # nothing copied for a job that cannot start

    spec = JobSpec.create("unwritable", ["true"], run_dir="/proc/robotui-test/run", **remote_kwargs(sshd))
    with pytest.raises(JobError, match=r"cannot create the folder on .*choose a folder you can write"):
        launcher.start(spec)

    JobSpec.create("busy", ["true"], run_dir=str(tmp_path / "busy"), **remote_kwargs(sshd))
    launcher.start(JobSpec.create("busy", ["true"], run_dir=str(tmp_path / "busy"), **remote_kwargs(sshd)))
    with pytest.raises(JobError, match="already holds a job"):
        launcher.start(
            JobSpec.create("busy2", ["true"], run_dir=str(tmp_path / "busy"), **remote_kwargs(sshd))
        )


def test_remote_rsync_missing_and_disk_full_messages(sshd: SshServer, tmp_path: Path) -> None:
    """rsync's real stderr when the remote has no rsync, classified; disk messages as the tools print them."""
    transport = SshTransport(SshHost.parse(sshd.host), str(sshd.identity), sshd.options)
    rsh = " ".join(["ssh", *(f"'{w}'" for w in transport.ssh_options())])
    (tmp_path / "src").mkdir()
    proc = subprocess.run(
        [
            "rsync",
            "-a",
            "--rsync-path=PATH=/nonexistent rsync",
            "-e",
            rsh,
            f"{tmp_path}/src/",
            f"{SshHost.parse(sshd.host).rsync_prefix()}{tmp_path}/dst/",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    host = SshHost.parse(sshd.host)
    assert "rsync is not installed on" in str(rsync_failure(host, "copying to", proc.returncode, proc.stderr))
    full = 'rsync: [receiver] write failed on "/x/f": No space left on device (28)\nrsync error: file IO'
    assert "no space left on device" in str(rsync_failure(host, "copying to", 11, full))


def test_status_of_a_host_that_is_gone_keeps_the_last_state(tmp_path: Path, launcher: JobLauncher) -> None:
    spec = JobSpec.create("away", ["true"], host=f"root@127.0.0.1:{_closed_port()}", run_dir="/tmp/x")
    launcher.registry.add(JobRecord(spec=spec, run_dir_abs="/tmp/x", pid=1, start_token="1"))
    snap = launcher.snapshot("away")
    assert snap.record.state is JobState.RUNNING and "refused the connection" in (snap.problem or "")


def test_stream_skips_login_banner(sshd: SshServer, tmp_path: Path) -> None:
    """A .bashrc that prints would corrupt replies; everything before the marker is dropped."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "job.log").write_bytes(b"abc\ndef")
    transport = SshTransport(SshHost.parse(sshd.host), str(sshd.identity), sshd.options)
    from engine.jobs.follow import split_stream

    noisy = subprocess.run(
        [
            "ssh",
            *transport.ssh_options(),
            "--",
            SshHost.parse(sshd.host).target,
            "echo Welcome; " + remote_command(STREAM, [str(tmp_path / "run"), "job.log", "2", "once"]),
        ],
        capture_output=True,
        check=True,
    ).stdout
    assert noisy.startswith(b"Welcome\n") and split_stream(noisy) == (2, b"c\ndef")


def _shared_connection_pid(server: SshServer) -> int | None:
    transport = SshTransport(SshHost.parse(server.host), str(server.identity), server.options)
    check = subprocess.run(
        ["ssh", *transport.ssh_options(), "-O", "check", "--", f"{server.user}@127.0.0.1"],
        capture_output=True,
        text=True,
    )
    match = re.search(r"pid=(\d+)", check.stderr)
    return int(match.group(1)) if match else None


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
