"""Training presets: the command line for `lerobot-train` (act, diffusion, pi0, pi05, smolvla) or robotui's
own trainer, from the hyperparameters users change most.

Every value a preset carries is written out explicitly, so the job's argv alone says how it was trained.
Lessons from LeRobot users built in: fine-tuning uses `--policy.path` (which replaces `--policy.type`);
cosine schedules get `scheduler_decay_steps` = steps, else a short run never decays its LR; `save_freq` is
capped at the run's length; `--policy.push_to_hub=false` (LeRobot refuses to start without a repo id
otherwise); the output folder sits in the job's own run directory, so runs never clobber each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from pathlib import Path, PurePosixPath

from engine.jobs.errors import JobError
from engine.jobs.spec import JobSpec, default_remote_dataset, default_run_dir, remote_path

LEROBOT_TRAIN = "lerobot-train"
ROBOTUI = "robotui"
OUTPUT_SUBDIR = "train"  # <run dir>/train: must not exist before the run (lerobot-train refuses to overwrite)


@dataclass(frozen=True)
class Hyperparameters:
    """None means "leave it to the preset (or the trainer's default)"."""

    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    chunk_size: int | None = None
    n_action_steps: int | None = None
    pretrained: str | None = None  # a checkpoint folder or Hub id to fine-tune from
    freeze_vision_encoder: bool | None = None
    train_expert_only: bool | None = None
    save_freq: int | None = None
    log_freq: int | None = None
    device: str | None = None

    def over(self, base: Hyperparameters) -> Hyperparameters:
        """These values where set, `base`'s elsewhere."""
        return replace(
            base, **{f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        )


@dataclass(frozen=True)
class Preset:
    name: str
    program: str  # LEROBOT_TRAIN or ROBOTUI
    policy_type: str
    defaults: Hyperparameters
    summary: str
    chunk_flag: str = "chunk_size"  # the policy field that holds the predicted horizon
    freeze_flags: bool = False  # the policy has freeze_vision_encoder / train_expert_only
    cosine_schedule: bool = False  # the policy's scheduler has scheduler_decay_steps


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "act",
            LEROBOT_TRAIN,
            "act",
            Hyperparameters(
                steps=100_000,
                batch_size=8,
                lr=1e-5,
                chunk_size=100,
                n_action_steps=100,
                save_freq=20_000,
                log_freq=200,
            ),
            "ACT from scratch: the first policy to try, trains on a laptop GPU",
        ),
        Preset(
            "diffusion",
            LEROBOT_TRAIN,
            "diffusion",
            Hyperparameters(
                steps=100_000,
                batch_size=64,
                lr=1e-4,
                chunk_size=16,
                n_action_steps=8,
                save_freq=20_000,
                log_freq=200,
            ),
            "Diffusion Policy from scratch (6-8 GB free GPU memory)",
            chunk_flag="horizon",
        ),
        Preset(
            "pi0",
            LEROBOT_TRAIN,
            "pi0",
            Hyperparameters(
                steps=30_000,
                batch_size=4,
                lr=2.5e-5,
                chunk_size=50,
                n_action_steps=50,
                pretrained="lerobot/pi0_base",
                freeze_vision_encoder=False,
                train_expert_only=False,
                save_freq=5_000,
                log_freq=100,
            ),
            "fine-tune π0 from lerobot/pi0_base (24 GB+; small batches)",
            freeze_flags=True,
            cosine_schedule=True,
        ),
        Preset(
            "pi05",
            LEROBOT_TRAIN,
            "pi05",
            Hyperparameters(
                steps=30_000,
                batch_size=4,
                lr=2.5e-5,
                chunk_size=50,
                n_action_steps=50,
                pretrained="lerobot/pi05_base",
                freeze_vision_encoder=False,
                train_expert_only=False,
                save_freq=5_000,
                log_freq=100,
            ),
            "fine-tune π0.5 from lerobot/pi05_base (24 GB+; small batches)",
            freeze_flags=True,
            cosine_schedule=True,
        ),
        Preset(
            "smolvla",
            LEROBOT_TRAIN,
            "smolvla",
            Hyperparameters(
                steps=20_000,
                batch_size=64,
                lr=1e-4,
                chunk_size=50,
                n_action_steps=50,
                pretrained="lerobot/smolvla_base",
                freeze_vision_encoder=True,
                train_expert_only=True,
                save_freq=5_000,
                log_freq=100,
            ),
            "fine-tune SmolVLA from lerobot/smolvla_base (12-16 GB); unfreeze both flags for big gains",
            freeze_flags=True,
            cosine_schedule=True,
        ),
        Preset(
            "robotui-act",
            ROBOTUI,
            "act",
            Hyperparameters(steps=100_000, batch_size=8, lr=1e-5, chunk_size=100, n_action_steps=100),
            "ACT with robotui's own trainer (no lerobot needed on the host)",
        ),
    )
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise JobError(f"no preset {name!r}: choose one of {', '.join(PRESETS)}") from None


def local_repo_id(folder: str) -> str:
    """`local/NAME` for a dataset folder (lerobot-train wants a repo id even with --dataset.root)."""
    return "local/" + (re.sub(r"[^A-Za-z0-9._-]+", "_", PurePosixPath(folder).name).strip("_.-") or "dataset")


def _flag(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else f"{value}"


def training_argv(
    preset: Preset,
    hyper: Hyperparameters,
    *,
    dataset: str,
    output_dir: str,
    job_name: str,
    repo_id: str | None = None,
    dataset_is_folder: bool = True,
    program: str | None = None,
    extra: tuple[str, ...] | list[str] = (),
) -> list[str]:
    """The full command: `hyper` over the preset's defaults, `dataset` and `output_dir` as the job's machine
    sees them, `extra` appended verbatim (so it can override anything)."""
    h = hyper.over(preset.defaults)
    if not preset.freeze_flags and (h.freeze_vision_encoder is not None or h.train_expert_only is not None):
        raise JobError(f"{preset.name} has no freeze_vision_encoder / train_expert_only settings")
    for name in ("steps", "batch_size", "chunk_size", "n_action_steps", "save_freq", "log_freq"):
        value = getattr(h, name)
        if value is not None and value < 1:
            raise JobError(f"{name.replace('_', ' ')} must be at least 1, got {value}")
    if h.lr is not None and not h.lr > 0:
        raise JobError(f"the learning rate must be positive, got {h.lr:g}")
    if h.chunk_size and h.n_action_steps and h.n_action_steps > h.chunk_size:
        raise JobError(f"n_action_steps ({h.n_action_steps}) cannot exceed the chunk size ({h.chunk_size})")
    if preset.program == ROBOTUI:
        return _robotui_argv(preset, h, dataset, output_dir, program, extra)
    return _lerobot_argv(preset, h, dataset, output_dir, job_name, repo_id, dataset_is_folder, program, extra)


def _lerobot_argv(
    preset: Preset,
    h: Hyperparameters,
    dataset: str,
    output_dir: str,
    job_name: str,
    repo_id: str | None,
    dataset_is_folder: bool,
    program: str | None,
    extra: tuple[str, ...] | list[str],
) -> list[str]:
    argv = [program or LEROBOT_TRAIN]
    if dataset_is_folder:
        argv += [f"--dataset.repo_id={repo_id or local_repo_id(dataset)}", f"--dataset.root={dataset}"]
    else:
        argv.append(f"--dataset.repo_id={dataset}")
    argv.append(f"--policy.path={h.pretrained}" if h.pretrained else f"--policy.type={preset.policy_type}")
    argv += [f"--output_dir={output_dir}", f"--job_name={job_name}", "--policy.push_to_hub=false"]
    if h.steps is not None:
        argv.append(f"--steps={h.steps}")
    if h.batch_size is not None:
        argv.append(f"--batch_size={h.batch_size}")
    if h.lr is not None:
        argv.append(f"--policy.optimizer_lr={h.lr:g}")
    if h.chunk_size is not None:
        argv.append(f"--policy.{preset.chunk_flag}={h.chunk_size}")
    if h.n_action_steps is not None:
        argv.append(f"--policy.n_action_steps={h.n_action_steps}")
    for name in ("freeze_vision_encoder", "train_expert_only"):
        if getattr(h, name) is not None:
            argv.append(f"--policy.{name}={_flag(getattr(h, name))}")
    if preset.cosine_schedule and h.steps is not None:
        argv.append(f"--policy.scheduler_decay_steps={h.steps}")
    if h.save_freq is not None:
        argv.append(f"--save_freq={min(h.save_freq, h.steps) if h.steps else h.save_freq}")
    if h.log_freq is not None:
        argv.append(f"--log_freq={h.log_freq}")
    if h.device is not None:
        argv.append(f"--policy.device={h.device}")
    return [*argv, *extra]


def _robotui_argv(
    preset: Preset,
    h: Hyperparameters,
    dataset: str,
    output_dir: str,
    program: str | None,
    extra: tuple[str, ...] | list[str],
) -> list[str]:
    if h.save_freq is not None or h.log_freq is not None or h.pretrained is not None:
        raise JobError(
            "robotui train takes no save/log frequency or pretrained policy here: pass its own "
            "flags after `--`"
        )
    argv = [
        program or ROBOTUI,
        "train",
        "--dataset",
        dataset,
        "--policy",
        preset.policy_type,
        "--output-dir",
        output_dir,
    ]
    if h.steps is not None:
        argv += ["--steps", str(h.steps)]
    if h.batch_size is not None:
        argv += ["--batch-size", str(h.batch_size)]
    if h.device is not None:
        argv += ["--device", h.device]
    for key, value in (
        ("optimizer_lr", h.lr),
        ("chunk_size", h.chunk_size),
        ("n_action_steps", h.n_action_steps),
    ):
        if value is not None:
            argv += ["--set", f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"]
    return [*argv, *extra]


def plan_training_job(
    name: str,
    preset_name: str,
    hyper: Hyperparameters,
    dataset: str,
    *,
    host: str | None = None,
    identity: str | None = None,
    ssh_options: tuple[str, ...] | list[str] = (),
    repo_id: str | None = None,
    run_dir: str | None = None,
    remote_dataset: str | None = None,
    program: str | None = None,
    extra: tuple[str, ...] | list[str] = (),
) -> JobSpec:
    """A ready-to-start JobSpec: paths chosen for where it runs, the dataset folder copied there (SSH)."""
    preset = get_preset(preset_name)
    is_folder = Path(dataset).expanduser().is_dir()
    run = run_dir or default_run_dir(name, host)
    if host is not None:
        run, remote_dataset = remote_path(run), remote_dataset and remote_path(remote_dataset)
    if host is None:
        run = str(Path(run).expanduser().resolve())
        on_job = str(Path(dataset).expanduser().resolve()) if is_folder else dataset
    else:
        remote_dataset = remote_dataset or (default_remote_dataset(dataset) if is_folder else None)
        on_job = remote_dataset if is_folder else dataset
    assert on_job is not None
    output_dir = str(PurePosixPath(run, OUTPUT_SUBDIR))
    if is_folder and repo_id is None:
        repo_id = local_repo_id(str(Path(dataset).expanduser().resolve()))  # the user's name, not the copy's
    argv = training_argv(
        preset,
        hyper,
        dataset=on_job,
        output_dir=output_dir,
        job_name=name,
        repo_id=repo_id,
        dataset_is_folder=is_folder,
        program=program,
        extra=extra,
    )
    return JobSpec.create(
        name,
        argv,
        host=host,
        identity=identity,
        ssh_options=ssh_options,
        run_dir=run,
        dataset=dataset if is_folder and host else None,
        remote_dataset=remote_dataset if host else None,
        output_dir=output_dir,
        total_steps=hyper.over(preset.defaults).steps,
    )
