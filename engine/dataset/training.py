"""Training samples from a LeRobotDataset v3.0: one frame per item, the way LeRobot's `LeRobotDataset` serves
ACT with `delta_timestamps={"action": range(chunk_size) / fps}`.

Each item holds the frame's `observation.state` (and environment state), each camera as float32 CHW in [0, 1]
decoded with PyAV at the frame's exact timestamp (LeRobot's 1e-4 s tolerance), the next `chunk_size` actions
with `action_is_pad` (past the episode's end the last action repeats and the pad flag is set), the task string
and the index columns. Numeric columns are loaded once for the whole dataset (they are small); video
containers stay open in a small per-process LRU so a DataLoader worker seeks instead of reopening files, and a
bounded cache keeps memory flat on datasets with thousands of mp4s (workflows-and-lessons.md §8.2).

`ImageTransforms` is LeRobot's optional `image_transforms` (off by default) written in plain torch: a random
subset of brightness/contrast/saturation/hue jitter, sharpness jitter and a small affine per camera image.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from engine.dataset.format import ACTION_KEY, STATE_KEY
from engine.dataset.reader import (
    TIMESTAMP_TOLERANCE_S,
    DatasetFormatError,
    FrameDecodeError,
    LeRobotDatasetReader,
    column_to_numpy,
    read_parquet,
)
from policies.base import ENV_STATE_KEY, PolicyFeature

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INDEX_KEYS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
DEFAULT_OPEN_VIDEOS = 8
TRANSFORM_NAMES = ("brightness", "contrast", "saturation", "hue", "sharpness", "affine")


class TrainingDataError(ValueError):
    """The dataset cannot feed the policy as configured (missing cameras, shapes, stats...)."""


# --------------------------------------------------------------------------------------------- features


def policy_features(reader: LeRobotDatasetReader) -> tuple[dict[str, PolicyFeature], dict[str, PolicyFeature]]:
    """(input_features, output_features) as LeRobot derives them from a dataset: cameras VISUAL in CHW,
    `observation.state` STATE, `observation.environment_state` ENV, `action` ACTION."""
    feats = reader.features
    if ACTION_KEY not in feats:
        raise TrainingDataError(f"{reader.root} has no '{ACTION_KEY}' feature, so there is nothing to learn")
    inputs: dict[str, PolicyFeature] = {}
    for key, ft in feats.items():
        shape = tuple(int(s) for s in ft["shape"])
        if key in reader.camera_keys:
            h, w, c = shape if shape[-1] in (1, 3) else (shape[1], shape[2], shape[0])
            inputs[key] = PolicyFeature("VISUAL", (c, h, w))
        elif key == STATE_KEY:
            inputs[key] = PolicyFeature("STATE", shape)
        elif key == ENV_STATE_KEY:
            inputs[key] = PolicyFeature("ENV", shape)
    outputs = {ACTION_KEY: PolicyFeature("ACTION", tuple(int(s) for s in feats[ACTION_KEY]["shape"]))}
    return inputs, outputs


def check_policy_inputs(
    reader: LeRobotDatasetReader,
    input_features: Mapping[str, PolicyFeature],
    output_features: Mapping[str, PolicyFeature],
) -> None:
    """Refuse a dataset that lacks a feature the policy reads, or holds it at another shape (e.g. a checkpoint
    trained on 640x480 cameras resumed on a 320x240 dataset)."""
    have_in, have_out = policy_features(reader)
    have = {**have_in, **have_out}
    missing = [k for k in (*input_features, *output_features) if k not in have]
    if missing:
        cams = ", ".join(reader.camera_keys) or "none"
        raise TrainingDataError(
            f"the dataset {reader.root} lacks {', '.join(missing)}, which the policy needs (dataset cameras: "
            f"{cams}); train on a dataset recorded with those cameras, or start a new run on this one"
        )
    for key, feat in (*input_features.items(), *output_features.items()):
        if tuple(feat.shape) != tuple(have[key].shape):
            raise TrainingDataError(
                f"{key} has shape {list(have[key].shape)} in the dataset but {list(feat.shape)} in the policy; "
                "train on a dataset with the same cameras and joints, or start a new run"
            )


def training_stats(
    reader: LeRobotDatasetReader, *, use_imagenet_stats: bool = True
) -> dict[str, dict[str, np.ndarray]]:
    """meta/stats.json as float32 arrays, camera mean/std replaced by ImageNet's when asked (LeRobot's default
    `dataset.use_imagenet_stats=True`, which suits an ImageNet-pretrained backbone)."""
    stats = reader.stats
    if not stats:
        raise TrainingDataError(
            f"{reader.root} has no meta/stats.json, which normalization needs: run "
            f"`robotui dataset check {reader.root} --repair` to rebuild it"
        )
    out = {key: {name: np.asarray(v, dtype=np.float32) for name, v in s.items()} for key, s in stats.items()}
    if use_imagenet_stats:
        for key in reader.camera_keys:
            out.setdefault(key, {})
            out[key]["mean"] = np.asarray(IMAGENET_MEAN, dtype=np.float32).reshape(3, 1, 1)
            out[key]["std"] = np.asarray(IMAGENET_STD, dtype=np.float32).reshape(3, 1, 1)
    return out


# --------------------------------------------------------------------------------------- augmentation


@dataclass(frozen=True)
class ImageTransformsConfig:
    """LeRobot's `ImageTransformsConfig` defaults: each image gets `max_num_transforms` of the six, drawn
    without replacement by weight, applied in the listed order unless `random_order`."""

    enable: bool = False
    max_num_transforms: int = 3
    random_order: bool = False
    brightness: tuple[float, float] = (0.8, 1.2)
    contrast: tuple[float, float] = (0.8, 1.2)
    saturation: tuple[float, float] = (0.5, 1.5)
    hue: tuple[float, float] = (-0.05, 0.05)
    sharpness: tuple[float, float] = (0.5, 1.5)
    affine_degrees: tuple[float, float] = (-5.0, 5.0)
    affine_translate: tuple[float, float] = (0.05, 0.05)
    weights: Mapping[str, float] = field(default_factory=lambda: dict.fromkeys(TRANSFORM_NAMES, 1.0))

    def to_lerobot(self) -> dict[str, Any]:
        """The `dataset.image_transforms` block of LeRobot's train_config.json."""

        def jitter(name: str, kind: str, kwargs: dict[str, Any]) -> dict[str, Any]:
            return {"weight": float(self.weights.get(name, 1.0)), "type": kind, "kwargs": kwargs}

        return {
            "enable": self.enable,
            "max_num_transforms": self.max_num_transforms,
            "random_order": self.random_order,
            "tfs": {
                "brightness": jitter("brightness", "ColorJitter", {"brightness": list(self.brightness)}),
                "contrast": jitter("contrast", "ColorJitter", {"contrast": list(self.contrast)}),
                "saturation": jitter("saturation", "ColorJitter", {"saturation": list(self.saturation)}),
                "hue": jitter("hue", "ColorJitter", {"hue": list(self.hue)}),
                "sharpness": jitter("sharpness", "SharpnessJitter", {"sharpness": list(self.sharpness)}),
                "affine": jitter("affine", "RandomAffine", {"degrees": list(self.affine_degrees),
                                                            "translate": list(self.affine_translate)}),
            },
        }

    @classmethod
    def from_lerobot(cls, block: Mapping[str, Any] | None) -> ImageTransformsConfig:
        """Back from a train_config.json block; transforms it does not name keep their defaults."""
        if not block:
            return cls()
        tfs = block.get("tfs") or {}
        kwargs: dict[str, Any] = {}
        weights = dict.fromkeys(TRANSFORM_NAMES, 1.0)
        for name, spec in tfs.items():
            if name not in TRANSFORM_NAMES or not isinstance(spec, Mapping):
                continue
            weights[name] = float(spec.get("weight", 1.0))
            args = spec.get("kwargs") or {}
            if name == "affine":
                if "degrees" in args:
                    kwargs["affine_degrees"] = tuple(float(x) for x in args["degrees"])
                if "translate" in args:
                    kwargs["affine_translate"] = tuple(float(x) for x in args["translate"])
            elif name in args:
                kwargs[name] = tuple(float(x) for x in args[name])
        return cls(
            enable=bool(block.get("enable", False)),
            max_num_transforms=int(block.get("max_num_transforms", 3)),
            random_order=bool(block.get("random_order", False)),
            weights=weights,
            **kwargs,
        )


class ImageTransforms:
    """Random photometric and geometric jitter of one float CHW image in [0, 1]; torch's global RNG drives it,
    so a DataLoader worker's seed makes it reproducible."""

    def __init__(self, config: ImageTransformsConfig) -> None:
        self.config = config
        self._weights = torch.tensor([float(config.weights.get(n, 1.0)) for n in TRANSFORM_NAMES])
        if (self._weights < 0).any() or not self._weights.sum() > 0:
            raise ValueError("image transform weights must be >= 0 with at least one above 0")

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if not self.config.enable or self.config.max_num_transforms <= 0:
            return img
        live = int((self._weights > 0).sum())
        n = min(self.config.max_num_transforms, live)
        chosen = torch.multinomial(self._weights, n, replacement=False).tolist()
        if not self.config.random_order:
            chosen.sort()
        for i in chosen:
            img = self._apply(TRANSFORM_NAMES[i], img)
        return img

    def _apply(self, name: str, img: torch.Tensor) -> torch.Tensor:
        c = self.config
        if name == "brightness":
            return (img * _uniform(c.brightness)).clamp_(0, 1)
        if name == "contrast":
            return _blend(img, _grayscale(img).mean(), _uniform(c.contrast))
        if name == "saturation":
            return _blend(img, _grayscale(img).unsqueeze(0), _uniform(c.saturation))
        if name == "hue":
            return adjust_hue(img, _uniform(c.hue))
        if name == "sharpness":
            return _blend(img, _smoothed(img), _uniform(c.sharpness))
        return random_affine(img, c.affine_degrees, c.affine_translate)


def _uniform(bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    return float(torch.empty(1).uniform_(lo, hi)) if hi > lo else float(lo)


def _blend(img: torch.Tensor, other: torch.Tensor | float, factor: float) -> torch.Tensor:
    return (factor * img + (1.0 - factor) * other).clamp_(0, 1)


def _grayscale(img: torch.Tensor) -> torch.Tensor:
    return 0.2989 * img[0] + 0.587 * img[1] + 0.114 * img[2]


def _smoothed(img: torch.Tensor) -> torch.Tensor:
    """PIL's SMOOTH kernel on interior pixels, borders left as they are (what sharpness blends against)."""
    if img.shape[-1] < 3 or img.shape[-2] < 3:
        return img
    kernel = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]], dtype=img.dtype) / 13.0
    kernel = kernel.expand(img.shape[0], 1, 3, 3)
    inner = F.conv2d(img.unsqueeze(0), kernel, groups=img.shape[0])[0]
    out = img.clone()
    out[:, 1:-1, 1:-1] = inner
    return out


def rgb_to_hsv(img: torch.Tensor) -> torch.Tensor:
    r, g, b = img[0], img[1], img[2]
    maxc, _ = img.max(dim=0)
    minc, _ = img.min(dim=0)
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12), torch.zeros_like(maxc))
    d = delta.clamp_min(1e-12)
    rc, gc, bc = (maxc - r) / d, (maxc - g) / d, (maxc - b) / d
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, maxc])


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    h, s, v = hsv[0], hsv[1], hsv[2]
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    options = torch.stack([
        torch.stack([v, q, p, p, t, v]),
        torch.stack([t, v, v, q, p, p]),
        torch.stack([p, p, t, v, v, q]),
    ])  # (3 channels, 6 sectors, H, W)
    index = i.unsqueeze(0).unsqueeze(0).expand(3, 1, *i.shape)
    return options.gather(1, index).squeeze(1)


def adjust_hue(img: torch.Tensor, shift: float) -> torch.Tensor:
    """Rotate the hue by `shift` turns (in [-0.5, 0.5]), as torchvision's adjust_hue."""
    if shift == 0:
        return img
    hsv = rgb_to_hsv(img)
    hsv[0] = (hsv[0] + shift) % 1.0
    return hsv_to_rgb(hsv).clamp_(0, 1)


def random_affine(
    img: torch.Tensor, degrees: tuple[float, float], translate: tuple[float, float]
) -> torch.Tensor:
    """Rotate about the centre and shift by up to `translate` of the size; uncovered pixels become black."""
    _, h, w = img.shape
    angle = math.radians(_uniform(degrees))
    tx = round(_uniform((-translate[0] * w, translate[0] * w)))
    ty = round(_uniform((-translate[1] * h, translate[1] * h)))
    cos, sin = math.cos(angle), math.sin(angle)
    inv = torch.tensor([[cos, sin], [-sin, cos]], dtype=torch.float32)  # output pixel -> input pixel rotation
    shift = -inv @ torch.tensor([float(tx), float(ty)])
    to_norm = torch.diag(torch.tensor([2.0 / w, 2.0 / h]))
    from_norm = torch.diag(torch.tensor([w / 2.0, h / 2.0]))
    theta = torch.cat([to_norm @ inv @ from_norm, (to_norm @ shift).unsqueeze(1)], dim=1).to(img.dtype)
    grid = F.affine_grid(theta.unsqueeze(0), [1, *img.shape], align_corners=False)
    return F.grid_sample(img.unsqueeze(0), grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]


# ------------------------------------------------------------------------------------------- decoding


class VideoFrames:
    """Frames by timestamp from open containers, at most `max_open` per process (LRU).

    The cache belongs to the process that filled it: a forked DataLoader worker starts with an empty one, so
    no two processes ever share a container's file position.
    """

    def __init__(self, max_open: int = DEFAULT_OPEN_VIDEOS, tolerance_s: float = TIMESTAMP_TOLERANCE_S) -> None:
        self.max_open = max(1, max_open)
        self.tolerance_s = tolerance_s
        self._open: OrderedDict[Path, av.container.InputContainer] = OrderedDict()
        self._pid = os.getpid()

    def __getstate__(self) -> dict[str, Any]:
        return {"max_open": self.max_open, "tolerance_s": self.tolerance_s}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["max_open"], state["tolerance_s"])

    def _container(self, path: Path) -> av.container.InputContainer:
        if self._pid != os.getpid():  # inherited through fork: the parent's containers are not ours
            self._open = OrderedDict()
            self._pid = os.getpid()
        container = self._open.get(path)
        if container is not None:
            self._open.move_to_end(path)
            return container
        if not path.is_file():
            raise FrameDecodeError(f"{path}: video file missing")
        try:
            container = av.open(str(path))
        except (OSError, av.FFmpegError) as exc:
            raise FrameDecodeError(f"{path}: cannot open video ({exc})") from exc
        # One decoding thread: DataLoader workers are the parallelism, and frame threading would decode frames
        # past the target after every seek.
        container.streams.video[0].thread_count = 1
        self._open[path] = container
        while len(self._open) > self.max_open:
            _, old = self._open.popitem(last=False)
            old.close()
        return container

    def frame(self, path: Path, timestamp: float) -> np.ndarray:
        """The RGB uint8 (H, W, 3) frame whose pts is within tolerance of `timestamp`."""
        container = self._container(path)
        stream = container.streams.video[0]
        tb = stream.time_base
        tol = self.tolerance_s
        nearest: float | None = None
        try:
            container.seek(max(0, int((timestamp - tol) / tb)), stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * tb)
                if nearest is None or abs(t - timestamp) < abs(nearest - timestamp):
                    nearest = t
                if abs(t - timestamp) <= tol:
                    return frame.to_ndarray(format="rgb24")
                if t > timestamp + tol:
                    break
        except (OSError, av.FFmpegError) as exc:
            self._open.pop(path, None)
            container.close()
            raise FrameDecodeError(f"{path}: cannot decode video at {timestamp:.6f} s ({exc})") from exc
        seen = "nothing decodes from there" if nearest is None else f"nearest frame at {nearest:.6f} s"
        raise FrameDecodeError(f"{path}: no frame within {tol:g} s of {timestamp:.6f} s ({seen})")

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1].close()


# -------------------------------------------------------------------------------------------- dataset


class TrainingDataset(Dataset):
    """Frame-level samples for chunked imitation learning; see the module docstring for an item's keys."""

    def __init__(
        self,
        reader: LeRobotDatasetReader,
        *,
        chunk_size: int,
        camera_keys: Sequence[str] | None = None,
        image_transforms: ImageTransformsConfig | None = None,
        max_open_videos: int = DEFAULT_OPEN_VIDEOS,
    ) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.reader = reader
        self.chunk_size = int(chunk_size)
        self.camera_keys = list(reader.camera_keys if camera_keys is None else camera_keys)
        unknown = [k for k in self.camera_keys if k not in reader.camera_keys]
        if unknown:
            raise TrainingDataError(f"{reader.root} has no camera {', '.join(unknown)} "
                                    f"(it has {', '.join(reader.camera_keys) or 'none'})")
        self.transforms = ImageTransforms(image_transforms) if image_transforms and image_transforms.enable else None
        self._videos = VideoFrames(max_open_videos)
        self._load_columns()

    # --- numeric columns, whole dataset

    def _load_columns(self) -> None:
        reader = self.reader
        feats = reader.features
        self.vector_keys = [k for k in (STATE_KEY, ENV_STATE_KEY, ACTION_KEY) if k in feats]
        if ACTION_KEY not in feats or "index" not in feats:
            raise DatasetFormatError(f"{reader.root}: meta/info.json lacks the 'action' or 'index' feature")
        keys = [*self.vector_keys, *(k for k in INDEX_KEYS if k in feats)]
        paths = sorted({reader.data_path(ep) for ep in reader.episode_indices})
        parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
        for path in paths:
            table = read_parquet(path, columns=[k for k in keys if k in _schema_names(path)])
            for k in keys:
                if k not in table.column_names:
                    raise DatasetFormatError(f"{path} has no column '{k}'")
                parts[k].append(column_to_numpy(table[k], feats[k]))
        columns = {k: np.concatenate(v) if len(v) > 1 else v[0] for k, v in parts.items()}
        order = np.argsort(columns["index"], kind="stable")
        self.columns = {k: np.ascontiguousarray(v[order]) for k, v in columns.items()}
        index = self.columns["index"]
        starts, ends, eps = [], [], []
        for ep in reader.episode_indices:
            row = reader.episode(ep)
            lo, hi = int(row["dataset_from_index"]), int(row["dataset_to_index"])
            first = int(np.searchsorted(index, lo))
            if hi - lo != int(row["length"]) or first + (hi - lo) > len(index) or (
                hi > lo and (index[first] != lo or index[first + hi - lo - 1] != hi - 1)
            ):
                raise DatasetFormatError(
                    f"{reader.root}: episode {ep}'s rows [{lo}, {hi}) are not all in the data files; run "
                    f"`robotui dataset check {reader.root}`"
                )
            starts.append(first)
            ends.append(first + hi - lo)
            eps.append(ep)
        self._episode_of_row = np.zeros(len(index), dtype=np.int64)
        self._ep_start = np.asarray(starts, dtype=np.int64)
        self._ep_end = np.asarray(ends, dtype=np.int64)
        self._episodes = eps
        for pos, (s, e) in enumerate(zip(starts, ends, strict=True)):
            self._episode_of_row[s:e] = pos
        rows = [np.arange(s, e) for s, e in zip(starts, ends, strict=True)]
        self._rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        self._video_start = {
            key: np.asarray([float(reader.episode(ep)[f"videos/{key}/from_timestamp"]) for ep in eps])
            for key in self.camera_keys
            if key in reader.video_keys
        }
        self._video_path = {
            key: [reader.video_path(key, ep) for ep in eps] for key in self.camera_keys if key in reader.video_keys
        }

    @property
    def num_episodes(self) -> int:
        return len(self._episodes)

    @property
    def num_frames(self) -> int:
        return len(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = int(self._rows[i])
        pos = int(self._episode_of_row[row])
        start, end = int(self._ep_start[pos]), int(self._ep_end[pos])
        cols = self.columns
        item: dict[str, Any] = {}
        for key in self.vector_keys:
            if key != ACTION_KEY:
                item[key] = torch.from_numpy(cols[key][row].astype(np.float32, copy=False))
        wanted = row + np.arange(self.chunk_size)
        item[ACTION_KEY] = torch.from_numpy(cols[ACTION_KEY][np.minimum(wanted, end - 1)].astype(np.float32))
        item["action_is_pad"] = torch.from_numpy(wanted >= end)
        for key in INDEX_KEYS:
            if key in cols:
                item[key] = torch.as_tensor(cols[key][row])
        frame_index = row - start
        for key in self.camera_keys:
            image = self._image(key, pos, frame_index)
            item[key] = self.transforms(image) if self.transforms is not None else image
        task_index = int(cols["task_index"][row]) if "task_index" in cols else 0
        item["task"] = self.reader.tasks.get(task_index, "")
        return item

    def _image(self, key: str, pos: int, frame_index: int) -> torch.Tensor:
        if key in self._video_path:
            # from_timestamp + frame_index / fps, as the reader decodes: the float32 `timestamp` column is the
            # same value rounded, which drifts towards the 1e-4 s tolerance in long episodes.
            t = float(self._video_start[key][pos]) + frame_index / self.reader.fps
            try:
                pixels = self._videos.frame(self._video_path[key][pos], t)
            except FrameDecodeError as exc:
                raise FrameDecodeError(f"{exc} (episode {self._episodes[pos]}, frame {frame_index}, {key})") from exc
        else:  # images embedded in the parquet (datasets recorded without video)
            pixels = self.reader.decode_frames(key, self._episodes[pos], [frame_index])[0]
        return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).float().div_(255.0)

    def episode_bounds(self, episode_index: int) -> tuple[int, int]:
        """[first, end) dataset positions (as used by `__getitem__`) of one episode."""
        pos = self._episodes.index(int(episode_index))
        first = int(np.searchsorted(self._rows, self._ep_start[pos]))
        return first, first + int(self._ep_end[pos] - self._ep_start[pos])

    def close(self) -> None:
        self._videos.close()


def _schema_names(path: Path) -> set[str]:
    try:
        return set(pq.read_schema(path).names)
    except (OSError, pa.ArrowException) as exc:
        raise DatasetFormatError(f"{path} is not a readable parquet file: {exc}") from exc
