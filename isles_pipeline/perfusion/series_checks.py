"""Warnings about a series' timing that the maps cannot fix: a scan started late, a scan ended early.

Read from the head's mean enhancement curve (soft tissue, on the engine's uniform grid), not per voxel: one
statement about the acquisition. The maps are still computed; the lines go to stderr, `summary.json` and
`qc.png`, so a reader knows which numbers to doubt.
"""
from __future__ import annotations

import numpy as np

MIN_BASELINE_FRAMES = 3  # fewer pre-contrast frames: every voxel's baseline rests on one or two frames' noise
TRUNCATED_END_FRACTION = 0.25  # the head's enhancement still above this share of its peak at the end: cut
END_FRAMES = 3  # the end of the curve: the mean of its last 3 frames (one frame is too noisy)


def timing_warnings(head_curve: np.ndarray, baseline_frames: int, step_s: float) -> list[str]:
    """One line per problem of the (N,) head curve in HU (not baseline-subtracted) on a grid of `step_s`.

    Short baseline: fewer than MIN_BASELINE_FRAMES frames before the bolus (a scan started late after the
    injection): each voxel's baseline, hence CBV and the enhancement deconvolved, rests on them.
    Truncated: the head's enhancement over the last END_FRAMES frames still TRUNCATED_END_FRACTION of its peak
    or more. A first pass and its recirculation fall below that (0.01-0.19 over the 20 cases of phantom seed
    21); on a synthetic head whose bolus arrived later and later in a 40 s scan, the median CBV read 0.92x at an
    end fraction of 0.23, 0.88x at 0.26, 0.79x at 0.39 and 0.63x at 0.66 (2026-12-07): the area the scan
    missed.
    """
    warnings = []
    if baseline_frames < MIN_BASELINE_FRAMES:
        warnings.append(f"only {baseline_frames} pre-contrast frame(s) ({baseline_frames * step_s:.1f} s) before "
                        f"the bolus arrives (>= {MIN_BASELINE_FRAMES} expected: a scan started late, or a movement "
                        "just before the bolus taken for its arrival): every voxel's baseline rests on them")
    enhancement = head_curve - head_curve[:max(baseline_frames, 1)].mean()
    peak = float(enhancement.max())
    end = float(enhancement[-END_FRAMES:].mean())
    if peak > 0 and end >= TRUNCATED_END_FRACTION * peak:
        warnings.append(f"the scan ends while the tissue is still enhancing (the head's mean enhancement ends at "
                        f"{100 * end / peak:.0f} % of its peak; a complete first pass falls below "
                        f"{100 * TRUNCATED_END_FRACTION:.0f} %): CBV and CBF may read low")
    return warnings
