"""Job specs: the SSH host syntax, what is refused up front, and the registry's JSON round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.jobs import JobError, JobRecord, JobSpec, JobState, SshHost
from engine.jobs.transport import SshTransport


@pytest.mark.parametrize(
    ("text", "host", "user", "port", "shown"),
    [
        ("gpu", "gpu", None, None, "gpu"),
        ("me@gpu.lab.org", "gpu.lab.org", "me", None, "me@gpu.lab.org"),
        ("me@10.0.0.2:2222", "10.0.0.2", "me", 2222, "me@10.0.0.2:2222"),
        ("[::1]:22", "::1", None, 22, "[::1]:22"),
        ("ci_user@[fe80::1%eth0]", "fe80::1%eth0", "ci_user", None, "ci_user@[fe80::1%eth0]"),
    ],
)
def test_host_syntax(text: str, host: str, user: str | None, port: int | None, shown: str) -> None:
    parsed = SshHost.parse(text)
    assert (parsed.host, parsed.user, parsed.port, str(parsed)) == (host, user, port, shown)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-oProxyCommand=touch /tmp/x",
        "me@",
        "gpu:",
        "gpu:0",
        "gpu:70000",
        "a b",
        "me@gpu;ls",
        "[::1",
        "$(x)",
        "me@-gpu",
    ],
)
def test_bad_hosts_are_refused(text: str) -> None:
    with pytest.raises(JobError, match=r"is not of the form \[user@\]host\[:port\]"):
        SshHost.parse(text)


def test_ssh_command_line_puts_user_options_first() -> None:
    transport = SshTransport(SshHost.parse("me@gpu:2200"), "/k/id", ["ConnectTimeout=3"])
    argv = transport.argv("echo", ["a b"])
    assert argv[:3] == ["ssh", "-o", "ConnectTimeout=3"] and argv.index("ConnectTimeout=3") < argv.index(
        "ConnectTimeout=10"
    )
    assert (
        "BatchMode=yes" in argv
        and argv[argv.index("-p") + 1] == "2200"
        and argv[argv.index("-i") + 1] == "/k/id"
    )
    assert argv[-3:] == ["--", "me@gpu", "sh -c echo robotui 'a b'"]


def test_spec_checks(tmp_path: Path) -> None:
    with pytest.raises(JobError, match="job name 'a b' is not usable"):
        JobSpec.create("a b", ["true"])
    with pytest.raises(JobError, match="no command to run"):
        JobSpec.create("a", [])
    with pytest.raises(JobError, match="cannot start with an option"):
        JobSpec.create("a", ["--steps=3"])
    with pytest.raises(JobError, match="only apply with --host"):
        JobSpec.create("a", ["true"], identity="/k")
    with pytest.raises(JobError, match=r"identity file .* does not exist"):
        JobSpec.create("a", ["true"], host="gpu", identity=str(tmp_path / "nokey"))
    with pytest.raises(JobError, match=r"dataset folder .* does not exist"):
        JobSpec.create("a", ["true"], host="gpu", dataset=str(tmp_path / "nodata"))
    with pytest.raises(JobError, match="is not Key=Value"):
        JobSpec.create("a", ["true"], host="gpu", ssh_options=["BatchMode"])
    local = JobSpec.create("a", ["true"], run_dir="rel", cwd=str(tmp_path))
    assert local.run_dir == str(tmp_path / "rel") and local.where == "local"


def test_record_json_round_trip() -> None:
    spec = JobSpec.create(
        "a", ["python", "train.py", "it's"], host="me@gpu:2", ssh_options=["A=b"], total_steps=9
    )
    record = JobRecord(spec=spec, pid=42, start_token="123", state=JobState.FAILED, exit_code=3, detail="why")
    again = JobRecord.from_json(record.to_json())
    assert again == record and isinstance(again.spec.argv, tuple) and again.state is JobState.FAILED
