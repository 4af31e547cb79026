"""Perfusion maps computed from the simulated series the way a centre's vendor software would.

DESIGN section 4: real maps hold no information their series lacks, so the phantom's maps are computed from
its own 4D series (never the true parameters degraded). The vendor's habits (`centres.Vendor`) decide:
in-plane smoothing, processing matrix, AIF choice (highest peak, or earliest of the high peaks) and its
partial-volume rescaling to the venous outflow, delay-sensitive (sSVD) or delay-insensitive (bcSVD, oSVD)
deconvolution with its truncation, the Tmax definition, the tissue and vessel masks, and the integer
scaling of CBF and CBV in the ISLES 2018 dtypes (CBF, CBV uint16; MTT, Tmax float64).

Units before scaling: CBF ml/100g/min, CBV ml/100g, MTT and Tmax s.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .centres import Vendor
from .deconvolution import deconvolve, RHO_OVER_KH

HEAD_HU_LIMIT = 150.0  # baseline above this is bone


def baseline_frames(curve: np.ndarray) -> int:
    """How many leading frames precede the bolus: those before the mean curve rises by 10 % of its peak."""
    rise = curve - curve[:2].mean()
    first = int(np.argmax(rise > 0.1 * max(rise.max(), 1e-6)))
    return int(np.clip(first, 2, len(curve) // 3))


def reject_moved_frames(series: np.ndarray, head_curve: np.ndarray) -> np.ndarray:
    """Frames whose mean head density jumps away from its neighbours' (motion) replaced by interpolation in
    time between the nearest good frames, as perfusion packages drop corrupted frames."""
    smooth = ndimage.median_filter(head_curve, size=5, mode="nearest")
    bad = np.abs(head_curve - smooth) > 2.5
    if not bad.any() or bad.all():
        return series
    good = np.flatnonzero(~bad)
    series = series.copy()
    for t in np.flatnonzero(bad):
        after = good[good > t]
        before = good[good < t]
        if len(before) and len(after):
            w = (t - before[-1]) / (after[0] - before[-1])
            series[t] = (1 - w) * series[before[-1]] + w * series[after[0]]
        else:
            series[t] = series[before[-1] if len(before) else after[0]]
    return series


def _uniform(series: np.ndarray, times_s: np.ndarray, step_s: float) -> tuple[np.ndarray, np.ndarray]:
    grid = np.arange(0.0, float(times_s[-1]) + 1e-6, step_s)
    if len(grid) == len(times_s) and np.allclose(grid, times_s):
        return series, grid
    upper = np.clip(np.searchsorted(times_s, grid, side="right"), 1, len(times_s) - 1)
    lower = upper - 1
    w = ((grid - times_s[lower]) / (times_s[upper] - times_s[lower]))[:, None].astype(np.float32)
    return series[lower] * (1 - w) + series[upper] * w, grid


def _pick(curves: np.ndarray, score: np.ndarray, count: int) -> np.ndarray:
    chosen = np.argsort(score)[-count:]
    return curves[:, chosen].mean(axis=1)


def select_input_functions(curves: np.ndarray, times_s: np.ndarray, choice: str) -> tuple[np.ndarray, np.ndarray]:
    """(AIF, VOF) from concentration curves (T, N): the vendor's arterial choice and the venous outflow.

    "peak": the voxels with the highest peaks; "early": among voxels peaking above half the highest peak,
    those peaking earliest (an artery rather than a vein, the usual automatic rule). The VOF is the voxels
    with the largest area under the curve among those peaking well after the artery (the venous sinus).
    """
    peak = curves.max(axis=0)
    # A plausible bolus curve: a quiet start, no deep undershoot, a peak in the first 60 % of the scan and a
    # fall after it (motion at a bone edge makes spikes and steps that would otherwise win).
    peak_time = times_s[np.argmax(curves, axis=0)]
    plausible = ((curves.min(axis=0) > -0.15 * peak) & (np.abs(curves[:2]).max(axis=0) < 0.15 * peak)
                 & (peak_time < 0.6 * times_s[-1]) & (curves[-1] < 0.6 * peak)
                 & (curves[np.maximum(np.argmax(curves, axis=0) - 2, 0), np.arange(curves.shape[1])] > 0.1 * peak))
    if plausible.sum() >= 5:
        curves, peak = curves[:, plausible], peak[plausible]
    area = curves.sum(axis=0)
    time_to_peak = times_s[np.argmax(curves, axis=0)]
    arterial_peak_time = time_to_peak[np.argmax(peak)]
    late = time_to_peak > arterial_peak_time + 2.0
    vof = _pick(curves[:, late], area[late], 5) if late.sum() >= 5 else _pick(curves, area, 5)
    if choice == "early":
        strong = np.flatnonzero(peak > 0.5 * peak.max())
        score = -time_to_peak[strong] + 1e-3 * peak[strong] / peak.max()
        aif = _pick(curves[:, strong], score, 5)
    else:
        aif = _pick(curves, peak, 5)
    return aif, vof


def compute_vendor_maps(series: np.ndarray, times_s: np.ndarray, vendor: Vendor, pixel_mm: float) -> dict:
    """CT_CBF, CT_CBV, CT_MTT, CT_Tmax from a series (T, Z, Y, X) in HU acquired at `times_s`."""
    shape = series.shape[1:]
    step = np.diff(times_s).min()
    head_curve = series[:, series[0] > 0].mean(axis=1) if (series[0] > 0).any() else series.mean(axis=(1, 2, 3))
    series = reject_moved_frames(series, head_curve)
    first = baseline_frames(head_curve)
    baseline = series[:first].mean(axis=0)
    tissue = (baseline > vendor.hu_window[0]) & (baseline < vendor.hu_window[1])
    head = (baseline > -10) & (baseline < HEAD_HU_LIMIT)
    sigma = vendor.smoothing_mm / pixel_mm
    k = vendor.matrix_step
    ny, nx = shape[1] // k, shape[2] // k

    def prepare(frame: np.ndarray) -> np.ndarray:  # smooth, then the vendor's processing matrix
        if sigma > 0:
            frame = ndimage.gaussian_filter(frame, (0, sigma, sigma), truncate=2.5)
        if k > 1:
            frame = frame[:, : ny * k, : nx * k].reshape(shape[0], ny, k, nx, k).mean(axis=(2, 4))
        return frame

    # Enhancement curves; the AIF and VOF are sought over the whole head at full resolution (lightly smoothed).
    enhancement = series - baseline
    candidates = np.flatnonzero(head.ravel())
    raw = enhancement.reshape(len(times_s), -1)[:, candidates]
    aif, vof = select_input_functions(raw, times_s, vendor.aif_choice)
    if vendor.vof_scaling and aif.sum() > 0:
        aif = aif * max(vof.sum() / aif.sum(), 1.0)  # partial volume only ever lowers the arterial peak
    smoothed = np.stack([prepare(enhancement[t]) for t in range(len(times_s))])
    mask = prepare(tissue.astype(np.float32)) > 0.5
    curves = smoothed.reshape(len(times_s), -1)[:, mask.ravel()]
    curves, grid = _uniform(curves, times_s, step)
    aif_uniform, _ = _uniform(aif[:, None], times_s, step)
    residue = deconvolve(curves, aif_uniform[:, 0], step, vendor.deconvolution, vendor.svd_threshold)

    cbf = residue.max(axis=0) / RHO_OVER_KH * 6000.0
    area_ratio = curves.sum(axis=0) / max(float(aif_uniform.sum()), 1e-6)
    cbv = np.clip(area_ratio / RHO_OVER_KH * 100.0, 0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        mtt = np.where(cbf > 0.5, 60.0 * cbv / np.maximum(cbf, 0.5), 0.0)
    if vendor.tmax_definition == "curve":
        tmax = grid[np.argmax(curves, axis=0)] - grid[int(np.argmax(aif_uniform[:, 0]))]
    else:
        tmax = grid[np.argmax(residue[: len(grid)], axis=0)]
    tmax = np.clip(tmax, 0, None)
    vessel = cbv > vendor.vessel_cbv_limit
    maps = {}
    for name, values in (("cbf", cbf), ("cbv", cbv), ("mtt", np.clip(mtt, 0, 30)), ("tmax", tmax)):
        full = np.zeros(mask.shape, np.float64)
        full[mask] = np.where(vessel, 0.0, values)
        if k > 1:
            full = np.repeat(np.repeat(full, k, axis=1), k, axis=2)
            full = np.pad(full, ((0, 0), (0, shape[1] - full.shape[1]), (0, shape[2] - full.shape[2])))
        maps[name] = full * tissue
    return {
        "CT_CBF": np.round(np.clip(maps["cbf"] * vendor.cbf_unit_scale, 0, 65535)).astype(np.uint16),
        "CT_CBV": np.round(np.clip(maps["cbv"] * vendor.cbv_unit_scale, 0, 65535)).astype(np.uint16),
        "CT_MTT": maps["mtt"].astype(np.float64),
        "CT_Tmax": maps["tmax"].astype(np.float64),
    }
