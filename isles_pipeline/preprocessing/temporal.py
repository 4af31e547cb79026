"""CTP temporal preprocessing (paper 2.1): one global time-intensity curve per case times
the bolus, and every voxel's series is resampled to a fixed number of frames over the first pass.

Definitions, in frames of the series (frame i is at i * dt seconds, dt from the data):
- curve: mean over the head mask of each frame (the paper's sum divided by the voxel count: same timing,
  a scale independent of head size), with frames where the head moved bridged in time (`timing_curve`; the
  paper does not say how it treats motion);
- smoothed curve s: Gaussian filter of `smoothing_kernel_size` taps (5 in the paper), sigma by OpenCV's rule
  for a kernel of that size (0.3 * ((k - 1) / 2 - 1) + 0.8 = 1.1 for k = 5), edges repeated;
- peak p = argmax s; baseline b = mean of the curve over the frames before s first exceeds
  b0 + onset_fraction * (s[p] - b0), with b0 = min of s up to the peak (a first guess);
- enhancement A = s[p] - b; no bolus (CaseError) when A <= min_enhancement_snr * the curve's noise
  (1.4826 * MAD of curve - s);
- onset = last frame before s exceeds b + onset_fraction * A, then moved `onset_lead_s` earlier:
  the head curve is mostly tissue, whose rise lags the arterial arrival by the transit time (about 2 s in
  our simulated gamma-variate curves, more behind an occlusion), and the paper samples from the onset of
  contrast injection, so the window must start before the tissue rises;
- end of first pass = first frame after the peak where s < b + end_fraction * A, or the first local minimum
  of s after the peak that lies below b + recirculation_fraction * A (recirculation; the level guard keeps
  a noise wiggle near the top from ending the window), whichever comes first; else the last frame;
- every voxel: the series smoothed in time with the same kernel, minus its mean over the frames up to the
  window start (its baseline), sampled at `num_frames` evenly spaced times over [onset, end] by linear
  interpolation in time. All three steps are linear, so they are one (num_frames x T) matrix applied along
  time, slice by slice: no smoothed copy of the 4D series is ever held in memory.
- PWImax_o = max over time of the original series; PWImax_p = max over the resampled frames.
Series shorter than the kernel cannot be timed: their window is the whole series (baseline frame 0), and a
single frame is repeated without baseline subtraction; both warn.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isles_pipeline.errors import CaseError
from isles_pipeline.perfusion.bolus_timing import (
    BolusTiming,
    TemporalParameters,
    find_bolus_timing,
    global_curve,
    interpolation_matrix,
    slice_frames,
    smoothing_matrix,
)
from isles_pipeline.perfusion.moved_frames import MAX_MOVED_FRACTION_OF_FRAMES, moved_frames


def temporal_operator(timing: BolusTiming, params: TemporalParameters) -> np.ndarray:
    """(num_frames, T) matrix: smoothing, baseline subtraction and resampling in one linear map."""
    n = timing.num_input_frames
    kernel = params.smoothing_kernel_size if n >= params.smoothing_kernel_size else 1
    smooth = smoothing_matrix(n, kernel)
    operator = interpolation_matrix(timing.sample_positions(params.num_frames), n) @ smooth
    if timing.baseline_frames > 0:
        operator = operator - smooth[: timing.baseline_frames].mean(axis=0, keepdims=True)
    return operator


@dataclass
class TemporalResult:
    frames: np.ndarray  # (Z, num_frames, Y, X) float32
    pwimax_o: np.ndarray  # (Z, Y, X) float32
    pwimax_p: np.ndarray  # (Z, Y, X) float32
    timing: BolusTiming


def timing_curve(series: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The head's mean curve with the frames where the head moved (perfusion.moved_frames) interpolated from still
    neighbours, and those frames. Why: during a movement, bone slides into the head mask and adds a box of tens of
    HU to the mean, taller than the bolus, which the timing would otherwise take for it."""
    curve = global_curve(series, mask)
    moved = moved_frames(series)
    if not moved.any() or moved.mean() > MAX_MOVED_FRACTION_OF_FRAMES:
        return curve, np.zeros(0, int)
    still, frames = np.flatnonzero(~moved), np.flatnonzero(moved)
    curve = curve.copy()
    curve[frames] = np.interp(frames, still, curve[still])
    return curve, frames


def preprocess_series(series: np.ndarray, mask: np.ndarray, frame_interval_s: float,
                      params: TemporalParameters, case: str = "case") -> TemporalResult:
    """The resampled frames, PWImax_o and PWImax_p of a (T, Z, Y, X) series (module doc)."""
    if not mask.any():
        raise CaseError(case, "empty head mask: no head found in the CT")
    curve, moved = timing_curve(series, mask)
    timing = find_bolus_timing(curve, frame_interval_s, params, case)
    if moved.size:
        timing.warnings.append(f"the head moved in frames {', '.join(str(int(f)) for f in moved)}: they were "
                               "bridged in the timing curve (the network's frames keep them)")
    operator = temporal_operator(timing, params).astype(np.float32)
    _, z_count, y, x = series.shape
    frames = np.empty((z_count, params.num_frames, y, x), dtype=np.float32)
    pwimax_o = np.empty((z_count, y, x), dtype=np.float32)
    for z in range(z_count):
        flat = slice_frames(series, z)
        frames[z] = (operator @ flat).reshape(params.num_frames, y, x)
        pwimax_o[z] = flat.max(axis=0).reshape(y, x)
    if not np.isfinite(pwimax_o).all():
        raise CaseError(case, "NaN or infinite values in the 4D CTP series")
    return TemporalResult(frames, pwimax_o, frames.max(axis=1), timing)
