"""The world grid of a stack of DICOM slices, exactly as the headers state it.

DICOM positions are LPS millimetres, and so is the ITK/SimpleITK world, so no axis is flipped: the grid's
origin is the first slice's ImagePositionPatient, its x axis the row direction (ImageOrientationPatient[:3],
step PixelSpacing[1]), its y axis the column direction (ImageOrientationPatient[3:], step PixelSpacing[0]),
and its z axis the slice normal, slices sorted along it whatever order the files came in. The slice step is
measured from the positions (SliceThickness may differ from it and is ignored when there are two slices or
more). A stack whose slices are displaced along anything but their normal (gantry tilt) is a sheared volume,
which NIfTI and ITK grids cannot hold: as dcm2niix does, each slice is then shifted within its plane onto the
orthogonal grid of the first slice (`Grid.shifts`, applied by `resample_tilted`; linear interpolation, the
edges that leave the field of view are lost and the ones that enter it take the slice's minimum).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage

POSITION_TOLERANCE_MM = 0.05  # slices closer than this along the normal are at the same position
SPACING_TOLERANCE = 1e-3  # relative: uneven gaps beyond it mean a missing or extra slice position
TILT_TOLERANCE = 1e-3  # tangent of the angle between the stacking direction and the normal (0.06 degrees)


class GeometryError(ValueError):
    """A stack that has no exact orthogonal grid; the message is the problem, without the folder."""


@dataclass(frozen=True)
class Grid:
    """An orthogonal LPS grid: ITK order (x, y, z) for spacing and origin, direction columns x, y, z."""

    origin: tuple[float, float, float]
    spacing: tuple[float, float, float]
    direction: tuple[float, ...]  # 3 x 3 row-major, ITK convention (columns are the axes)
    size: tuple[int, int, int]
    shifts: tuple = ()  # gantry tilt: per slice, (row, column) pixel shift onto the orthogonal grid; () if none
    tilt_deg: float = 0.0

    def index_to_world(self, index: Sequence[float]) -> np.ndarray:
        """World (LPS mm) of a continuous (x, y, z) index."""
        axes = np.array(self.direction).reshape(3, 3)
        return np.array(self.origin) + axes @ (np.array(self.spacing) * np.asarray(index, float))


def normal_of(orientation: Sequence[float]) -> np.ndarray:
    """Unit slice normal (row direction x column direction) of an ImageOrientationPatient."""
    row, column = np.array(orientation[:3], float), np.array(orientation[3:], float)
    normal = np.cross(row, column)
    length = np.linalg.norm(normal)
    if length < 1e-6:
        raise GeometryError(f"ImageOrientationPatient {list(orientation)} has parallel row and column directions")
    return normal / length


def cluster_positions(positions: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Position number of each slice (0 = lowest along the normal); slices closer than the tolerance share one."""
    depth = np.asarray(positions, float) @ normal
    order = np.argsort(depth, kind="stable")
    labels = np.empty(len(depth), int)
    current, previous = 0, None
    for index in order:
        if previous is not None and depth[index] - previous > POSITION_TOLERANCE_MM:
            current += 1
        labels[index] = current
        previous = depth[index]
    return labels


def stack_grid(positions: np.ndarray, orientation: Sequence[float], pixel_spacing: Sequence[float], rows: int,
               columns: int, thickness: float | None = None) -> Grid:
    """The grid of one stack whose `positions` (N x 3, one slice per position) are sorted along the normal."""
    positions = np.asarray(positions, float)
    row, column = np.array(orientation[:3], float), np.array(orientation[3:], float)
    if abs(np.linalg.norm(row) - 1) > 1e-3 or abs(np.linalg.norm(column) - 1) > 1e-3 or abs(row @ column) > 1e-3:
        raise GeometryError(f"ImageOrientationPatient {list(orientation)} is not two orthogonal unit vectors")
    row, column = row / np.linalg.norm(row), column / np.linalg.norm(column)
    normal = normal_of(orientation)
    shifts, tilt = (), 0.0
    if len(positions) == 1:
        step = float(thickness) if thickness and thickness > 0 else 1.0
    else:
        gaps = np.diff(positions, axis=0)
        mean_gap = (positions[-1] - positions[0]) / (len(positions) - 1)
        step = float(mean_gap @ normal)
        sideways = np.linalg.norm(mean_gap - step * normal)
        if sideways > TILT_TOLERANCE * abs(step):
            tilt = float(np.degrees(np.arctan2(sideways, abs(step))))
            offsets = (positions - positions[0]) - np.outer((positions - positions[0]) @ normal, normal)
            # to 1/1000 pixel: DS rounding of the positions must not turn an integer shift into an interpolation
            shifts = tuple((round(float(o @ column / pixel_spacing[0]), 3), round(float(o @ row / pixel_spacing[1]), 3))
                           for o in offsets)
        depths = gaps @ normal
        worst = np.max(np.abs(depths - step))
        if worst > max(SPACING_TOLERANCE * abs(step), 1e-3):
            raise GeometryError(f"uneven slice spacing along the normal (gaps from {depths.min():.3f} to "
                                f"{depths.max():.3f} mm): a slice position is missing or extra")
    direction = np.column_stack([row, column, normal])
    return Grid(origin=tuple(float(v) for v in positions[0]),
                spacing=(float(pixel_spacing[1]), float(pixel_spacing[0]), abs(step)),
                direction=tuple(float(v) for v in direction.ravel()), size=(int(columns), int(rows), len(positions)),
                shifts=shifts, tilt_deg=tilt)


def resample_tilted(series: np.ndarray, grid: Grid) -> np.ndarray:
    """A (T, Z, Y, X) series of a tilted stack on its orthogonal grid: slice z moved by -shifts[z] in its plane.

    Slice z's pixel (r, c) lies at the grid's in-plane index (r + dr, c + dc), so the grid's voxel (y, x) takes
    the slice's value at (y - dr, x - dc). Integer HU become float32 (interpolated values).
    """
    out = np.empty(series.shape, np.float32)
    for z, (rows, columns) in enumerate(grid.shifts):
        for t in range(series.shape[0]):
            plane = series[t, z].astype(np.float32, copy=False)
            ndimage.shift(plane, (rows, columns), output=out[t, z], order=1, mode="grid-constant",
                          cval=float(plane.min()))
    return out
