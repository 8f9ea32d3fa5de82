"""The job launcher: run training (or any command) detached, here or on an SSH host, and keep track of it.

    spec = plan_training_job("act-1", "act", Hyperparameters(steps=20_000), "~/data/pick", host="gpu-box")
    launcher = JobLauncher()
    launcher.start(spec)                      # copies the dataset, starts detached, registers the job
    for line in launcher.follow("act-1"):     # the log, live, across dropped connections
        progress.feed_line(line.text)
    launcher.fetch("act-1")                   # checkpoints/last/pretrained_model -> a local folder

Modules: `spec` (JobSpec, JobRecord, SSH host syntax), `registry` (jobs.json), `shell` (the sh scripts that
run on the job's machine), `transport` (sh / ssh / rsync and their error messages), `follow` (offset-based
log reading), `metrics` (log and metrics.jsonl parsers, JobProgress), `presets` (lerobot-train and robotui
train command lines), `launcher` (the operations).
"""

from engine.jobs.errors import JobError, RegistryError, SshError
from engine.jobs.follow import LogFollower, LogLine
from engine.jobs.launcher import JobLauncher, JobSnapshot
from engine.jobs.metrics import JobProgress, parse_console_line, parse_tqdm_line, read_metrics_jsonl
from engine.jobs.presets import PRESETS, Hyperparameters, plan_training_job
from engine.jobs.registry import JobRegistry
from engine.jobs.spec import JobRecord, JobSpec, JobState, SshHost

__all__ = [
    "PRESETS",
    "Hyperparameters",
    "JobError",
    "JobLauncher",
    "JobProgress",
    "JobRecord",
    "JobRegistry",
    "JobSnapshot",
    "JobSpec",
    "JobState",
    "LogFollower",
    "LogLine",
    "RegistryError",
    "SshError",
    "SshHost",
    "parse_console_line",
    "parse_tqdm_line",
    "plan_training_job",
    "read_metrics_jsonl",
]
