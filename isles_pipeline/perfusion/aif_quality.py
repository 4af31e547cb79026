"""Is a candidate curve an artery? Shape checks for the AIF search and the quality report of the chosen AIF.

Why: ranking voxels by peak height alone lets anything bright win. After head motion, bone moves into
intracranial voxels for one to five frames: a box a few frames wide and 1000 HU or more high, which then
outranks every artery and scales CBF towards zero. A first pass through an artery is different in three
ways that need no model of the bolus: it is several seconds wide (a gamma variate with alpha ~3 and beta ~1.5
s has a full width at half maximum near 6 s; even a compact bolus stays above 3 s), it rises and falls over
several frames (no single frame changes by most of the peak), and iodinated blood in CTP stays far below
bone (a pure artery peaks a few hundred HU over baseline; MAX_BLOOD_HU leaves a wide margin). It also peaks
before the tissue does, never after it. The same checks grade the chosen AIF; a failed check is reported
in `aif.json` and turned into one warning line, never silently used.
"""
from __future__ import annotations

import numpy as np

MIN_WIDTH_S = 3.0  # full width at half maximum of a first pass
MAX_BLOOD_HU = 1000.0  # enhancement over baseline no blood reaches; bone moving in does
MAX_FRAME_JUMP = 0.6  # largest change between two frames, as a fraction of the peak (a box edge is ~1)
MAX_PLAUSIBLE_SCALE = 2.0  # a VOF with twice the AIF's area: the AIF is partial-volumed or not an artery
TISSUE_PEAK_SLACK_S = 1.0  # the AIF may peak at most this much after the tissue's mean curve


def half_maximum_width_s(curves: np.ndarray, step_s: float) -> np.ndarray:
    """(K,) width in s of the contiguous run of samples >= half the peak around each column's peak (a box
    two frames wide is 2 steps, a second bump later does not widen it)."""
    peak_index = curves.argmax(axis=0)
    above = curves >= 0.5 * curves.max(axis=0, keepdims=True)
    rows = np.arange(curves.shape[0])[:, None]
    below_before = np.where(~above & (rows < peak_index), rows, -1).max(axis=0)
    below_after = np.where(~above & (rows > peak_index), rows, curves.shape[0]).min(axis=0)
    return (below_after - below_before - 1) * step_s


def largest_frame_jump(curves: np.ndarray) -> np.ndarray:
    """(K,) largest |difference between consecutive frames| / peak."""
    if curves.shape[0] < 2:
        return np.zeros(curves.shape[1])
    return np.abs(np.diff(curves, axis=0)).max(axis=0) / np.maximum(curves.max(axis=0), 1e-6)


def shape_problems(curves: np.ndarray, step_s: float, tissue_peak_s: float | None = None) -> list[np.ndarray]:
    """Boolean (K,) arrays, one per check, True where a column fails it (see the module docstring)."""
    peak = curves.max(axis=0)
    checks = [half_maximum_width_s(curves, step_s) < MIN_WIDTH_S, peak > MAX_BLOOD_HU,
              largest_frame_jump(curves) > MAX_FRAME_JUMP]
    if tissue_peak_s is not None:
        checks.append(curves.argmax(axis=0) * step_s > tissue_peak_s + TISSUE_PEAK_SLACK_S)
    return checks


def plausible(curves: np.ndarray, step_s: float, tissue_peak_s: float | None = None) -> np.ndarray:
    """(K,) True for columns that pass every shape check."""
    problems = shape_problems(curves, step_s, tissue_peak_s)
    return ~np.logical_or.reduce(problems) if problems else np.ones(curves.shape[1], bool)


def quality_report(aif: np.ndarray, chosen: np.ndarray, step_s: float, tissue_peak_s: float | None, scale: float,
                   noise_sd: float, candidates: int, rejected: int, vof_area: str | None = None) -> dict:
    """The chosen AIF's quality for `aif.json`: measurements, and `plausible` with the reasons it is not.

    aif: the mean curve; chosen: (N, K) the curves averaged; candidates / rejected: how many strong voxels
    were considered and how many failed the shape checks; vof_area: how `aif.venous_to_arterial_area` measured
    the venous area. A scan that ends before the venous first pass is over leaves the VOF's summed area short;
    when it ends too early even for a gamma-variate fit ("cut short"), the partial-volume correction cannot
    scale the AIF up and CBF may read high: that is reported, not silently used."""
    peak = float(aif.max())
    width = float(half_maximum_width_s(aif[:, None], step_s)[0])
    jump = float(largest_frame_jump(aif[:, None])[0])
    peak_time = float(np.argmax(aif) * step_s)
    chosen_peaks = chosen.max(axis=0)
    spread = float(chosen_peaks.std() / max(chosen_peaks.mean(), 1e-6)) if chosen.shape[1] > 1 else 0.0
    reasons = []
    if width < MIN_WIDTH_S:
        reasons.append(f"the AIF is {width:.1f} s wide at half maximum (an artery's first pass: >= {MIN_WIDTH_S:g} s)")
    if peak > MAX_BLOOD_HU:
        reasons.append(f"the AIF peaks {peak:.0f} HU over baseline (blood stays below {MAX_BLOOD_HU:.0f} HU: bone?)")
    if jump > MAX_FRAME_JUMP:
        reasons.append(f"the AIF changes by {100 * jump:.0f} % of its peak between two frames (motion or an edge?)")
    if tissue_peak_s is not None and peak_time > tissue_peak_s + TISSUE_PEAK_SLACK_S:
        reasons.append(f"the AIF peaks at {peak_time:.1f} s, after the tissue ({tissue_peak_s:.1f} s)")
    if scale > MAX_PLAUSIBLE_SCALE:
        reasons.append(f"the venous curve's area is {scale:.2f}x the AIF's (partial volume, or not an artery)")
    if vof_area == "cut short":
        reasons.append("the scan ends before the venous curve has passed its peak (truncated: the AIF's "
                       "partial-volume scale could not be checked; CBF may read high)")
    if rejected and rejected == candidates:
        reasons.append("every strong candidate failed the shape checks; the best of them was used")
    return {"plausible": not reasons, "reasons": reasons, "peak_hu": round(peak, 1), "width_s": round(width, 2),
            "largest_frame_jump": round(jump, 3), "peak_time_s": round(peak_time, 2),
            "tissue_peak_time_s": None if tissue_peak_s is None else round(float(tissue_peak_s), 2),
            "snr": round(peak / max(noise_sd, 1e-6), 1), "voxel_peak_spread": round(spread, 3),
            "candidates": int(candidates), "rejected_by_shape": int(rejected), "vof_area": vof_area}
