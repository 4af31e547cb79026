"""A head of ellipses in millimetres: skull, CSF, cortical and deep grey matter, white matter, vessels.

Everything is defined in physical coordinates, so the two slabs of one patient cut the same head at
different heights and any in-plane size gives the same anatomy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fields import smooth_field, voxel_sigma

AIR, SKULL, CSF, GREY, WHITE, DEEP_GREY = 0, 1, 2, 3, 4, 5


@dataclass(frozen=True)
class HeadShape:
    """Per-patient constants of the head (mm)."""

    semi_axis_lr: float
    semi_axis_ap: float
    skull_mm: float
    cortex_mm: float
    centre_shift: tuple[float, float]

    @staticmethod
    def draw(rng: np.random.Generator) -> "HeadShape":
        return HeadShape(
            semi_axis_lr=float(rng.uniform(66, 76)),
            semi_axis_ap=float(rng.uniform(82, 94)),
            skull_mm=float(rng.uniform(5, 8)),
            cortex_mm=float(rng.uniform(3, 4.5)),
            centre_shift=(float(rng.uniform(-5, 5)), float(rng.uniform(-5, 5))),
        )


def physical_grid(shape_zyx, spacing_zyx, z_offset_mm: float):
    """Coordinates (mm) of voxel centres: x left-right, y anterior-posterior, z along the head axis."""
    nz, ny, nx = shape_zyx
    dz, dy, dx = spacing_zyx
    z = z_offset_mm + (np.arange(nz) - (nz - 1) / 2) * dz
    y = (np.arange(ny) - (ny - 1) / 2) * dy
    x = (np.arange(nx) - (nx - 1) / 2) * dx
    return np.meshgrid(z, y, x, indexing="ij")


def _segment_distance(px, py, a, b) -> np.ndarray:
    """In-plane distance (mm) from points to the segment a-b."""
    ax, ay = a
    bx, by = b
    vx, vy = bx - ax, by - ay
    t = np.clip(((px - ax) * vx + (py - ay) * vy) / (vx * vx + vy * vy), 0, 1)
    return np.hypot(px - (ax + t * vx), py - (ay + t * vy))


def build_anatomy(rng, head: HeadShape, shape_zyx, spacing_zyx, z_offset_mm: float):
    """Tissue labels (uint8) plus artery partial-volume fraction and vein mask for one slab."""
    z, y, x = physical_grid(shape_zyx, spacing_zyx, z_offset_mm)
    x = x - head.centre_shift[0]
    y = y - head.centre_shift[1]
    taper = np.sqrt(np.clip(1 - (z / 120.0) ** 2, 0.3, 1))  # the head narrows away from its widest plane
    a, b = head.semi_axis_lr * taper, head.semi_axis_ap * taper
    wobble = 0.012 * smooth_field(rng, x.shape, voxel_sigma(12, spacing_zyx))
    radius = np.sqrt((x / a) ** 2 + (y / b) ** 2) + wobble
    mm_per_unit = np.minimum(a, b)

    labels = np.full(x.shape, AIR, np.uint8)
    labels[radius < 1 + head.skull_mm / mm_per_unit] = SKULL
    labels[radius < 1] = CSF
    brain = radius < 1 - 2.5 / mm_per_unit
    sulci = 1.2 * smooth_field(rng, x.shape, voxel_sigma(2.5, spacing_zyx))
    cortex_inner = 1 - (2.5 + head.cortex_mm + sulci) / mm_per_unit
    labels[brain] = WHITE
    labels[brain & (radius >= cortex_inner)] = GREY
    for side in (-1, 1):
        deep = ((x - side * 22) / 10) ** 2 + ((y - 4) / 16) ** 2 + (z / 30) ** 2 < 1
        labels[brain & deep] = DEEP_GREY
        ventricle = ((x - side * 7) / 5) ** 2 + ((y + 4) / 22) ** 2 + (z / 25) ** 2 < 1
        labels[brain & ventricle] = CSF
    labels[brain & (np.abs(x) < 1.0) & (y > 5)] = CSF  # interhemispheric fissure

    artery = np.zeros(x.shape, np.float32)
    for segment in (((0, 8), (0, 60)), ((-8, 6), (-50, 2)), ((8, 6), (50, 2))):  # ACA, left and right MCA
        distance = _segment_distance(x, y, *segment)
        artery = np.maximum(artery, np.clip(1.6 - distance, 0, 1))
    artery *= (np.abs(z) < 25) & brain
    vein = (np.hypot(x, (y + b - 9) * 1.0) < 4.0) & (radius < 1)  # superior sagittal sinus, posterior
    return labels, artery, vein, brain
