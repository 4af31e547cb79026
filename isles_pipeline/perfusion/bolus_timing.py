"""When the bolus passes: one global time-intensity curve per case (the head's mean), its peak, baseline,
onset and end of first pass. The perfusion engine uses it for each voxel's baseline; the network's temporal
preprocessing (`isles_pipeline.preprocessing.temporal`, which documents the definitions) for its window.
Kept here, below both, so the engine stands alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np
from scipy.ndimage import gaussian_filter1d

from isles_pipeline.errors import CaseError


@dataclass(frozen=True)
class TemporalParameters:
    """The plans' `temporal` section (same key names)."""

    num_frames: int = 11
    smoothing_kernel_size: int = 5
    onset_fraction: float = 0.10
    end_fraction: float = 0.20
    recirculation_fraction: float = 0.50
    onset_lead_s: float = 3.0
    min_enhancement_snr: float = 5.0

    @classmethod
    def from_config(cls, config: dict) -> "TemporalParameters":
        return cls(**{f.name: config[f.name] for f in fields(cls) if f.name in config})

    def to_config(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class BolusTiming:
    """Where the first pass lies in one case's series. Positions are in (fractional) frames."""

    frame_interval_s: float
    num_input_frames: int
    baseline_frames: int  # frames 0 .. baseline_frames - 1 give each voxel's baseline; 0: no subtraction
    peak_frame: int
    onset_position: float
    end_position: float
    baseline_value: float = 0.0
    peak_value: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def sample_positions(self, num_frames: int) -> np.ndarray:
        return np.linspace(self.onset_position, self.end_position, int(num_frames))

    def to_json(self, num_frames: int) -> dict:
        dt = self.frame_interval_s
        return {"frame_interval_s": dt, "num_input_frames": self.num_input_frames,
                "baseline_frames": self.baseline_frames, "peak_s": self.peak_frame * dt,
                "onset_s": self.onset_position * dt, "end_s": self.end_position * dt,
                "frame_times_s": [round(float(p * dt), 6) for p in self.sample_positions(num_frames)],
                "baseline_value": self.baseline_value, "peak_value": self.peak_value,
                "warnings": list(self.warnings)}


def gaussian_sigma(kernel_size: int) -> float:
    """Sigma of a Gaussian kernel of `kernel_size` taps by OpenCV's getGaussianKernel rule."""
    return 0.3 * ((kernel_size - 1) * 0.5 - 1) + 0.8


def smoothing_matrix(num_frames: int, kernel_size: int) -> np.ndarray:
    """(T, T) matrix S with S @ x = x smoothed by the kernel (edges repeated)."""
    if kernel_size <= 1 or num_frames < 2:
        return np.eye(num_frames)
    sigma = gaussian_sigma(kernel_size)
    radius = kernel_size // 2
    return gaussian_filter1d(np.eye(num_frames), sigma, axis=0, mode="nearest", truncate=radius / sigma)


def interpolation_matrix(positions: np.ndarray, num_frames: int) -> np.ndarray:
    """(len(positions), T) matrix of linear interpolation in time at fractional frame positions."""
    matrix = np.zeros((len(positions), num_frames))
    if num_frames == 1:
        matrix[:, 0] = 1.0
        return matrix
    positions = np.clip(np.asarray(positions, dtype=float), 0, num_frames - 1)
    left = np.minimum(np.floor(positions).astype(int), num_frames - 2)
    weight = positions - left
    rows = np.arange(len(positions))
    matrix[rows, left] = 1.0 - weight
    matrix[rows, left + 1] += weight
    return matrix


def slice_frames(series: np.ndarray, z: int) -> np.ndarray:
    """(T, Y * X) float32 of slice z; a view, without copying, when the series is float32."""
    return np.asarray(series[:, z], dtype=np.float32).reshape(series.shape[0], -1)


def global_curve(series: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over the head mask of each frame of a (T, Z, Y, X) series, computed slice by slice (a
    matrix-vector product per slice, summed in float64 across slices)."""
    total = np.zeros(series.shape[0])
    for z in range(series.shape[1]):
        if mask[z].any():
            total += slice_frames(series, z) @ mask[z].ravel().astype(np.float32)
    return total / max(int(mask.sum()), 1)


def _first(condition: np.ndarray, start: int = 0) -> int | None:
    hits = np.flatnonzero(condition[start:])
    return int(hits[0]) + start if hits.size else None


def find_bolus_timing(curve: np.ndarray, frame_interval_s: float, params: TemporalParameters,
                      case: str = "case") -> BolusTiming:
    """Time the bolus on a global curve (module doc). CaseError on a non-finite or flat curve."""
    curve = np.asarray(curve, dtype=float)
    if not np.isfinite(curve).all():
        raise CaseError(case, "NaN or infinite values in the 4D CTP series inside the head")
    n, dt = len(curve), float(frame_interval_s)
    if n == 1:
        return BolusTiming(dt, 1, 0, 0, 0.0, 0.0, float(curve[0]), float(curve[0]),
                           [f"the CTP series has 1 frame: its {params.num_frames} frames are copies of it, "
                            "without baseline subtraction"])
    if n < max(params.smoothing_kernel_size, 2):
        peak = int(np.argmax(curve))
        return BolusTiming(dt, n, 1, peak, 0.0, float(n - 1), float(curve[0]), float(curve[peak]),
                           [f"the CTP series has {n} frames, too few to time the bolus: the window is the whole "
                            f"series, baseline frame 0, {params.num_frames} frames interpolated"])
    smooth = smoothing_matrix(n, params.smoothing_kernel_size) @ curve
    peak = int(np.argmax(smooth))
    residual = curve - smooth
    noise = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))

    def enhancement_or_fail(baseline: float) -> float:
        amplitude = float(smooth[peak] - baseline)
        if amplitude <= max(params.min_enhancement_snr * noise, 1e-6 * max(abs(baseline), 1.0)):
            raise CaseError(case, "no contrast bolus in the CTP time-intensity curve (flat curve, or the series "
                                  f"starts after the bolus): enhancement {amplitude:.3g}, noise {noise:.3g}")
        return amplitude

    first_guess = float(smooth[: peak + 1].min())
    rise = _first(smooth > first_guess + params.onset_fraction * enhancement_or_fail(first_guess))
    baseline = float(curve[: max(rise, 1)].mean())
    amplitude = enhancement_or_fail(baseline)
    rise = _first(smooth > baseline + params.onset_fraction * amplitude)
    onset = max(float(max(rise - 1, 0)) - params.onset_lead_s / dt, 0.0)
    warnings: list[str] = []
    if n < params.num_frames:
        warnings.append(f"the CTP series has {n} frames, fewer than {params.num_frames}: frames interpolated")

    below = _first(smooth < baseline + params.end_fraction * amplitude, peak + 1)
    inner = np.arange(peak + 1, n - 1)
    minima = inner[(smooth[inner] <= smooth[inner - 1]) & (smooth[inner] < smooth[inner + 1])
                   & (smooth[inner] < baseline + params.recirculation_fraction * amplitude)]
    candidates = [c for c in (below, int(minima[0]) if minima.size else None) if c is not None]
    if candidates:
        end = float(min(candidates))
    else:
        end = float(n - 1)
        warnings.append(f"first pass not over by the last frame ({(n - 1) * dt:g} s; late bolus or truncated "
                        "series): the window ends at the last frame")
    return BolusTiming(dt, n, int(math.floor(onset)) + 1, peak, onset, end, baseline, float(smooth[peak]),
                       warnings)
