"""Per-channel intensity normalisation as the plans fix it.

Schemes (the plans' `normalization[channel]["type"]`):
- "clip_zscore": clip to the dataset's [0.5, 99.5] percentiles inside the head, then subtract the mean and
  divide by the std of the clipped dataset samples (nnU-Net's CT scheme). Used for every CTP-derived channel
  and map: they are in physical units shared across cases, and vendor maps carry outliers the clip removes.
- "case_zscore": mean and std of this case inside the head mask (MR DWI has no absolute scale).
- "none".
The seed's parameter-free BatchNorm before the first convolution comes on top of this, in the networks.
"""
from __future__ import annotations

import numpy as np

SCHEMES = ("clip_zscore", "case_zscore", "none")
_EPS = 1e-8


def normalize(array: np.ndarray, scheme: dict, mask: np.ndarray | None = None) -> np.ndarray:
    """A float32 copy of `array` normalised by `scheme`; `mask` (broadcastable) is needed by case_zscore."""
    kind = scheme.get("type")
    array = np.asarray(array, dtype=np.float32)
    if kind == "clip_zscore":
        low, high = scheme["clip"]
        out = np.clip(array, low, high)
        out -= np.float32(scheme["mean"])
        out /= np.float32(max(float(scheme["std"]), _EPS))
        return out
    if kind == "case_zscore":
        values = array[np.broadcast_to(mask, array.shape)] if mask is not None and mask.any() else array
        return (array - values.mean()) / max(float(values.std()), _EPS)
    if kind == "none":
        return array.copy()
    raise ValueError(f"unknown normalisation scheme {kind!r}; expected one of {SCHEMES}")


def intensity_statistics(values: np.ndarray) -> dict:
    """Statistics of pooled intensity samples, in nnU-Net's fingerprint keys."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {"mean": 0.0, "std": 1.0, "median": 0.0, "min": 0.0, "max": 0.0, "percentile_00_5": 0.0,
                "percentile_99_5": 0.0, "clipped_mean": 0.0, "clipped_std": 1.0, "num_samples": 0}
    low, median, high = np.percentile(values, [0.5, 50.0, 99.5])
    clipped = np.clip(values, low, high)
    return {"mean": float(values.mean()), "std": float(values.std()), "median": float(median),
            "min": float(values.min()), "max": float(values.max()), "percentile_00_5": float(low),
            "percentile_99_5": float(high), "clipped_mean": float(clipped.mean()),
            "clipped_std": float(clipped.std()), "num_samples": int(values.size)}


def clip_zscore_scheme(stats: dict) -> dict:
    """The clip_zscore scheme for a channel with these fingerprint statistics. Mean and std are those of the
    clipped samples (nnU-Net takes the raw ones; vendor perfusion maps have outliers that would inflate the
    std and squeeze the clipped range)."""
    return {"type": "clip_zscore", "clip": [stats["percentile_00_5"], stats["percentile_99_5"]],
            "mean": stats["clipped_mean"], "std": stats["clipped_std"]}
