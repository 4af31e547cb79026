"""Perfusion maps from a raw 4D CT perfusion series: CBF, CBV, MTT, Tmax, TTP, vendor-independent.

One call does everything::

    from isles_pipeline.perfusion import compute_maps
    result = compute_maps(series_tzyx_hu, frame_times_s, spacing_zyx_mm, method="osvd", device="auto")
    result.maps["cbf"]        # (Z, Y, X) float32, ml/100g/min; also cbv (ml/100g), mtt, tmax, ttp (s)
    result.arterial           # ArterialInput: AIF, VOF, their voxels, the VOF scale, the grid
    result.masks.valid        # where maps are defined (brain parenchyma without CSF, bone, vessels)

The building blocks, each usable alone (all curves are (frames, voxels) arrays on one uniform grid):

- `timing`: `uniform_frame_times(n, dt)`, `check_frame_times`, `uniform_grid(times)`,
  `resampling_matrix(times, grid)` (linear interpolation in time as one matrix).
- `baseline`: `baseline_frame_count(head_curve, step_s)` (pre-contrast window; CaseError when no bolus),
  `subtract_baseline(curves, count)`, `arrival_index`, `full_width_half_maximum`; `series_checks`:
  `timing_warnings(head_curve, baseline_frames, step_s)` (a scan started late or ended during the first pass:
  `result.series_warnings`).
- `denoise`: `estimate_noise_sd`, `profile_bilateral(frames_tyx, noise_sd, pixel_mm)` (edge-preserving in
  space, each frame filtered with weights shared by all frames: nothing is smoothed along time).
- `aif`: `select_arterial_input(enhancement_nzyx, search_mask, grid_s, noise_sd)` -> `ArterialInput` (with
  `.quality`); `aif_quality`: the shape checks a candidate must pass (a first pass: >= 3 s wide, <= 1000 HU, no
  frame jump over 60 % of its peak, not after the tissue) and `quality_report`; `first_pass`:
  `fit_first_pass(curve, step_s)` -> `GammaVariate` (its `.area`), for the VOF rescaling of scans that end early.
- `deconvolution`: `convolution_matrix(aif, step_s, circulant)`, `Deconvolver.for_aif(aif, step_s, method,
  device)` then `.residues(curves)` -> (2N or N, V) residues k = (rho/kH) CBF R(t), in 1/s;
  `oscillation_index`. Methods: osvd, bcsvd, ssvd (non-circulant, delay-sensitive), tikhonov.
- `maps`: `flow_and_tmax(residues, step_s, n, definition="rise" | "peak")`, `rise_position`,
  `blood_volume(curves, aif)`, `transit_time(cbv, cbf)`,
  `time_to_peak(curves, grid_s)`; constants RHO = 1.05 g/ml, K_H = 0.73.
- `motion`: `correct_motion(series, spacing_zyx)` -> (series registered to frame 0, `FrameMotion`): one rigid
  in-plane transform per frame, estimated on bone (`compute_maps(..., motion_correction=True)`);
  `moved_frames`: `bridge_moved_frames(series, times)` (frames where the skull moved, interpolated in time;
  the default without registration).
- `clinical`: `clinical_volumes(cbf, tmax, valid, spacing_zyx)` (core rCBF < 30 %, Tmax > 6 s, mismatch);
  `qc_figure`: `write_qc_figure` (qc.png).
- `masks`: `tissue_masks(baseline_hu, spacing_zyx)` -> `TissueMasks`, `vessel_mask(cbv, brain)`.
- `structure`: `smoothing_weight` (how much of the parenchyma Gaussian each voxel takes: small structures kept).
- `numpy_kernels`: the CPU engine (numpy twins of the torch kernels, which run on a GPU; torch is not imported
  on a machine without one: `isles_pipeline.devices.device_name`).
- `io`: `read_series(path, frame_times_csv)`, `write_outputs(result, image4d, out_dir)` (the command
  `isles_perfusion_maps`: maps, aif.json, summary.json, qc.png), `aif_warning(result)` and `result_warnings(result)`.
- `pipeline`: `computed_map_images(series_image)` -> {"CT_CBF": image, ...} on the series' grid (the
  converter and the predictor use it for cases without vendor maps).

Defaults and why: oSVD with Wu's oscillation-index limit 0.095 over 10 truncations (0.2 % to 50 % of the
largest singular value); Wu's linear-AIF discretisation; Tmax at the residue's half-maximum rise (its regularised
maximum was 1 to 3 s late); profile bilateral (5 x 5) then a Gaussian inside the parenchyma of 2 mm per HU of
measured noise up to 4 mm (none on noise-free data, where it only erased small cores; CTP's noise is several HU
per frame against 10 to 25 HU of tissue enhancement), taken per voxel only where it keeps the voxel's mean and
peak enhancement within their noise (near edges and in small structures, the bilateral's estimate); VOF
correction on (scales the AIF up to the VOF's area, never down; gamma-variate areas when the scan ends during the
venous washout); vessels (CBV >= 8 ml/100g with an
arterial-size peak), CSF (< 20 HU), bone (>= 150 HU) and a 2 mm rim around bone are 0, as in ISLES maps.

Input problems raise `isles_pipeline.errors.CaseError`, one line naming the series.
"""
from isles_pipeline.perfusion.aif import ArterialInput, select_arterial_input
from isles_pipeline.perfusion.compute import MIN_FRAMES, PerfusionResult, check_series, compute_maps
from isles_pipeline.perfusion.deconvolution import METHODS, Deconvolver, convolution_matrix, oscillation_index
from isles_pipeline.perfusion.maps import K_H, MAP_NAMES, RHO

__all__ = [
    "ArterialInput", "Deconvolver", "K_H", "MAP_NAMES", "METHODS", "MIN_FRAMES", "PerfusionResult", "RHO",
    "check_series", "compute_maps", "convolution_matrix", "oscillation_index", "select_arterial_input",
]
