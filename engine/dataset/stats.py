"""Normalisation statistics: per episode, and their dataset-wide aggregation (lerobot-interop.md §5.8).

Every feature gets min/max/mean/std/count/q01/q10/q50/q90/q99. Numeric vectors are buffered for the parquet
anyway, so their episode stats are exact. Camera stats are accumulated on the encoder thread as per-channel
histograms of downsampled uint8 frames: 256 bins hold uint8 pixels exactly, so even the quantiles are exact
for the sampled pixels, at a cost of one `bincount` per frame and no pixel buffering.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from engine.dataset.format import QUANTILES, STAT_NAMES

Stats = dict[str, np.ndarray]  # stat name -> array
FeatureStats = dict[str, Stats]  # feature key -> stats

IMAGE_STATS_SIDE = 150  # frames at least twice this size are subsampled to about this size, as LeRobot does


def numeric_stats(values: np.ndarray) -> Stats:
    """Stats over axis 0 of an (L,) or (L, D) array; shape (D,) each, (1,) for scalars."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape[0] == 0:
        raise ValueError("no frames to compute stats on")
    arr = arr.reshape(arr.shape[0], -1)
    mean = arr.mean(axis=0)
    out: Stats = {
        "min": arr.min(axis=0),
        "max": arr.max(axis=0),
        "mean": mean,
        "std": arr.std(axis=0),
        "count": np.array([arr.shape[0]], dtype=np.int64),
    }
    if arr.shape[0] < 2:
        out.update({q: mean.copy() for q in QUANTILES})
    else:
        qs = np.quantile(arr, list(QUANTILES.values()), axis=0)
        out.update({name: qs[i] for i, name in enumerate(QUANTILES)})
    return {s: out[s] for s in STAT_NAMES}


class ImageStatsAccumulator:
    """Running per-channel stats of RGB uint8 frames in [0, 1] units, shaped (3, 1, 1) as LeRobot stores them."""

    def __init__(self, target_side: int = IMAGE_STATS_SIDE) -> None:
        self.target_side = target_side
        self.frames = 0
        self._hist = np.zeros(3 * 256, dtype=np.int64)
        self._offsets = np.array([0, 256, 512], dtype=np.int32)

    def add(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        side = max(h, w)
        stride = max(1, round(side / self.target_side)) if side >= 2 * self.target_side else 1
        small = frame[::stride, ::stride, :3]
        self._hist += np.bincount((small.astype(np.int32) + self._offsets).ravel(), minlength=3 * 256)
        self.frames += 1

    def stats(self) -> Stats:
        if self.frames == 0:
            raise ValueError("no frames to compute image stats on")
        hist = self._hist.reshape(3, 256)
        return histogram_stats(hist, count=self.frames)


def histogram_stats(hist: np.ndarray, *, count: int) -> Stats:
    """Exact stats of uint8 samples given by a (C, 256) histogram, scaled to [0, 1] and shaped (C, 1, 1)."""
    values = np.arange(256, dtype=np.float64)
    n = hist.sum(axis=1).astype(np.float64)
    mean = (hist * values).sum(axis=1) / n
    var = (hist * (values[None, :] - mean[:, None]) ** 2).sum(axis=1) / n
    nonzero = hist > 0
    vmin = np.argmax(nonzero, axis=1).astype(np.float64)
    vmax = 255.0 - np.argmax(nonzero[:, ::-1], axis=1)
    cum = np.cumsum(hist, axis=1)
    out: Stats = {
        "min": vmin,
        "max": vmax,
        "mean": mean,
        "std": np.sqrt(var),
        "count": np.array([count], dtype=np.int64),
    }
    for name, q in QUANTILES.items():
        out[name] = np.array([_hist_quantile(cum[c], q) for c in range(hist.shape[0])])
    return {
        s: (v if s == "count" else (v / 255.0).reshape(-1, 1, 1))
        for s, v in ((s, out[s]) for s in STAT_NAMES)
    }


def _hist_quantile(cum: np.ndarray, q: float) -> float:
    """np.quantile's default (linear) interpolation, read off a cumulative histogram."""
    pos = q * (cum[-1] - 1)
    lo, frac = math.floor(pos), pos - math.floor(pos)
    v_lo = int(np.searchsorted(cum, lo, side="right"))
    v_hi = int(np.searchsorted(cum, lo + 1, side="right")) if frac > 0 else v_lo
    return v_lo + (v_hi - v_lo) * frac


def aggregate_feature(stats: list[Stats]) -> Stats:
    """Combine one feature's stats: min/max elementwise, count-weighted mean, parallel-variance std,
    q01/q10/q50 as the minimum and q90/q99 as the maximum over the parts (LeRobot's conservative envelope)."""
    if not stats:
        raise ValueError("nothing to aggregate")
    counts = [np.asarray(s["count"], dtype=np.float64) for s in stats]
    total = sum(counts)
    means = [np.asarray(s["mean"], dtype=np.float64) for s in stats]
    mean = sum(c * m for c, m in zip(counts, means, strict=True)) / total
    var = (
        sum(
            c * (np.asarray(s["std"], dtype=np.float64) ** 2 + (m - mean) ** 2)
            for c, m, s in zip(counts, means, stats, strict=True)
        )
        / total
    )
    out: Stats = {
        "min": np.minimum.reduce([np.asarray(s["min"], dtype=np.float64) for s in stats]),
        "max": np.maximum.reduce([np.asarray(s["max"], dtype=np.float64) for s in stats]),
        "mean": mean,
        "std": np.sqrt(var),
        "count": np.array(
            sum(int(np.asarray(s["count"]).reshape(-1)[0]) for s in stats), dtype=np.int64
        ).reshape(1),
    }
    for name in ("q01", "q10", "q50"):
        out[name] = np.minimum.reduce([np.asarray(s[name], dtype=np.float64) for s in stats])
    for name in ("q90", "q99"):
        out[name] = np.maximum.reduce([np.asarray(s[name], dtype=np.float64) for s in stats])
    return {s: out[s] for s in STAT_NAMES}


def aggregate_stats(parts: Iterable[Mapping[str, Stats]]) -> FeatureStats:
    """Dataset stats from episode stats (or from earlier aggregates: the rules are associative)."""
    by_feature: dict[str, list[Stats]] = {}
    for part in parts:
        for key, st in part.items():
            by_feature.setdefault(key, []).append(st)
    return {key: aggregate_feature(sts) for key, sts in by_feature.items()}


def stats_to_json(stats: Mapping[str, Stats]) -> dict[str, dict[str, Any]]:
    return {k: {s: np.asarray(v).tolist() for s, v in st.items()} for k, st in stats.items()}


def stats_from_json(obj: Mapping[str, Mapping[str, Any]]) -> FeatureStats:
    return {
        k: {s: np.asarray(v, dtype=np.int64 if s == "count" else np.float64) for s, v in st.items()}
        for k, st in obj.items()
    }


def flatten_stats(stats: Mapping[str, Stats]) -> dict[str, Any]:
    """Episode stats as the `stats/<feature>/<stat>` columns of the episodes parquet (python lists)."""
    return {f"stats/{k}/{s}": np.asarray(v).tolist() for k, st in stats.items() for s, v in st.items()}


def unflatten_stats(row: Mapping[str, Any]) -> FeatureStats:
    """The inverse of `flatten_stats`, for one episodes-parquet row (other columns are ignored)."""
    out: FeatureStats = {}
    for col, value in row.items():
        if not col.startswith("stats/") or value is None:
            continue
        key, stat = col[len("stats/") :].rsplit("/", 1)
        out.setdefault(key, {})[stat] = np.asarray(value, dtype=np.int64 if stat == "count" else np.float64)
    return out
