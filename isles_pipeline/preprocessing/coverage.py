"""The slices a CTP series covers, and cropping a case to them (ISLES 2024).

ISLES 2024 registers the 4D series to the NCCT, whose grid spans the whole head; outside the CTP's slab the
registered series is 0 in every frame. Those slices hold no perfusion information, so (where the plans say
`ctp_coverage_crop`) preprocessing keeps only the covered slices [first, last + 1), the properties record the
crop (`crop_z`), and `resampling.restore_original_geometry` puts predictions back on the full NCCT grid,
with 0 (background) outside the coverage.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from isles_pipeline.errors import CaseError
from isles_pipeline.imageio.case_images import Geometry


def covered_slices(frames: np.ndarray, case: str) -> tuple[int, int]:
    """[first, last + 1) of the slices where any frame has a non-zero voxel; frames (T, Z, Y, X).
    Checked slice by slice, so no series-sized temporary is made."""
    covered = [z for z in range(frames.shape[1]) if np.any(frames[:, z])]
    if not covered:
        raise CaseError(case, "the 4D CTP series is 0 in every voxel of every frame (no coverage)")
    return covered[0], covered[-1] + 1


def coverage_of(frames: np.ndarray, case: str, recorded: Optional[Sequence[int]]) -> tuple[int, int]:
    """The coverage recorded by the converter (dataset.json `ctp_coverage_z`) when given, else from the data."""
    if recorded is not None:
        first, last = int(recorded[0]), int(recorded[1])
        if not 0 <= first < last <= frames.shape[1]:
            raise CaseError(case, f"ctp_coverage_z {list(recorded)} in dataset.json lies outside the "
                                  f"{frames.shape[1]} slices of the series")
        return first, last
    return covered_slices(frames, case)


def crop_geometry(geometry: Geometry, first: int, last: int) -> Geometry:
    """The grid of slices [first, last) of `geometry` (origin moved along the slice axis)."""
    direction = np.asarray(geometry.direction, dtype=float).reshape(3, 3)
    origin = np.asarray(geometry.origin, dtype=float) + direction @ np.array([0.0, 0.0, first * geometry.spacing[2]])
    return Geometry((geometry.size[0], geometry.size[1], last - first), geometry.spacing,
                    tuple(origin.tolist()), geometry.direction)


def pad_to_original(array: np.ndarray, crop_z: Sequence[int], num_slices: int) -> np.ndarray:
    """An array (..., z, y, x) of the cropped slices placed back among `num_slices`, 0 elsewhere."""
    first, last = int(crop_z[0]), int(crop_z[1])
    if array.shape[-3] != last - first:
        raise ValueError(f"array has {array.shape[-3]} slices, the crop {first}..{last} has {last - first}")
    padding = [(0, 0)] * array.ndim
    padding[-3] = (first, num_slices - last)
    return np.pad(array, padding)
