"""Frames where the head moved, found from the skull and bridged in time.

Why: during a brief head movement bone slides into voxels next to it. Those voxels then carry a box-shaped
"enhancement" of 1000 HU or more for the frames of the movement, which beats every artery in an AIF search,
and every tissue voxel near an edge gets a spike that deconvolution turns into flow. Registration
(`motion.correct_motion`) costs ~0.1 s per frame and is off by default; finding the moved frames costs one
pass over the series. The skull is the marker: in a still frame the voxels at or above SKULL_HU are the same as
in most frames (the temporal median); when more than MOVED_FRACTION of them differ, the frame moved. A moved
frame is replaced by linear interpolation in time between its nearest still neighbours (frame rejection, as in
clinical packages' motion handling); a moved first or last frame takes its nearest still frame's values.
"""
from __future__ import annotations

from concurrent.futures import Executor

import numpy as np

SKULL_HU = 800.0  # dense bone; iodinated blood (baseline ~40 HU + a first pass of a few hundred) stays below
MOVED_FRACTION = 0.05  # of the skull's voxels changing side of SKULL_HU in one frame
MAX_MOVED_FRACTION_OF_FRAMES = 0.3  # more moved frames than this: too much to bridge, left as they are


def moved_frames(series: np.ndarray, pool: Executor | None = None) -> np.ndarray:
    """(T,) bool: frames whose skull voxels differ from the usual (median) skull by more than MOVED_FRACTION.
    pool: threads to spread the slices over (numpy's comparisons and sums release the GIL)."""
    count = series.shape[0]

    def one_slice(z: int) -> tuple[int, np.ndarray]:
        bone = np.asarray(series[:, z]) >= SKULL_HU  # (T, Y, X)
        usual = bone.sum(axis=0) * 2 > count
        return int(usual.sum()), (bone != usual[None]).reshape(count, -1).sum(axis=1)

    per_slice = list((pool.map if pool is not None else map)(one_slice, range(series.shape[1])))
    bone_total = sum(bones for bones, _ in per_slice)
    if bone_total == 0:
        return np.zeros(count, bool)
    changed = np.sum([counts for _, counts in per_slice], axis=0)
    return changed > MOVED_FRACTION * bone_total


def bridge_moved_frames(series: np.ndarray, frame_times_s: np.ndarray, in_place: bool = False,
                        pool: Executor | None = None) -> tuple[np.ndarray, list[int]]:
    """The series with its moved frames interpolated from still ones (a copy when any moved, else the same
    array), and the indices of the frames replaced (none when all or too many moved).
    in_place: overwrite the moved frames of a float32 `series` itself (a whole-series copy costs 0.3 s)."""
    moved = moved_frames(series, pool)
    if not moved.any() or moved.mean() > MAX_MOVED_FRACTION_OF_FRAMES:
        return series, []
    still = np.flatnonzero(~moved)
    times = np.asarray(frame_times_s, float)
    own = in_place and isinstance(series, np.ndarray) and series.dtype == np.float32 and series.flags.writeable
    bridged = series if own else np.array(series, dtype=np.float32, copy=True)
    for frame in np.flatnonzero(moved):
        after = still[np.searchsorted(still, frame):]
        before = still[: np.searchsorted(still, frame)]
        if before.size == 0 or after.size == 0:
            bridged[frame] = series[(after if before.size == 0 else before)[0 if before.size == 0 else -1]]
            continue
        left, right = before[-1], after[0]
        weight = (times[frame] - times[left]) / (times[right] - times[left])
        bridged[frame] = (1 - weight) * series[left] + weight * series[right]
    return bridged, [int(f) for f in np.flatnonzero(moved)]


def last_measured_time(frame_times_s: np.ndarray, bridged: list[int]) -> float | None:
    """When the scan ends with bridged frames, the time of the last frame before them (the bridged ones are
    copies of it, not measurements: an area or a fit must stop there); None when the last frame is measured."""
    last = len(frame_times_s) - 1
    if last not in bridged:
        return None
    first_of_run = last
    while first_of_run - 1 in bridged:
        first_of_run -= 1
    return float(frame_times_s[first_of_run - 1]) if first_of_run > 0 else None
