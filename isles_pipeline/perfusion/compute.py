"""`compute_maps`: CBF, CBV, MTT, Tmax and TTP from a raw 4D CTP series, with the AIF/VOF it used.

Steps (each a module of this package): check the input; frame times -> uniform grid (timing); spatial
edge-preserving denoising per frame (denoise); baseline window from the head curve and baseline subtraction
(baseline); brain/CSF/bone masks from the baseline image (masks); AIF and VOF (aif); one SVD of the AIF and
the deconvolution of every brain voxel (deconvolution); the maps (maps); vessels removed (masks).
The 4D series is visited slice by slice, so the peak memory stays near two copies of it.
"""
from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from isles_pipeline.devices import device_name
from isles_pipeline.errors import CaseError
from isles_pipeline.perfusion import numpy_kernels
from isles_pipeline.perfusion.aif import ArterialInput, select_arterial_input
from isles_pipeline.perfusion.baseline import baseline_frame_count
from isles_pipeline.perfusion.bolus_timing import global_curve
from isles_pipeline.perfusion.deconvolution import CHUNK_VOXELS, METHODS, Deconvolver
from isles_pipeline.perfusion.denoise import (
    estimate_noise_sd,
    estimate_noise_sd_from_differences,
    masked_gaussian,
    profile_bilateral_inside,
)
from isles_pipeline.perfusion.maps import blood_volume, flow_and_tmax, time_to_peak, transit_time
from isles_pipeline.perfusion.masks import (
    BONE_HU,
    BONE_MARGIN_MM,
    CSF_HU,
    TissueMasks,
    _margin_structure,
    tissue_masks,
    vessel_mask,
)
from isles_pipeline.perfusion.moved_frames import Bridge, find_bridge, last_measured_time
from isles_pipeline.perfusion.series_checks import MIN_BASELINE_FRAMES, timing_warnings
from isles_pipeline.perfusion.structure import smoothing_weight
from isles_pipeline.perfusion.timing import check_frame_times, resampling_matrix, uniform_grid

MIN_FRAMES = 10
DEFAULT_SMOOTHING_MM = 4.0  # the most in-plane Gaussian smoothing after the profile bilateral filter
SMOOTHING_MM_PER_HU = 2.0  # ... and how much the measured noise asks for: none at 0 HU, the most from 2 HU
CPU_CHUNK_VOXELS = 16384  # brain voxels per task when threads share the deconvolution: ~20 tasks a case
VESSEL_PEAK_FACTOR = 4.0  # a parenchyma voxel peaking 4x above the median is a vessel: kept out of smoothing


def adaptive_smoothing_mm(noise_sd_hu: float, most_mm: float = DEFAULT_SMOOTHING_MM) -> float:
    """Gaussian SD (mm) for the measured per-frame noise: none on noise-free data, never more than `most_mm`.

    On noise-free data a fixed 4 mm Gaussian merged a 4 mm core with the tissue around it (rCBF 0.84 against
    a true 0.07 on the block phantom) and the profile bilateral filter is off (its range follows the noise).
    From 2 HU on, the full Gaussian: at the anatomical phantom's 2 HU, 2 mm instead of 4 lowered the maps'
    Spearman rho against the truth (CBF 0.82 -> 0.81, Tmax 0.75 -> 0.70), so less smoothing is not free."""
    return float(min(max(most_mm, 0.0), SMOOTHING_MM_PER_HU * max(noise_sd_hu, 0.0)))


def _vessel_like(peak: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Voxels whose enhancement `peak` is VESSEL_PEAK_FACTOR times above the parenchyma's median peak."""
    reference = float(np.median(peak[brain])) if brain.any() else 0.0
    return peak > VESSEL_PEAK_FACTOR * max(reference, 1e-6)


def _smooth_parenchyma(curves: np.ndarray, mask: np.ndarray, sigma_mm: float, spacing_zyx, device,
                       pool: ThreadPoolExecutor | None = None, weight: np.ndarray | None = None) -> None:
    """Masked Gaussian of the (N, Z, Y, X) enhancement curves, in place, slice by slice; the mask is the
    parenchyma without vessel-like voxels (their much higher curves would leak into their neighbours).
    weight: (Z, Y, X) share of the smoothed value each voxel takes (`structure.smoothing_weight`)."""
    pixel_mm = (float(spacing_zyx[1]), float(spacing_zyx[2]))
    if device == "cpu":  # curves[:, z] is a view: in place
        _each(pool, lambda z: numpy_kernels.masked_gaussian(curves[:, z], mask[z], sigma_mm, pixel_mm,
                                                            None if weight is None else weight[z]),
              range(curves.shape[1]))
        return
    import torch

    for z in range(curves.shape[1]):
        if mask[z].any():
            stored = torch.from_numpy(curves[:, z])  # a view: on the CPU the smoothing writes into `curves`
            work = stored.to(device)
            smoothed = masked_gaussian(work, torch.as_tensor(mask[z], device=device), sigma_mm, pixel_mm,
                                       in_place=weight is None)
            if weight is not None:
                work = work.add_((smoothed - work).mul_(torch.as_tensor(weight[z], device=device)))
            if work is not stored:
                stored.copy_(work.cpu())


@dataclass
class PerfusionResult:
    """Maps (Z, Y, X) float32 in ml/100g/min (cbf), ml/100g (cbv), s (mtt, tmax, ttp); 0 outside `masks.valid`."""

    maps: dict[str, np.ndarray]
    masks: TissueMasks
    arterial: ArterialInput
    method: str
    noise_sd_hu: float
    device: str
    settings: dict = field(default_factory=dict)
    series_warnings: list[str] = field(default_factory=list)  # what may make the maps wrong, beyond the AIF

    def summary(self) -> dict:
        return {"method": self.method, "device": self.device, "noise_sd_hu": round(self.noise_sd_hu, 3),
                "brain_voxels": int(self.masks.valid.sum()), **self.settings}


def check_series(series: np.ndarray, name: str = "series") -> None:
    """CaseError for what cannot be deconvolved: not 4D, too few frames, non-finite values."""
    if series.ndim != 4:
        raise CaseError(name, f"expected a 4D CTP series (time, z, y, x), got {series.ndim}D of shape "
                              f"{tuple(series.shape)}")
    if series.shape[0] < MIN_FRAMES:
        raise CaseError(name, f"{series.shape[0]} frames: at least {MIN_FRAMES} are needed to deconvolve")
    for z in range(series.shape[1]):
        if not np.isfinite(series[:, z]).all():
            raise CaseError(name, "NaN or infinite values in the 4D CTP series")


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS tells it)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _each(pool: ThreadPoolExecutor | None, function, items) -> None:
    """function(item) for every item, spread over the pool's threads when there is one: numpy releases the
    GIL in its array loops and BLAS calls, so the slices or voxel chunks run side by side."""
    if pool is None:
        for item in items:
            function(item)
    else:
        list(pool.map(function, items))


def _prepare_numpy(series, bridge, operator, baseline_count, head, noise_sd, pixel_mm, pool):
    """(N, Z, Y, X) enhancement curves on the grid, the baseline image and each voxel's peak enhancement:
    per slice, its moved frames bridged, the profile bilateral filter inside the head (off when noise_sd is
    0), resampling, baseline subtraction; one slice per thread in memory at a time."""
    frame_count, depth, height, width = series.shape
    curves = np.empty((frame_count if operator is None else operator.shape[0], depth, height, width), np.float32)
    baseline_image = np.empty((depth, height, width), np.float32)
    peak = np.empty((depth, height, width), np.float32)

    def one_slice(z):
        frames = bridge.apply(np.array(series[:, z], dtype=np.float32, order="C"))  # our own copy
        if noise_sd > 0:  # the air around the head is left as it is
            numpy_kernels.profile_bilateral_inside(frames, head[z], noise_sd, pixel_mm)
        frames = frames.reshape(frame_count, -1)
        slice_curves = frames if operator is None else operator @ frames
        slice_baseline = slice_curves[:baseline_count].mean(axis=0)
        slice_curves -= slice_baseline
        peak[z] = slice_curves.max(axis=0).reshape(height, width)
        curves[:, z] = slice_curves.reshape(-1, height, width)
        baseline_image[z] = slice_baseline.reshape(height, width)

    _each(pool, one_slice, range(depth))
    return curves, baseline_image, peak


def _prepare_torch(series, bridge, operator, baseline_count, head, noise_sd, pixel_mm, device):
    """`_prepare_numpy` with torch on `device` (a GPU)."""
    import torch

    frame_count, depth, height, width = series.shape
    if operator is not None:
        operator = torch.as_tensor(operator, device=device)
    curves = np.empty((frame_count if operator is None else operator.shape[0], depth, height, width), np.float32)
    baseline_image = np.empty((depth, height, width), np.float32)
    peak = np.empty((depth, height, width), np.float32)
    for z in range(depth):
        frames = torch.as_tensor(bridge.apply(np.array(series[:, z], dtype=np.float32, order="C")), device=device)
        if noise_sd > 0:
            frames = profile_bilateral_inside(frames, head[z], noise_sd, pixel_mm, in_place=True)
        frames = frames.reshape(frames.shape[0], -1)
        slice_curves = frames if operator is None else operator @ frames
        slice_baseline = slice_curves[:baseline_count].mean(dim=0)
        enhancement = slice_curves.sub_(slice_baseline)  # our own copy either way: in place
        peak[z] = enhancement.amax(dim=0).reshape(height, width).cpu().numpy()
        curves[:, z] = enhancement.reshape(-1, height, width).cpu().numpy()
        baseline_image[z] = slice_baseline.reshape(height, width).cpu().numpy()
    return curves, baseline_image, peak


def _head_curve(series: np.ndarray, bridge: Bridge, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of each frame over soft tissue (neither air, CSF nor bone), that mask, and the head (soft tissue
    and bone), all of the bridged series. The masks come from the temporal mean: chosen on one frame, the mask
    would pick the voxels whose noise is high in that frame, and the curve would carry a spike there."""
    count = series.shape[0]
    bridging = bridge.matrix(count) if bridge.steps else None
    if bridging is not None:  # the bridged series' temporal mean: each raw frame weighted by how often it is used
        weights = (bridging.sum(axis=0) / count).astype(np.float32)
        mean = np.stack([np.tensordot(weights, np.asarray(series[:, z], np.float32), axes=1)
                         for z in range(series.shape[1])])
    else:
        mean = np.stack([np.asarray(series[:, z], np.float32).mean(axis=0) for z in range(series.shape[1])])
    head = mean >= CSF_HU
    mask = head & (mean < BONE_HU)
    if not mask.any():  # e.g. unsigned values whose rescale intercept (-1024) was dropped: all reads as bone
        raise CaseError(name, f"no voxel reads as soft tissue ({CSF_HU:g} to {BONE_HU:g} HU) in the series' "
                              f"temporal mean (it ranges {mean.min():.0f} to {mean.max():.0f}): is the series in "
                              "Hounsfield units? A dropped rescale intercept (-1024) shifts every value up")
    curve = global_curve(series, mask)
    return (curve if bridging is None else bridging @ curve), mask, head


def compute_maps(series: np.ndarray, frame_times_s, spacing_zyx, method: str = "osvd", device: str = "auto",
                 denoise: bool = True, smoothing_mm: float = DEFAULT_SMOOTHING_MM, vof_correction: bool = True,
                 mask_vessels: bool = True,
                 name: str = "series", motion_correction: bool = False, bridge_moved: bool = True,
                 threads: int | None = None, keep_structures: bool = True,
                 **deconvolution_settings) -> PerfusionResult:
    """Perfusion maps of a (T, Z, Y, X) series in HU.

    frame_times_s: T acquisition times (s), strictly increasing (non-uniform allowed).
    spacing_zyx: voxel size in mm (z, y, x), for the denoising kernels and the bone margin.
    denoise: the profile bilateral filter on every frame (its strength follows the measured noise), then a
    Gaussian inside the parenchyma mask of SD `adaptive_smoothing_mm(noise)`, at most smoothing_mm (see
    `denoise`), both in-plane only; keep_structures: each voxel takes the Gaussian's estimate only as far as
    it stays within the noise of its own (`structure`: edges and structures smaller than the kernel kept).
    bridge_moved: without motion_correction, frames in which the skull moved are bridged in time first
    (`moved_frames`: bone moving into the AIF search region beat every artery).
    method: osvd (default), bcsvd, ssvd, tikhonov (see `deconvolution`); device: auto, cpu, cuda.
    deconvolution_settings: `oscillation_index`, `truncation`, `tikhonov` of `Deconvolver`.
    motion_correction: register every frame to the first by one rigid in-plane transform (see `motion`);
    off by default (it costs ~0.1 s per frame and the phantom's or a vendor's series are usually still).
    threads: on the CPU, how many slices or voxel chunks are worked on at once (default: the available
    cores), each with one BLAS thread (BLAS's own threads spin-waited on a busy machine: x7 slower).
    `series` is never written to (a read-only view will do): moved frames are bridged in per-slice copies.
    Raises CaseError (one line: name and problem) for input that cannot give maps.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    engine_device = device_name(device)  # "cpu": the numpy kernels, torch not even imported
    if engine_device != "cpu":
        return _compute_maps(series, frame_times_s, spacing_zyx, method, engine_device, None, denoise, smoothing_mm,
                             vof_correction, mask_vessels, name, motion_correction, bridge_moved,
                             keep_structures, deconvolution_settings)
    from threadpoolctl import threadpool_limits

    workers = max(int(threads), 1) if threads else available_cores()
    with threadpool_limits(1, user_api="blas"), \
            (ThreadPoolExecutor(workers) if workers > 1 else contextlib.nullcontext()) as pool:
        return _compute_maps(series, frame_times_s, spacing_zyx, method, engine_device, pool, denoise, smoothing_mm,
                             vof_correction, mask_vessels, name, motion_correction, bridge_moved,
                             keep_structures, deconvolution_settings)


def _compute_maps(series, frame_times_s, spacing_zyx, method, engine_device, pool, denoise, smoothing_mm,
                  vof_correction, mask_vessels, name, motion_correction, bridge_moved,
                  keep_structures, deconvolution_settings) -> PerfusionResult:
    """`compute_maps` on one device; `pool`: the CPU threads (None: one, or a GPU)."""
    check_series(series, name)
    times = check_frame_times(frame_times_s, series.shape[0], name)
    motion_settings = {"motion_correction": motion_correction}
    measured_until_s = None  # the scan's own end unless it ends with bridged frames
    if motion_correction:
        from isles_pipeline.perfusion.motion import correct_motion  # SimpleITK's registration: only when asked for

        series, motion = correct_motion(series, spacing_zyx)
        motion_settings.update(largest_shift_mm=motion.largest_displacement_mm,
                               largest_rotation_deg=float(np.abs(motion.angle_deg).max()))
    bridge = Bridge()
    if bridge_moved and not motion_correction:  # without registration, frames where the skull moved are bridged
        bridge = find_bridge(series, times, pool)  # in time, slice by slice in the engine's own copies
        motion_settings["moved_frames_bridged"] = bridge.frames
        measured_until_s = last_measured_time(times, bridge.frames)
    grid = uniform_grid(times)
    step = float(grid[1] - grid[0])
    resample = resampling_matrix(times, grid)  # (N, T)
    head_curve, soft, head = _head_curve(series, bridge, name)
    grid_head_curve = resample @ head_curve
    baseline_count = baseline_frame_count(grid_head_curve, step, name)
    series_warnings = timing_warnings(grid_head_curve, baseline_count, step)

    raw_baseline = int(np.searchsorted(times, grid[baseline_count - 1], side="right"))
    if raw_baseline >= MIN_BASELINE_FRAMES:
        noise_sd = estimate_noise_sd(bridge.first_frames(series, raw_baseline), soft)
    else:  # a scan started late: 1 or 2 frames' scatter would underestimate the noise (by ~30 % with 2)
        noise_sd = estimate_noise_sd_from_differences(series, soft, bridge.apply)

    # uniform frames on the grid already (the usual protocol): no resampling product
    operator = None if resample.shape[0] == resample.shape[1] and np.allclose(resample, np.eye(len(grid))) \
        else resample.astype(np.float32)
    prepare = _prepare_numpy if engine_device == "cpu" else _prepare_torch
    curves, baseline_image, peak = prepare(series, bridge, operator, baseline_count, head, noise_sd if denoise else 0.0,
                                           (float(spacing_zyx[1]), float(spacing_zyx[2])),
                                           pool if engine_device == "cpu" else engine_device)

    masks = tissue_masks(baseline_image, spacing_zyx)
    vessel_like = _vessel_like(peak, masks.brain)
    sigma_mm = adaptive_smoothing_mm(noise_sd, smoothing_mm) if denoise else 0.0
    if sigma_mm > 0:
        parenchyma = masks.brain & ~vessel_like
        weight = smoothing_weight(curves, parenchyma, sigma_mm, (float(spacing_zyx[1]), float(spacing_zyx[2])),
                                  baseline_count, pool) if keep_structures else None
        _smooth_parenchyma(curves, parenchyma, sigma_mm, spacing_zyx, engine_device, pool, weight)
    search = masks.intracranial & ~ndimage.binary_dilation(masks.bone, _margin_structure(spacing_zyx,
                                                                                            BONE_MARGIN_MM))
    denoised_sd = noise_sd / (3.0 if denoise else 1.0)
    arterial = select_arterial_input(curves, search, grid, denoised_sd, baseline_count, vof_correction, name,
                                     measured_until_s)
    aif = arterial.scaled_aif

    deconvolver = numpy_kernels.NumpyDeconvolver.for_aif(aif, step, method, **deconvolution_settings) \
        if engine_device == "cpu" else Deconvolver.for_aif(aif, step, method, engine_device, **deconvolution_settings)
    brain_index = np.flatnonzero(masks.brain.ravel())
    flat_curves = curves.reshape(len(grid), -1)
    cbf = np.zeros(masks.brain.size, np.float32)
    tmax = np.zeros(masks.brain.size, np.float32)
    cbv = np.zeros(masks.brain.size, np.float32)
    ttp = np.zeros(masks.brain.size, np.float32)
    chunk_voxels = CHUNK_VOXELS if pool is None else CPU_CHUNK_VOXELS

    def one_chunk(start):
        index = brain_index[start: start + chunk_voxels]
        chunk = flat_curves[:, index]
        cbf[index], tmax[index] = flow_and_tmax(deconvolver.residues(chunk), step, len(grid), definition="rise")
        cbv[index] = blood_volume(chunk, aif)
        ttp[index] = time_to_peak(chunk, grid)

    _each(pool, one_chunk, range(0, brain_index.size, chunk_voxels))
    shape = masks.brain.shape
    maps = {"cbf": cbf.reshape(shape), "cbv": cbv.reshape(shape), "tmax": tmax.reshape(shape),
            "ttp": ttp.reshape(shape)}
    maps["mtt"] = transit_time(maps["cbv"], maps["cbf"])
    if mask_vessels:
        masks.vessels = vessel_mask(maps["cbv"], masks.brain, vessel_like)
    valid = masks.valid
    for key in maps:
        maps[key] = np.where(valid, maps[key], 0.0).astype(np.float32)
    settings = {"denoise": denoise, "smoothing_mm": round(sigma_mm, 3), "keep_structures": keep_structures,
                "vof_correction": vof_correction,
                "mask_vessels": mask_vessels,
                "grid_step_s": step, "baseline_frames": baseline_count, **motion_settings, **deconvolution_settings}
    return PerfusionResult(maps, masks, arterial, method, noise_sd, str(engine_device), settings, series_warnings)
