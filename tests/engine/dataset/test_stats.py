"""Episode stats and their aggregation against plain numpy on the same samples."""

from __future__ import annotations

import numpy as np
import pytest

from engine.dataset.format import QUANTILES, STAT_NAMES
from engine.dataset.stats import (
    ImageStatsAccumulator,
    aggregate_stats,
    flatten_stats,
    numeric_stats,
    stats_from_json,
    stats_to_json,
    unflatten_stats,
)

RNG = np.random.default_rng(0)


def test_numeric_stats_match_numpy() -> None:
    data = RNG.normal(size=(200, 6)).astype(np.float32)
    st = numeric_stats(data)
    assert list(st) == list(STAT_NAMES)
    ref = data.astype(np.float64)
    np.testing.assert_allclose(st["mean"], ref.mean(0))
    np.testing.assert_allclose(st["std"], ref.std(0))
    np.testing.assert_array_equal(st["min"], ref.min(0))
    np.testing.assert_array_equal(st["max"], ref.max(0))
    assert st["count"].tolist() == [200]
    for name, q in QUANTILES.items():
        np.testing.assert_allclose(st[name], np.quantile(ref, q, axis=0))
    assert st["q01"].shape == (6,)


def test_scalar_feature_has_shape_one_and_single_frame_quantiles_are_the_mean() -> None:
    st = numeric_stats(np.arange(10, dtype=np.int64))
    assert st["mean"].shape == (1,) and st["mean"][0] == pytest.approx(4.5)
    one = numeric_stats(np.array([[3.0, -1.0]]))
    for name in QUANTILES:
        np.testing.assert_array_equal(one[name], one["mean"])
    assert one["std"].tolist() == [0.0, 0.0]


def _pixel_reference(samples: np.ndarray) -> dict[str, np.ndarray]:
    """numpy over all sampled pixels, per channel, in [0, 1]."""
    px = samples.reshape(-1, 3).astype(np.float64) / 255.0
    out = {"min": px.min(0), "max": px.max(0), "mean": px.mean(0), "std": px.std(0)}
    out |= {name: np.quantile(px, q, axis=0) for name, q in QUANTILES.items()}
    return out


def test_image_stats_are_exact_for_small_frames() -> None:
    frames = RNG.integers(0, 256, size=(7, 24, 32, 3), dtype=np.uint8)
    acc = ImageStatsAccumulator()
    for f in frames:
        acc.add(f)
    st = acc.stats()
    assert st["count"].tolist() == [7]
    ref = _pixel_reference(frames)
    for name, value in ref.items():
        assert st[name].shape == (3, 1, 1)
        np.testing.assert_allclose(st[name].reshape(3), value, atol=1e-12, err_msg=name)


def test_image_stats_subsample_large_frames() -> None:
    frame = RNG.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    acc = ImageStatsAccumulator()
    acc.add(frame)
    stride = round(640 / 150)
    ref = _pixel_reference(frame[::stride, ::stride])
    np.testing.assert_allclose(acc.stats()["mean"].reshape(3), ref["mean"])
    np.testing.assert_allclose(acc.stats()["q50"].reshape(3), ref["q50"])


def test_aggregation_follows_lerobot_rules() -> None:
    parts = [RNG.normal(loc=i, size=(n, 3)) for i, n in enumerate((50, 80, 20))]
    eps = [numeric_stats(p) for p in parts]
    agg = aggregate_stats([{"x": e} for e in eps])["x"]
    allv = np.concatenate(parts)
    np.testing.assert_allclose(agg["mean"], allv.mean(0))
    np.testing.assert_allclose(agg["std"], allv.std(0))
    np.testing.assert_array_equal(agg["min"], allv.min(0))
    np.testing.assert_array_equal(agg["max"], allv.max(0))
    assert agg["count"].tolist() == [150]
    for low in ("q01", "q10", "q50"):
        np.testing.assert_array_equal(agg[low], np.min([e[low] for e in eps], axis=0))
    for high in ("q90", "q99"):
        np.testing.assert_array_equal(agg[high], np.max([e[high] for e in eps], axis=0))
    # Associative, so the writer may fold one episode at a time into the running aggregate.
    stepwise = aggregate_stats([aggregate_stats([{"x": eps[0]}, {"x": eps[1]}]), {"x": eps[2]}])["x"]
    for name in STAT_NAMES:
        np.testing.assert_allclose(stepwise[name], agg[name])


def test_image_stats_aggregate_with_3_1_1_shape() -> None:
    accs = []
    for colour in (10, 200):
        acc = ImageStatsAccumulator()
        acc.add(np.full((8, 8, 3), colour, np.uint8))
        accs.append({"cam": acc.stats()})
    agg = aggregate_stats(accs)["cam"]
    assert agg["mean"].shape == (3, 1, 1)
    np.testing.assert_allclose(agg["mean"].reshape(3), (10 + 200) / 2 / 255)
    np.testing.assert_allclose(agg["std"].reshape(3), 95 / 255)


def test_serialisation_round_trips() -> None:
    st = {"a": numeric_stats(RNG.normal(size=(5, 2))), "b": numeric_stats(np.arange(4))}
    back = stats_from_json(stats_to_json(st))
    flat = unflatten_stats({**flatten_stats(st), "episode_index": 3})
    for restored in (back, flat):
        assert set(restored) == {"a", "b"}
        for key in st:
            for name in STAT_NAMES:
                np.testing.assert_allclose(restored[key][name], st[key][name])
    assert back["a"]["count"].dtype == np.int64
