"""`robotui train`: train ACT on a LeRobotDataset v3.0, headless (the twin of `lerobot-train --policy.type=act`).

Output is LeRobot's: `<output-dir>/checkpoints/<step>/{pretrained_model,training_state}` and a `last` link, plus
`metrics.jsonl` (one JSON object per logged step) and LeRobot's console lines (`step:200 smpl:2K ... loss:...`),
so the job launcher, `lerobot-train` log parsers and LeRobot itself all read a robotui run.

Scale-out: `torchrun --nproc_per_node N -m robotui train ...` trains with DDP (gloo on CPU, NCCL on GPUs); rank 0
alone writes checkpoints, metrics and log lines.

Away from the terminal: `--host [user@]host[:port]` runs the same command on a GPU box over SSH (the dataset
folder is copied there), `--detach` runs it here in its own process group; both go through the job launcher
(`robotui jobs tail|cancel|fetch NAME`, and the Train screen), so the run survives robotui and the SSH link.

Exit 0: trained to --steps (or, with --host/--detach, the job started); 1: training failed (diverged, a checkpoint could not be written...; checkpoints
already saved are kept); 2: bad command line, dataset, checkpoint or settings (nothing was trained);
130: interrupted (the last checkpoint stays valid and `--resume` continues from it).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:  # torch and the trainer load when a run starts, not with `robotui --help` or the app
    from engine.dataset.reader import LeRobotDatasetReader
    from engine.dataset.training import TrainingDataset
    from policies.train.config import TrainConfig
    from policies.train.distributed import DistEnv

EXIT_FAILED = 1
EXIT_USAGE = 2
POLICIES = ("act",)
# Policy fields that come from the dataset or other flags, never from --set.
NOT_SETTABLE = ("input_features", "output_features", "device", "use_peft", "pretrained_path", "n_obs_steps")
# What a resumed run may still change: the architecture and the optimizer's hyper-parameters are the
# checkpoint's (its optimizer state holds them).
RESUMABLE_POLICY_SETS = ("use_amp", "n_action_steps", "temporal_ensemble_coeff")
RESUMABLE_SETS = (*RESUMABLE_POLICY_SETS, "grad_clip_norm")
DEFAULTS = {"steps": 100_000, "batch_size": 8, "num_workers": 4, "seed": 1000, "log_freq": 200,
            "save_freq": 20_000}


class UsageError(ValueError):
    """A bad command line: nothing was started."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a policy (ACT) on a LeRobot dataset",
        description=(
            "Train ACT on a LeRobotDataset v3.0 with LeRobot's defaults and output layout. Resume an interrupted "
            "run with --resume and the same --output-dir. Multi-GPU / multi-node: "
            "torchrun --nproc_per_node N -m robotui train ..."
        ),
    )
    parser.add_argument("--dataset", metavar="ROOT_OR_ID",
                        help="dataset folder or Hub repo id (with --resume: defaults to the run's dataset)")
    parser.add_argument("--policy", choices=POLICIES, default="act", help="policy type (default act)")
    parser.add_argument("--output-dir", metavar="DIR",
                        help="run directory: checkpoints/, metrics.jsonl (with --host/--detach: the job's run "
                        "directory, default ~/robotui-jobs/NAME)")
    parser.add_argument("--steps", type=int, metavar="N", help=f"training steps (default {DEFAULTS['steps']})")
    parser.add_argument("--batch-size", type=int, metavar="B",
                        help=f"batch size per process (default {DEFAULTS['batch_size']})")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto",
                        help="where to train (default auto: cuda, then mps, then cpu)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --output-dir from checkpoints/last")
    parser.add_argument("--num-workers", type=int, metavar="W",
                        help=f"data loader worker processes (default {DEFAULTS['num_workers']}; 0 = in-process)")
    parser.add_argument("--seed", type=int, metavar="S", help=f"random seed (default {DEFAULTS['seed']})")
    parser.add_argument("--log-freq", type=int, metavar="F",
                        help=f"log a metrics line every F steps (default {DEFAULTS['log_freq']})")
    parser.add_argument("--save-freq", type=int, metavar="F",
                        help=f"checkpoint every F steps and at the end (default {DEFAULTS['save_freq']})")
    parser.add_argument("--augment", action="store_true",
                        help="random image augmentation (LeRobot's image_transforms: colour, sharpness, affine)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="a policy or optimizer setting, e.g. --set chunk_size=20 --set optimizer_lr=3e-5 "
                        "--set pretrained_backbone_weights=none (repeatable)")
    away = parser.add_argument_group("run as a job (survives robotui and the SSH link)")
    away.add_argument("--host", metavar="[USER@]HOST[:PORT]", help="train on this machine over SSH")
    away.add_argument("--detach", action="store_true", help="train here, in the background")
    away.add_argument("--name", help="job name (default act-YYYYMMDD-HHMMSS)")
    away.add_argument("--identity", metavar="FILE", help="SSH private key for --host")
    away.add_argument("--ssh-option", dest="ssh_options", action="append", default=[], metavar="KEY=VALUE",
                      help="extra ssh -o option for --host (repeatable)")
    away.add_argument("--program", metavar="PATH",
                      help="the robotui executable on the job's machine (default: robotui on its PATH)")
    parser.set_defaults(func=run)


def start_job(args: argparse.Namespace) -> int:
    """`--host` / `--detach`: the same training as a launcher job (nothing is trained in this process)."""
    import time

    from engine.jobs import JobError, JobLauncher
    from engine.jobs.presets import Hyperparameters, plan_training_job

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if not args.dataset:
        err.print("[bold red]robotui train:[/] say what to train on: --dataset ROOT_OR_ID")
        return EXIT_USAGE
    if args.resume:
        err.print("[bold red]robotui train:[/] --resume of a job: run `robotui train --resume --output-dir DIR` "
                  "on the machine that holds the run")
        return EXIT_USAGE
    extra: list[str] = [a for kv in args.sets for a in ("--set", kv)]
    for flag, value in (("--num-workers", args.num_workers), ("--seed", args.seed), ("--log-freq", args.log_freq),
                        ("--save-freq", args.save_freq)):
        if value is not None:
            extra += [flag, str(value)]
    if args.augment:
        extra.append("--augment")
    name = args.name or f"{args.policy}-{time.strftime('%Y%m%d-%H%M%S')}"
    hyper = Hyperparameters(steps=args.steps, batch_size=args.batch_size,
                            device=None if args.device == "auto" else args.device)
    try:
        spec = plan_training_job(name, f"robotui-{args.policy}", hyper, args.dataset, host=args.host,
                                 identity=args.identity, ssh_options=args.ssh_options, run_dir=args.output_dir,
                                 program=args.program, extra=extra)
        record = JobLauncher().start(spec, on_status=lambda m: print(f"… {m}", flush=True))
    except (JobError, ValueError) as e:
        err.print(f"[bold red]robotui train:[/] {escape(str(e))}")
        return EXIT_FAILED if isinstance(e, JobError) else EXIT_USAGE
    where = args.host or "this machine"
    print(f"started job {record.spec.name} on {where} (run dir {record.run_dir_abs})")
    print(f"follow it: robotui jobs tail {record.spec.name} -f · stop it: robotui jobs cancel {record.spec.name} · "
          f"bring the checkpoint home: robotui jobs fetch {record.spec.name}")
    return 0


# ----------------------------------------------------------------------------------------------- plan


@dataclass
class Plan:
    """Everything a run needs, resolved and checked before the process group or any file is touched."""

    config: TrainConfig
    policy_config: Any
    reader: LeRobotDatasetReader
    dataset: TrainingDataset
    resume_from: Path | None
    stats: dict[str, Any] | None  # None on resume: the checkpoint's processor files carry them
    sets: dict[str, str]


def plan_run(args: argparse.Namespace) -> Plan:
    from engine.dataset.reader import LeRobotDatasetReader
    from engine.dataset.training import (
        ImageTransformsConfig,
        TrainingDataError,
        TrainingDataset,
        check_policy_inputs,
        policy_features,
        training_stats,
    )
    from policies.act import ACTConfig
    from policies.train.checkpoint import (
        PRETRAINED_MODEL_DIR,
        holds_a_run,
        last_checkpoint,
        read_train_config,
    )
    from policies.train.config import TRAINER_SET_KEYS, TrainConfig, apply_sets, parse_sets, unknown_key

    output_dir = Path(args.output_dir).expanduser()
    sets = parse_sets(args.sets)
    given = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k) is not None}
    if args.resume:
        resume_from = last_checkpoint(output_dir)
        saved = read_train_config(resume_from)
        where = str(resume_from / PRETRAINED_MODEL_DIR / "train_config.json")
        config = TrainConfig.from_lerobot(saved, where)
        policy_config = _policy_config(ACTConfig, saved.get("policy"), where)
        refused = [k for k in sets if k not in RESUMABLE_SETS]
        if refused:
            raise UsageError(f"--set {', '.join(refused)} cannot change on --resume (the checkpoint fixes the "
                             f"architecture and optimizer); allowed: {', '.join(RESUMABLE_SETS)}; or start a new run")
        dataset_arg = args.dataset or config.dataset_root or config.dataset_repo_id
        if not dataset_arg:
            raise UsageError(f"{where} names no dataset: pass --dataset")
    else:
        if holds_a_run(output_dir):
            raise UsageError(f"{output_dir} already holds a training run: add --resume to continue it from "
                             "checkpoints/last, or choose a new --output-dir")
        if not args.dataset:
            raise UsageError("say what to train on: --dataset ROOT_OR_ID (a dataset folder or Hub repo id)")
        resume_from = None
        dataset_arg = args.dataset
        config = TrainConfig(output_dir=output_dir, dataset_repo_id="", job_name=args.policy,
                             image_transforms=ImageTransformsConfig(enable=args.augment).to_lerobot(), **DEFAULTS)
        policy_config = None
    config = replace(config, output_dir=output_dir, resume=args.resume, **given)
    if args.augment:
        config.image_transforms = {**ImageTransformsConfig.from_lerobot(config.image_transforms).to_lerobot(),
                                   "enable": True}
    trainer_sets = {k: v for k, v in sets.items() if k in TRAINER_SET_KEYS}
    config = apply_sets(config, trainer_sets, TRAINER_SET_KEYS)
    config.validate()

    reader = LeRobotDatasetReader.open(dataset_arg)
    config.dataset_repo_id = reader.repo_id or config.dataset_repo_id or f"local/{reader.root.name}"
    config.dataset_root = str(reader.root.resolve())
    policy_sets = {k: v for k, v in sets.items() if k not in TRAINER_SET_KEYS}
    if policy_config is None:
        inputs, outputs = policy_features(reader)
        policy_config = ACTConfig(input_features=inputs, output_features=outputs)
        settable = [f for f in _field_names(policy_config) if f not in NOT_SETTABLE]
        for key in policy_sets:
            if key not in settable:
                raise unknown_key(key, [*settable, *TRAINER_SET_KEYS])
        policy_config = apply_sets(policy_config, policy_sets, settable)
        try:
            policy_config.validate_features()
        except ValueError as exc:
            raise TrainingDataError(f"{reader.root}: {exc}") from exc
    else:
        policy_config = apply_sets(policy_config, policy_sets, RESUMABLE_POLICY_SETS)
        check_policy_inputs(reader, policy_config.input_features, policy_config.output_features)
    stats = None if args.resume else training_stats(reader, use_imagenet_stats=config.use_imagenet_stats)
    dataset = TrainingDataset(
        reader,
        chunk_size=policy_config.chunk_size,
        camera_keys=list(policy_config.image_features),
        image_transforms=ImageTransformsConfig.from_lerobot(config.image_transforms),
    )
    return Plan(config, policy_config, reader, dataset, resume_from, stats, sets)


def _policy_config(cls: Any, data: Any, where: str) -> Any:
    from policies.train.checkpoint import CheckpointError

    try:
        return cls.from_dict(data or {})
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: the policy config cannot be read: {exc}") from exc


def _field_names(obj: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(obj)]


# ------------------------------------------------------------------------------------------------ run


def run(args: argparse.Namespace) -> int:
    if args.host or args.detach:
        return start_job(args)
    if not args.output_dir:
        Console(stderr=True).print("[bold red]robotui train:[/] say where the run goes: --output-dir DIR")
        return EXIT_USAGE
    from engine.dataset.reader import DatasetError
    from engine.dataset.training import TrainingDataError
    from policies.train.backbone import BackboneWeightsError
    from policies.train.checkpoint import CheckpointError
    from policies.train.config import SettingError
    from policies.train.distributed import (
        destroy_process_group,
        dist_env,
        init_process_group,
        training_device,
    )

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    log = logging.getLogger("policies.train")
    try:
        env = dist_env()
        _setup_logging(env)
        plan = plan_run(args)
        device = training_device(args.device, env)
    except (UsageError, SettingError, DatasetError, TrainingDataError, CheckpointError, ValueError, OSError) as e:
        err.print(f"[bold red]robotui train:[/] {escape(str(e))}")
        return EXIT_USAGE
    try:
        init_process_group(env, device)
        try:
            policy = _build_policy(plan, device, env, log)
        except (BackboneWeightsError, CheckpointError, ValueError, OSError) as e:
            err.print(f"[bold red]robotui train:[/] {escape(str(e))}")
            return EXIT_USAGE
        return _train(plan, policy, device, env, err)
    finally:
        plan.dataset.close()
        destroy_process_group()


def _build_policy(plan: Plan, device: Any, env: DistEnv, log: logging.Logger) -> Any:
    import policies
    from policies.act import ACTPolicy
    from policies.train.backbone import load_backbone_weights
    from policies.train.checkpoint import PRETRAINED_MODEL_DIR
    from policies.train.distributed import set_seed

    cfg = plan.config
    if plan.resume_from is not None:
        saved = plan.policy_config
        policy = policies.load_policy(plan.resume_from / PRETRAINED_MODEL_DIR, str(device),
                                      **{k: getattr(saved, k) for k in RESUMABLE_POLICY_SETS if k in plan.sets})
        policy.config.device = device.type
        if env.is_main:
            log.info("resuming %s from %s", cfg.output_dir, plan.resume_from)
        return policy
    set_seed(cfg.seed)  # identical initial weights on every rank (DDP also broadcasts rank 0's)
    config = plan.policy_config
    config.device = device.type
    if device.type == "cuda" and "use_amp" not in plan.sets:
        config.use_amp = True  # robotui's default on GPUs (LeRobot's is off): bf16 autocast where supported
    policy = ACTPolicy(config, plan.stats)
    if config.image_features:
        described = load_backbone_weights(policy.model.backbone, config.pretrained_backbone_weights)
        if env.is_main:
            log.info("vision backbone: %s", described)
    return policy


def _train(plan: Plan, policy: Any, device: Any, env: DistEnv, err: Console) -> int:
    import policies
    from engine.dataset.reader import DatasetError
    from policies.train.checkpoint import CHECKPOINTS_DIR, PRETRAINED_MODEL_DIR, CheckpointError
    from policies.train.loop import DatasetSize, Trainer, TrainingError

    cfg = plan.config

    def save_model(model: Any, directory: Path) -> None:
        policies.save_pretrained(model, directory, train_config=cfg.to_lerobot(model.config.to_dict()))

    try:
        trainer = Trainer(
            policy, plan.dataset, cfg,
            device=device, env=env,
            size=DatasetSize(frames=plan.dataset.num_frames, episodes=plan.dataset.num_episodes),
            save_model=save_model,
            use_amp=bool(policy.config.use_amp),
        )
        result = trainer.run(plan.resume_from)
    except (TrainingError, CheckpointError, DatasetError, OSError) as e:
        err.print(f"[bold red]robotui train: training stopped:[/] {escape(str(e))}")
        if env.is_main and (cfg.output_dir / CHECKPOINTS_DIR).exists():
            err.print(f"checkpoints saved so far are kept in {escape(str(cfg.output_dir))}; continue with --resume")
        return EXIT_FAILED
    if env.is_main and result.checkpoint is not None:
        print(f"checkpoint: {result.checkpoint / PRETRAINED_MODEL_DIR}", flush=True)
    return 0


def _setup_logging(env: DistEnv) -> None:
    """LeRobot's log line format on stdout for the trainer's logger; other ranks only report errors (their
    warnings repeat rank 0's)."""
    from policies.train.metrics import lerobot_log_handler

    log = logging.getLogger("policies.train")
    log.handlers = [lerobot_log_handler(sys.stdout)]
    log.setLevel(logging.INFO if env.is_main else logging.ERROR)
    log.propagate = False
