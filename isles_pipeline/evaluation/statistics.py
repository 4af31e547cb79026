"""Uncertainty of a mean over cases: percentile-bootstrap 95 % confidence intervals.

Why a bootstrap: our test sets are small (4-20 cases) and per-case scores are far from normal (Dice piles up
near 0 and 1), so a t-interval would mislead; resampling cases keeps their joint distribution. Two methods
scored on the same cases are compared by the mean of their per-case differences, resampled over cases
(a paired bootstrap): the case-to-case spread, which both methods share, then does not widen the interval.

Choices, fixed so that every table is reproducible: 2000 resamples, percentile method, seed 0 (numpy's
default_rng), NaN values (an undefined metric, e.g. HD95 against an empty mask) left out and counted.
An interval needs two finite values; with fewer it is null.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from scipy import stats

N_RESAMPLES = 2000
SEED = 0
CONFIDENCE = 0.95


def _finite(values: Sequence[Optional[float]]) -> tuple[np.ndarray, int]:
    """(finite values, how many were NaN/None)."""
    array = np.array([np.nan if v is None else float(v) for v in values], float)
    keep = np.isfinite(array)
    return array[keep], int((~keep).sum())


def _percentile_interval(values: np.ndarray, n_resamples: int, seed: int) -> tuple[Optional[float], Optional[float]]:
    if values.size < 2:
        return None, None
    if np.all(values == values[0]):  # every resample has the same mean
        return float(values[0]), float(values[0])
    result = stats.bootstrap((values,), np.mean, n_resamples=n_resamples, confidence_level=CONFIDENCE,
                             method="percentile", rng=np.random.default_rng(seed), vectorized=True)
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def bootstrap_mean_ci(values: Sequence[Optional[float]], n_resamples: int = N_RESAMPLES,
                      seed: int = SEED) -> dict:
    """{"mean", "ci_low", "ci_high", "n", "n_undefined"} of the finite values (mean null when there is none)."""
    finite, n_undefined = _finite(values)
    low, high = _percentile_interval(finite, n_resamples, seed)
    return {"mean": float(finite.mean()) if finite.size else None, "ci_low": low, "ci_high": high,
            "n": int(finite.size), "n_undefined": n_undefined}


def paired_difference_ci(first: Sequence[Optional[float]], second: Sequence[Optional[float]],
                         n_resamples: int = N_RESAMPLES, seed: int = SEED) -> dict:
    """Mean of first - second over the cases where both are defined, with its bootstrap interval:
    {"mean_difference", "ci_low", "ci_high", "n", "n_undefined", "interval_includes_zero"}.
    The two sequences must list the same cases in the same order."""
    if len(first) != len(second):
        raise ValueError(f"paired values need the same cases: {len(first)} against {len(second)}")
    differences = [None if a is None or b is None else float(a) - float(b) for a, b in zip(first, second)]
    summary = bootstrap_mean_ci(differences, n_resamples, seed)
    low, high = summary["ci_low"], summary["ci_high"]
    return {"mean_difference": summary["mean"], "ci_low": low, "ci_high": high, "n": summary["n"],
            "n_undefined": summary["n_undefined"],
            "interval_includes_zero": None if low is None else bool(low <= 0.0 <= high)}
