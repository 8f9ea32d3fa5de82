"""Training samples: action chunks padded at episode ends as LeRobot's delta_timestamps do, frames decoded at
the exact timestamps (several episodes per mp4, so from_timestamp matters), DataLoader workers, the policy
features and stats a dataset yields, clear refusals, and image augmentation (off = identity)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from engine.dataset.reader import LeRobotDatasetReader
from engine.dataset.training import (
    IMAGENET_MEAN,
    ImageTransforms,
    ImageTransformsConfig,
    TrainingDataError,
    TrainingDataset,
    adjust_hue,
    check_policy_inputs,
    hsv_to_rgb,
    policy_features,
    random_affine,
    rgb_to_hsv,
    training_stats,
)
from policies.base import PolicyFeature
from tests.engine.dataset.lerobot_fixture import LeRobotStyleDataset, write_lerobot_style_dataset
from tests.policies.train.sim_dataset import sim_dataset

LENGTHS = [5, 7, 4]
CAMS = {"front": (16, 24), "wrist": (16, 16)}


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> LeRobotStyleDataset:
    # Two episodes per file: episode 1 starts part-way into its mp4, episode 2 opens a new file.
    return write_lerobot_style_dataset(tmp_path_factory.mktemp("lr") / "ds", LENGTHS, CAMS, episodes_per_file=2)


@pytest.fixture(scope="module")
def reader(spec: LeRobotStyleDataset) -> LeRobotDatasetReader:
    return LeRobotDatasetReader.open(spec.root)


def test_action_chunks_are_padded_past_the_episode_end(spec: LeRobotStyleDataset,
                                                       reader: LeRobotDatasetReader) -> None:
    ds = TrainingDataset(reader, chunk_size=4)
    assert len(ds) == sum(LENGTHS) and (ds.num_episodes, ds.num_frames) == (3, 16)
    for ep in range(3):
        actions, states = spec.action(ep), spec.state(ep)
        for frame in range(LENGTHS[ep]):
            item = ds[spec.episode_start(ep) + frame]
            wanted = [min(frame + k, LENGTHS[ep] - 1) for k in range(4)]
            np.testing.assert_array_equal(item["action"].numpy(), actions[wanted])
            assert item["action_is_pad"].tolist() == [frame + k >= LENGTHS[ep] for k in range(4)]
            np.testing.assert_array_equal(item["observation.state"].numpy(), states[frame])
            assert (int(item["episode_index"]), int(item["frame_index"])) == (ep, frame)
            assert item["task"] == spec.episode_tasks[ep]
    assert ds.episode_bounds(1) == (5, 12)


def test_frames_are_the_ones_decoded_at_their_timestamps(spec: LeRobotStyleDataset,
                                                         reader: LeRobotDatasetReader) -> None:
    ds = TrainingDataset(reader, chunk_size=2, max_open_videos=1)  # two cameras through a one-file cache
    for index in (0, 6, 11, 12, 15):
        ep = 0 if index < 5 else 1 if index < 12 else 2
        frame = index - spec.episode_start(ep)
        item = ds[index]
        for key in spec.camera_keys:
            image = item[key]
            assert image.dtype == torch.float32 and tuple(image.shape) == (3, *CAMS[key.rsplit(".", 1)[1]])
            expected = reader.decode_frames(key, ep, [frame])[0]
            np.testing.assert_array_equal((image.permute(1, 2, 0) * 255).round().numpy(), expected)
            assert np.abs(expected.astype(int) - spec.colour(key, ep, frame)).max() < 12  # the right frame
    assert len(ds._videos._open) == 1


def test_embedded_png_cameras_work_too(tmp_path: Path) -> None:
    spec = write_lerobot_style_dataset(tmp_path / "ds", [3, 2], {"front": (8, 12)}, camera_storage="image")
    item = TrainingDataset(LeRobotDatasetReader.open(spec.root), chunk_size=3)[4]
    expected = spec.image("observation.images.front", 1, 1)
    np.testing.assert_array_equal((item["observation.images.front"].permute(1, 2, 0) * 255).round().numpy(),
                                  expected)
    assert item["action_is_pad"].tolist() == [False, True, True]


def test_dataloader_workers_give_the_same_samples(reader: LeRobotDatasetReader) -> None:
    ds = TrainingDataset(reader, chunk_size=3)
    ds[0]  # the parent opens containers before forking: workers must not share them
    serial = [ds[i] for i in range(len(ds))]
    loader = DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
    batches = list(loader)
    assert sum(len(b["index"]) for b in batches) == len(ds)
    for b, batch in enumerate(batches):
        for j in range(len(batch["index"])):
            want = serial[4 * b + j]
            for key in ("action", "action_is_pad", "observation.images.front", "observation.images.wrist"):
                assert torch.equal(batch[key][j], want[key]), key
            assert batch["task"][j] == want["task"]


def test_sim_recording_samples(tmp_path_factory: pytest.TempPathFactory) -> None:
    reader = LeRobotDatasetReader.open(sim_dataset(tmp_path_factory))
    ds = TrainingDataset(reader, chunk_size=10, camera_keys=["observation.images.wrist"])
    last = ds[ds.episode_bounds(0)[1] - 1]
    assert last["action_is_pad"].tolist() == [False] + [True] * 9
    assert torch.equal(last["action"][1:], last["action"][:1].expand(9, -1))
    assert "observation.images.front" not in last  # only the cameras asked for are decoded
    frame = reader.decode_frames("observation.images.wrist", 1, [7])[0]
    item = ds[ds.episode_bounds(1)[0] + 7]
    np.testing.assert_array_equal((item["observation.images.wrist"].permute(1, 2, 0) * 255).round().numpy(), frame)


# --------------------------------------------------------------------------------- features and stats


def test_policy_features_and_imagenet_stats(reader: LeRobotDatasetReader) -> None:
    inputs, outputs = policy_features(reader)
    assert inputs == {"observation.state": PolicyFeature("STATE", (6,)),
                      "observation.images.front": PolicyFeature("VISUAL", (3, 16, 24)),
                      "observation.images.wrist": PolicyFeature("VISUAL", (3, 16, 16))}
    assert outputs == {"action": PolicyFeature("ACTION", (6,))}
    stats = training_stats(reader)
    assert stats["observation.images.front"]["mean"].ravel().tolist() == pytest.approx(IMAGENET_MEAN)
    assert stats["observation.images.front"]["mean"].shape == (3, 1, 1)
    raw = training_stats(reader, use_imagenet_stats=False)
    assert raw["observation.images.front"]["mean"].ravel().tolist() != pytest.approx(IMAGENET_MEAN)
    np.testing.assert_allclose(stats["action"]["mean"], reader.stats["action"]["mean"], rtol=1e-6)


def test_a_dataset_that_cannot_feed_the_policy_is_refused(reader: LeRobotDatasetReader, tmp_path: Path) -> None:
    inputs, outputs = policy_features(reader)
    check_policy_inputs(reader, inputs, outputs)
    wants_top = {**inputs, "observation.images.top": PolicyFeature("VISUAL", (3, 16, 24))}
    with pytest.raises(TrainingDataError, match=r"lacks observation\.images\.top, which the policy needs"):
        check_policy_inputs(reader, wants_top, outputs)
    bigger = {**inputs, "observation.images.front": PolicyFeature("VISUAL", (3, 480, 640))}
    with pytest.raises(TrainingDataError, match=r"has shape \[3, 16, 24\] in the dataset but \[3, 480, 640\]"):
        check_policy_inputs(reader, bigger, outputs)
    with pytest.raises(TrainingDataError, match=r"has no camera observation\.images\.top"):
        TrainingDataset(reader, chunk_size=2, camera_keys=["observation.images.top"])
    spec = write_lerobot_style_dataset(tmp_path / "nostats", [3], {})
    (spec.root / "meta" / "stats.json").unlink()
    with pytest.raises(TrainingDataError, match=r"no meta/stats\.json.*--repair"):
        training_stats(LeRobotDatasetReader.open(spec.root))


# ---------------------------------------------------------------------------------------- augmentation


def test_augmentation_off_is_identity(reader: LeRobotDatasetReader) -> None:
    plain = TrainingDataset(reader, chunk_size=2)
    off = TrainingDataset(reader, chunk_size=2, image_transforms=ImageTransformsConfig(enable=False))
    assert off.transforms is None
    for i in (0, 9):
        assert torch.equal(plain[i]["observation.images.front"], off[i]["observation.images.front"])
    image = torch.rand(3, 8, 8)
    assert ImageTransforms(ImageTransformsConfig())(image) is image


def test_augmentation_on_jitters_reproducibly_within_range(reader: LeRobotDatasetReader) -> None:
    ds = TrainingDataset(reader, chunk_size=2, image_transforms=ImageTransformsConfig(enable=True))
    plain = TrainingDataset(reader, chunk_size=2)[3]["observation.images.wrist"]
    torch.manual_seed(0)
    a = [ds[3]["observation.images.wrist"] for _ in range(4)]
    torch.manual_seed(0)
    b = [ds[3]["observation.images.wrist"] for _ in range(4)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert any(not torch.allclose(x, plain) for x in a)
    assert all(x.shape == plain.shape and x.min() >= 0 and x.max() <= 1 for x in a)


def test_each_transform_is_identity_at_its_neutral_setting() -> None:
    torch.manual_seed(1)
    image = torch.rand(3, 12, 10)
    assert torch.allclose(hsv_to_rgb(rgb_to_hsv(image)), image, atol=1e-5)
    assert torch.allclose(adjust_hue(image, 0.0), image)
    assert torch.allclose(adjust_hue(adjust_hue(image, 0.3), -0.3), image, atol=1e-4)
    red = torch.tensor([1.0, 0.0, 0.0]).reshape(3, 1, 1).expand(3, 2, 2)
    assert torch.allclose(adjust_hue(red, 1 / 3), torch.tensor([0.0, 1.0, 0.0]).reshape(3, 1, 1).expand(3, 2, 2),
                          atol=1e-5)  # a third of a turn takes red to green
    assert torch.allclose(random_affine(image, (0.0, 0.0), (0.0, 0.0)), image, atol=1e-5)
    neutral = ImageTransformsConfig(enable=True, max_num_transforms=6, brightness=(1, 1), contrast=(1, 1),
                                    saturation=(1, 1), hue=(0, 0), sharpness=(1, 1), affine_degrees=(0, 0),
                                    affine_translate=(0, 0))
    assert torch.allclose(ImageTransforms(neutral)(image), image, atol=1e-5)
    block = ImageTransformsConfig(enable=True, hue=(-0.1, 0.1)).to_lerobot()
    assert json.loads(json.dumps(block))["tfs"]["hue"] == {"weight": 1.0, "type": "ColorJitter",
                                                          "kwargs": {"hue": [-0.1, 0.1]}}
    assert ImageTransformsConfig.from_lerobot(block) == ImageTransformsConfig(enable=True, hue=(-0.1, 0.1))
