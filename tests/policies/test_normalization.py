"""Normalization modes (LeRobot's formulas) and the processor files that carry the statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from policies.base import PolicyFeature
from policies.normalization import (
    NORMALIZER_STATE,
    POSTPROCESSOR_JSON,
    PREPROCESSOR_JSON,
    UNNORMALIZER_STATE,
    Normalizer,
    read_processor_files,
    write_processor_files,
)

F = {"observation.state": PolicyFeature("STATE", (3,)), "action": PolicyFeature("ACTION", (3,))}
STATS = {"mean": [1.0, -2.0, 50.0], "std": [0.5, 2.0, 10.0], "min": [0.0, -10.0, 20.0], "max": [2.0, 6.0, 80.0],
         "q01": [0.1, -9.0, 22.0], "q99": [1.9, 5.0, 78.0], "q10": [0.5, -6.0, 35.0], "q90": [1.5, 2.0, 65.0]}
# Where each mode sends a few raw values (hand-computed from LeRobot's formulas).
EXPECTED = {
    "MEAN_STD": ([1.0, 0.0, 60.0], [0.0, 1.0, 1.0]),
    "MIN_MAX": ([0.0, 6.0, 50.0], [-1.0, 1.0, 0.0]),
    "QUANTILES": ([0.1, 5.0, 50.0], [-1.0, 1.0, 0.0]),
    "QUANTILE10": ([1.5, -6.0, 50.0], [1.0, -1.0, 0.0]),
    "IDENTITY": ([3.0, 4.0, 5.0], [3.0, 4.0, 5.0]),
}


@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_each_mode_maps_as_lerobot_and_round_trips(mode: str) -> None:
    n = Normalizer(F, {"STATE": mode, "ACTION": mode}, {"observation.state": STATS, "action": STATS})
    raw, normalized = (torch.tensor(v) for v in EXPECTED[mode])
    torch.testing.assert_close(n.normalize("observation.state", raw), normalized, atol=1e-6, rtol=1e-6)
    x = torch.randn(4, 7, 3, dtype=torch.float64) * 30  # any batch shape, any float dtype
    torch.testing.assert_close(n.unnormalize("action", n.normalize("action", x)), x, atol=1e-5, rtol=1e-6)


def test_mean_std_uses_lerobots_epsilon() -> None:
    n = Normalizer(F, {"STATE": "MEAN_STD"}, {"observation.state": {"mean": [0.0] * 3, "std": [0.0, 1.0, 2.0]}})
    assert n.normalize("observation.state", torch.tensor([5e-9, 1.0, 2.0])).tolist() == pytest.approx([0.5, 1, 1])


def test_a_constant_feature_does_not_divide_by_zero() -> None:
    stats = {"min": [5.0, 0.0, 0.0], "max": [5.0, 1.0, 1.0]}
    n = Normalizer(F, {"STATE": "MIN_MAX"}, {"observation.state": stats})
    y = n.normalize("observation.state", torch.tensor([5.0, 0.5, 1.0]))
    assert torch.isfinite(y).all() and y.tolist() == pytest.approx([-1.0, 0.0, 1.0])
    assert n.unnormalize("observation.state", y).tolist() == pytest.approx([5.0, 0.5, 1.0])


def test_images_use_per_channel_statistics() -> None:
    f = {"observation.images.front": PolicyFeature("VISUAL", (3, 4, 5))}
    stats = {"observation.images.front": {"mean": np.full((3, 1, 1), 0.5), "std": np.full((3, 1, 1), 0.25)}}
    n = Normalizer(f, {"VISUAL": "MEAN_STD"}, stats)
    assert n.normalize("observation.images.front", torch.ones(2, 3, 4, 5)).unique().tolist() == pytest.approx([2.0])


def test_missing_or_misshapen_statistics_are_refused() -> None:
    with pytest.raises(ValueError, match=r"no min and max statistics for 'observation.state' \(STATE features use MIN_MAX\)"):
        Normalizer(F, {"STATE": "MIN_MAX"}, {"observation.state": {"mean": [0, 0, 0]}})
    with pytest.raises(ValueError, match="no mean and std statistics for 'action'"):
        Normalizer(F, {"ACTION": "MEAN_STD"}, None)
    with pytest.raises(ValueError, match=r"observation.state.mean has shape \[4\].*\[3\]"):
        Normalizer(F, {"STATE": "MEAN_STD"}, {"observation.state": {"mean": [0] * 4, "std": [1] * 4}})
    with pytest.raises(ValueError, match="unknown normalization mode 'ZSCORE'"):
        Normalizer(F, {"STATE": "ZSCORE"}, {})
    Normalizer(F, {"STATE": "IDENTITY", "ACTION": "IDENTITY"}, None)  # nothing to look up


def test_processor_files_round_trip_with_every_statistic(tmp_path: Path) -> None:
    inputs = {"observation.state": F["observation.state"],
              "observation.images.top": PolicyFeature("VISUAL", (3, 8, 8))}
    stats = {"observation.state": STATS, "action": {k: np.array(v) * 2 for k, v in STATS.items()},
             "observation.images.top": {"mean": np.full((3, 1, 1), 0.4), "std": np.full((3, 1, 1), 0.2)},
             "timestamp": {"mean": [3.0], "count": [100]}}
    norm_map = {"VISUAL": "MEAN_STD", "STATE": "MIN_MAX", "ACTION": "MEAN_STD"}
    write_processor_files(tmp_path, input_features=inputs, output_features={"action": F["action"]},
                          norm_map=norm_map, stats=stats, device="cuda")
    flat = load_file(tmp_path / NORMALIZER_STATE)
    assert set(flat) == {f"{k}.{s}" for k, v in stats.items() for s in v}
    assert all(t.dtype == torch.float32 for t in flat.values())
    assert flat["timestamp.count"].tolist() == [100.0]
    assert set(load_file(tmp_path / UNNORMALIZER_STATE)) == set(flat)
    pre = json.loads((tmp_path / PREPROCESSOR_JSON).read_text())
    assert [s["registry_name"] for s in pre["steps"]] == [
        "rename_observations_processor", "to_batch_processor", "device_processor", "normalizer_processor"]
    assert pre["steps"][2]["config"] == {"device": "cuda", "float_dtype": None}
    post = json.loads((tmp_path / POSTPROCESSOR_JSON).read_text())
    assert [s["registry_name"] for s in post["steps"]] == ["unnormalizer_processor", "device_processor"]
    assert list(post["steps"][0]["config"]["features"]) == ["action"]

    settings = read_processor_files(tmp_path)
    assert settings.norm_map == norm_map and settings.eps == 1e-8 and settings.rename_map == {}
    assert list(settings.features) == ["observation.state", "observation.images.top", "action"]
    np.testing.assert_array_equal(settings.stats["action"]["q99"], np.array(STATS["q99"], np.float32) * 2)
    assert settings.stats["observation.images.top"]["mean"].shape == (3, 1, 1)


def test_damaged_processor_files_are_reported(tmp_path: Path) -> None:
    write_processor_files(tmp_path, input_features={"observation.state": F["observation.state"]},
                          output_features={"action": F["action"]}, norm_map={"STATE": "MEAN_STD"},
                          stats={"observation.state": STATS, "action": STATS}, device="cpu")
    (tmp_path / NORMALIZER_STATE).unlink()
    with pytest.raises(FileNotFoundError, match=f"refers to {NORMALIZER_STATE}, which is missing"):
        read_processor_files(tmp_path)
    pre = tmp_path / PREPROCESSOR_JSON
    pre.write_text(json.dumps({"name": "policy_preprocessor", "steps": [{"registry_name": "to_batch_processor"}]}))
    with pytest.raises(ValueError, match=r"has no 'normalizer_processor' step \(its steps: \['to_batch_processor'\]\)"):
        read_processor_files(tmp_path)
    pre.write_text('{"name": "policy_preprocessor", "steps": [')
    with pytest.raises(ValueError, match="is not valid JSON"):
        read_processor_files(tmp_path)
