"""Pre-contrast baseline and bolus arrival.

The baseline window comes from the head's mean curve, timed by the same rule the temporal preprocessing
uses (`preprocessing.temporal.find_bolus_timing`: frames before the tissue rise, moved 3 s earlier to lie
before the arterial arrival). One window for all voxels: a per-voxel window would let noise pick it, and
frames after the arterial arrival would bias the tissue baseline upwards. A flat head curve (no bolus)
raises CaseError there.
"""
from __future__ import annotations

import numpy as np

from isles_pipeline.perfusion.bolus_timing import TemporalParameters, find_bolus_timing

ARRIVAL_FRACTION = 0.1  # a curve has arrived when it first exceeds 10 % of its peak enhancement


def baseline_frame_count(head_curve: np.ndarray, step_s: float, name: str = "series") -> int:
    """Number of leading grid frames that form the baseline (at least 1)."""
    timing = find_bolus_timing(head_curve, step_s, TemporalParameters(), name)
    return max(int(timing.baseline_frames), 1)


def subtract_baseline(curves: np.ndarray, count: int) -> np.ndarray:
    """Enhancement: each column (voxel) minus its mean over the first `count` rows (frames)."""
    return curves - curves[:count].mean(axis=0, keepdims=True)


def arrival_index(enhancement: np.ndarray, fraction: float = ARRIVAL_FRACTION) -> np.ndarray:
    """Per column, the first frame whose enhancement exceeds `fraction` of the column's peak."""
    peak = enhancement.max(axis=0, keepdims=True)
    return np.argmax(enhancement > fraction * peak, axis=0)


def full_width_half_maximum(enhancement: np.ndarray) -> np.ndarray:
    """Per column, frames at or above half the peak (a narrow first pass is an arterial sign)."""
    peak = enhancement.max(axis=0, keepdims=True)
    return (enhancement >= 0.5 * peak).sum(axis=0)
