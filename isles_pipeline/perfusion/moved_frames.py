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
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Bridge:
    """How each moved frame is rebuilt from its nearest still ones: frame = (1 - weight) left + weight right
    (a moved first or last frame: its nearest still frame, weight 0). Linear in time, so the engine applies it
    to each slice's own float32 copy, and to a curve or a temporal mean as a (T, T) matrix, without ever
    copying the whole series."""

    steps: tuple[tuple[int, int, int, float], ...] = ()  # (frame, left, right, weight)

    @property
    def frames(self) -> list[int]:
        return [frame for frame, _, _, _ in self.steps]

    def apply(self, frames: np.ndarray) -> np.ndarray:
        """The moved frames of a writeable (T, ...) array replaced in place (the still ones are the sources)."""
        for frame, left, right, weight in self.steps:
            frames[frame] = _between(frames[left], frames[right], weight)
        return frames

    def matrix(self, count: int) -> np.ndarray:
        """(T, T) float64: bridged curve = matrix @ curve."""
        matrix = np.eye(count)
        for frame, left, right, weight in self.steps:
            matrix[frame] = 0.0
            matrix[frame, left] += 1 - weight
            matrix[frame, right] += weight
        return matrix

    def first_frames(self, series: np.ndarray, count: int) -> np.ndarray:
        """(count, ...) float32 copy of the first `count` frames, bridged (their sources may lie later)."""
        out = np.array(series[:count], dtype=np.float32)
        for frame, left, right, weight in self.steps:
            if frame < count:
                out[frame] = _between(np.asarray(series[left], np.float32), np.asarray(series[right], np.float32),
                                      weight)
        return out


def _between(left: np.ndarray, right: np.ndarray, weight: float) -> np.ndarray:
    """Linear interpolation in time between two still frames (float32 in, float32 out)."""
    return (1 - weight) * left + weight * right


def find_bridge(series: np.ndarray, frame_times_s: np.ndarray, pool: Executor | None = None) -> Bridge:
    """The Bridge of the series' moved frames (empty when none moved, or too many to bridge)."""
    moved = moved_frames(series, pool)
    if not moved.any() or moved.mean() > MAX_MOVED_FRACTION_OF_FRAMES:
        return Bridge()
    still = np.flatnonzero(~moved)
    times = np.asarray(frame_times_s, float)
    steps = []
    for frame in np.flatnonzero(moved):
        position = np.searchsorted(still, frame)
        if position == 0 or position == still.size:  # before the first or after the last still frame
            nearest = int(still[0 if position == 0 else -1])
            steps.append((int(frame), nearest, nearest, 0.0))
            continue
        left, right = int(still[position - 1]), int(still[position])
        steps.append((int(frame), left, right, float((times[frame] - times[left]) / (times[right] - times[left]))))
    return Bridge(tuple(steps))


def bridge_moved_frames(series: np.ndarray, frame_times_s: np.ndarray,
                        pool: Executor | None = None) -> tuple[np.ndarray, list[int]]:
    """The series with its moved frames interpolated from still ones (a float32 copy when any moved, else the
    same array), and the indices of the frames replaced (none when all or too many moved). The engine itself
    bridges slice by slice (`Bridge`); this whole-series form is for callers that want the bridged series."""
    bridge = find_bridge(series, frame_times_s, pool)
    if not bridge.steps:
        return series, []
    return bridge.apply(np.array(series, dtype=np.float32, copy=True)), bridge.frames


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
