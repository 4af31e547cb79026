"""Frame times of a CTP series and their resampling onto the uniform grid deconvolution needs.

Protocols with non-uniform sampling (fast during the first pass, slower afterwards) are common, and
block-circulant deconvolution assumes equally spaced samples, so every curve is linearly interpolated onto a
uniform grid first. Times are never guessed: a series without a positive frame interval is an error.
"""
from __future__ import annotations

import numpy as np

from isles_pipeline.errors import CaseError
from isles_pipeline.imageio.frame_timing import check_ctp_timing
from isles_pipeline.perfusion.bolus_timing import interpolation_matrix

MAX_GRID_STEP_S = 1.0  # coarser protocols are interpolated to 1 s: Tmax resolution, at a modest cost


def uniform_frame_times(num_frames: int, interval_s: float, name: str = "series") -> np.ndarray:
    """Times (s) of `num_frames` frames `interval_s` apart, starting at 0 (a 4D header's pixdim[4])."""
    if not np.isfinite(interval_s) or interval_s <= 0:
        raise CaseError(name, f"frame interval {interval_s!r} s in the header: the timing is unknown "
                              "(give per-frame times with -frame_times)")
    return np.arange(num_frames, dtype=float) * float(interval_s)


def check_frame_times(frame_times_s, num_frames: int, name: str = "series") -> np.ndarray:
    """The frame times as float array, checked: one per frame, finite, strictly increasing."""
    times = np.asarray(frame_times_s, dtype=float).ravel()
    if times.size != num_frames:
        raise CaseError(name, f"{times.size} frame times for {num_frames} frames")
    if not np.isfinite(times).all():
        raise CaseError(name, "non-finite frame times")
    if num_frames > 1 and np.any(np.diff(times) <= 0):
        raise CaseError(name, "frame times are not strictly increasing")
    if num_frames > 1:
        check_ctp_timing(float(np.median(np.diff(times))), float(times[-1] - times[0]), name)
    return times


def grid_step(frame_times_s: np.ndarray) -> float:
    """The uniform step: the median frame interval, at most MAX_GRID_STEP_S."""
    return float(min(np.median(np.diff(frame_times_s)), MAX_GRID_STEP_S))


def uniform_grid(frame_times_s: np.ndarray, step_s: float | None = None) -> np.ndarray:
    """Uniform times from the first to the last frame (the last grid point never exceeds the last frame)."""
    step = grid_step(frame_times_s) if step_s is None else float(step_s)
    count = int(np.floor((frame_times_s[-1] - frame_times_s[0]) / step + 1e-6)) + 1
    return frame_times_s[0] + np.arange(count) * step


def resampling_matrix(frame_times_s: np.ndarray, grid_s: np.ndarray) -> np.ndarray:
    """(len(grid), T) matrix of linear interpolation in time from the frames onto the grid."""
    positions = np.interp(grid_s, frame_times_s, np.arange(len(frame_times_s), dtype=float))
    return interpolation_matrix(positions, len(frame_times_s))
