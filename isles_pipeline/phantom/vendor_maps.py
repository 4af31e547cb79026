"""Perfusion maps computed from the simulated series the way a centre's vendor software would.

Real maps hold no information their series lacks, so the phantom's maps are computed from
its own 4D series (never the true parameters degraded), with the perfusion engine's building blocks
(`isles_pipeline.perfusion`: time grid, deconvolution, flow/Tmax/volume/transit formulas). What differs
between vendors is their habits (`centres.Vendor`): motion-frame rejection, in-plane smoothing, processing
matrix, the AIF choice and its venous partial-volume rescaling, delay-sensitive (sSVD) or delay-insensitive
(bcSVD, oSVD) deconvolution and its regularisation, the Tmax definition, the tissue and vessel masks, and the
integer scaling of CBF and CBV in the ISLES 2018 dtypes (CBF, CBV uint16; MTT, Tmax float64).

Units before scaling: CBF ml/100g/min, CBV ml/100g, MTT and Tmax s. The vendor works on the scanner's own
frames (non-uniform for centre C), before the series is resampled to 1 s for the ISLES file.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from isles_pipeline.perfusion.deconvolution import Deconvolver
from isles_pipeline.perfusion.maps import blood_volume, flow_and_tmax, transit_time
from isles_pipeline.perfusion.timing import resampling_matrix, uniform_grid
from isles_pipeline.phantom.anatomy import in_plane_box
from isles_pipeline.phantom.centres import Vendor

HEAD_HU_LIMIT = 150.0  # baseline above this is bone
MOTION_JUMP_HU = 3.0  # a frame whose mean head density leaves its neighbours' median by more has moved
MOTION_WINDOW = 11  # frames in that median: longer than any motion episode
AIF_VOXELS = 5


def baseline_frames(curve: np.ndarray) -> int:
    """How many leading frames precede the bolus: those before the mean curve rises by 10 % of its peak."""
    rise = curve - curve[:2].mean()
    first = int(np.argmax(rise > 0.1 * max(rise.max(), 1e-6)))
    return int(np.clip(first, 2, len(curve) // 3))


def reject_moved_frames(series: np.ndarray, head_curve: np.ndarray) -> np.ndarray:
    """Frames whose mean head density jumps away from its neighbours' (motion) replaced by interpolation in
    time between the nearest good frames, as perfusion packages drop corrupted frames."""
    smooth = ndimage.median_filter(head_curve, size=MOTION_WINDOW, mode="nearest")
    bad = np.abs(head_curve - smooth) > MOTION_JUMP_HU
    if not bad.any() or bad.all():
        return series
    good = np.flatnonzero(~bad)
    series = series.copy()
    for t in np.flatnonzero(bad):
        before, after = good[good < t], good[good > t]
        if len(before) and len(after):
            w = (t - before[-1]) / (after[0] - before[-1])
            series[t] = (1 - w) * series[before[-1]] + w * series[after[0]]
        else:
            series[t] = series[before[-1] if len(before) else after[0]]
    return series


def _mean_of_best(curves: np.ndarray, score: np.ndarray) -> np.ndarray:
    return curves[:, np.argsort(score)[-AIF_VOXELS:]].mean(axis=1)


def select_input_functions(curves: np.ndarray, times_s: np.ndarray, choice: str) -> tuple[np.ndarray, np.ndarray]:
    """(AIF, VOF) from enhancement curves (T, N): the vendor's arterial choice and the venous outflow.

    Only plausible bolus curves compete (a quiet start, no deep undershoot, a peak in the first 60 % of the
    scan rising over more than one frame, a fall after it): motion at a bone edge makes spikes and steps.
    "peak": the highest peaks; "early": among curves peaking above half the highest peak, the earliest.
    VOF: the largest areas among curves peaking well after the arterial peak (the venous sinus).
    """
    peak = curves.max(axis=0)
    top = np.argmax(curves, axis=0)
    columns = np.arange(curves.shape[1])
    plausible = ((curves.min(axis=0) > -0.15 * peak) & (np.abs(curves[:2]).max(axis=0) < 0.15 * peak)
                 & (times_s[top] < 0.6 * times_s[-1]) & (curves[-1] < 0.6 * peak)
                 & (curves[np.maximum(top - 2, 0), columns] > 0.1 * peak)
                 & (curves[np.maximum(top - 1, 0), columns] > 0.4 * peak)
                 & (curves[np.minimum(top + 1, len(curves) - 1), columns] > 0.4 * peak))
    if plausible.sum() >= AIF_VOXELS:
        curves, peak, top = curves[:, plausible], peak[plausible], top[plausible]
    time_to_peak = times_s[top]
    late = time_to_peak > time_to_peak[np.argmax(peak)] + 2.0
    area = curves.sum(axis=0)
    vof = _mean_of_best(curves[:, late], area[late]) if late.sum() >= AIF_VOXELS else _mean_of_best(curves, area)
    if choice == "early":
        strong = np.flatnonzero(peak > 0.5 * peak.max())
        aif = _mean_of_best(curves[:, strong], -time_to_peak[strong] + 1e-3 * peak[strong] / peak.max())
    else:
        aif = _mean_of_best(curves, peak)
    return aif, vof


def block_mean(array: np.ndarray, k: int) -> np.ndarray:
    """Means of k x k in-plane blocks over the last two axes (a trailing partial block is dropped), as float32:
    the sum of k^2 strided views, several times cheaper than a reshape-and-mean over two inner axes."""
    ny, nx = array.shape[-2] // k, array.shape[-1] // k
    total = np.zeros(array.shape[:-2] + (ny, nx), np.float32)
    for dy in range(k):
        for dx in range(k):
            total += array[..., dy : ny * k : k, dx : nx * k : k]
    total *= 1.0 / (k * k)
    return total


def _on_grid(times_s: np.ndarray, grid: np.ndarray):
    """A function taking (T, N) curves at `times_s` to the uniform `grid` by linear interpolation in time;
    the identity (no copy, no product) when the frames already lie on the grid."""
    if len(grid) == len(times_s) and np.allclose(grid, times_s):
        return lambda curves: curves
    matrix = resampling_matrix(times_s, grid).astype(np.float32)
    return lambda curves: matrix @ curves


def compute_vendor_maps(series: np.ndarray, times_s: np.ndarray, vendor: Vendor, pixel_mm: float) -> dict:
    """CT_CBF, CT_CBV, CT_MTT, CT_Tmax from a series (T, Z, Y, X) in HU acquired at `times_s`."""
    full_shape = series.shape[1:]
    head = (series[0] > -10) & (series[0] < HEAD_HU_LIMIT)
    rows, cols = in_plane_box(head, 2)
    series = series[:, :, rows, cols]  # only the head is processed (a view: nothing copied yet)
    soft = head[:, rows, cols]
    head_curve = series[:, soft].mean(axis=1) if soft.any() else series.mean(axis=(1, 2, 3))
    repaired = reject_moved_frames(series, head_curve)
    if repaired is not series:  # frames were replaced: their mean density changed
        series = repaired
        head_curve = series[:, soft].mean(axis=1) if soft.any() else series.mean(axis=(1, 2, 3))
    first = baseline_frames(head_curve)
    baseline = series[:first].mean(axis=0)
    tissue = (baseline > vendor.hu_window[0]) & (baseline < vendor.hu_window[1])
    search = (baseline > -10) & (baseline < HEAD_HU_LIMIT)
    enhancement = series - baseline

    # The AIF and VOF are sought over the whole head at full resolution, on the vendor's time grid.
    grid = uniform_grid(np.asarray(times_s, float))
    step = float(grid[1] - grid[0])
    to_grid = _on_grid(np.asarray(times_s, float), grid)
    aif, vof = select_input_functions(to_grid(enhancement[:, search]), grid, vendor.aif_choice)
    if vendor.vof_scaling and aif.sum() > 0:
        aif = aif * max(vof.sum() / aif.sum(), 1.0)  # partial volume only ever lowers the arterial peak

    k = vendor.matrix_step
    shape = enhancement.shape[1:]
    ny, nx = shape[1] // k, shape[2] // k
    if k > 1:  # the processing matrix first (k x k block means), then the smoothing on it
        enhancement = block_mean(enhancement, k)
        tissue_processed = block_mean(tissue.astype(np.float32), k) > 0.5
    else:
        tissue_processed = tissue
    sigma = vendor.smoothing_mm / (pixel_mm * k)
    if sigma > 0:
        enhancement = ndimage.gaussian_filter(enhancement, (0, 0, sigma, sigma), truncate=2.5)
    curves = to_grid(enhancement[:, tissue_processed])
    del enhancement
    settings = {"osvd": {"oscillation_index": vendor.oscillation_index},
                "tikhonov": {"tikhonov": vendor.svd_threshold}}.get(vendor.deconvolution,
                                                                      {"truncation": vendor.svd_threshold})
    deconvolver = Deconvolver.for_aif(aif, step, vendor.deconvolution, "cpu", **settings)
    residues = deconvolver.residues(curves)
    cbf, tmax = flow_and_tmax(residues, step, len(grid))
    if vendor.tmax_definition == "frame":  # the residue's largest sample, on the grid: whole steps only
        position = residues[: len(grid)].argmax(dim=0).cpu().numpy()
        tmax = (position * step).astype(np.float32)
    del residues
    cbv = blood_volume(curves, aif)
    mtt = transit_time(cbv, cbf)
    vessel = cbv > vendor.vessel_cbv_limit
    maps = {}
    for name, values in (("cbf", cbf), ("cbv", cbv), ("mtt", np.clip(mtt, 0, 30)), ("tmax", tmax)):
        processed = np.zeros(tissue_processed.shape, np.float32)
        processed[tissue_processed] = np.where(vessel, 0.0, values)
        if k > 1:  # back to the image matrix by linear interpolation, as the vendor's viewer shows it
            processed = ndimage.zoom(processed, (1, shape[1] / ny, shape[2] / nx), order=1, grid_mode=True,
                                     mode="nearest")
        out = np.zeros(full_shape, np.float32)
        out[:, rows, cols] = processed[:, : shape[1], : shape[2]] * tissue
        maps[name] = out
    return {
        "CT_CBF": np.round(np.clip(maps["cbf"] * vendor.cbf_unit_scale, 0, 65535)).astype(np.uint16),
        "CT_CBV": np.round(np.clip(maps["cbv"] * vendor.cbv_unit_scale, 0, 65535)).astype(np.uint16),
        "CT_MTT": maps["mtt"].astype(np.float64),
        "CT_Tmax": maps["tmax"].astype(np.float64),
    }
