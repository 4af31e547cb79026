"""The head in millimetres: skull, CSF, a folded cortical ribbon, white and deep grey matter, vessels,
vascular territories, and the unlabelled confounders of an elderly stroke population.

Everything is defined in physical coordinates, so the two slabs of one patient cut the same head at
different heights and any in-plane size gives the same anatomy.
- Cortex: grey matter within `cortex_mm` of the brain surface OR of a sulcus; sulci are thin CSF clefts
  following the zero set of a smooth random field down to a sulcal depth, so the ribbon folds into gyri.
- Territories (per hemisphere): ACA parasagittal and anterior, PCA occipital, MCA the lateral rest and the
  basal ganglia; their borders wander (watershed zones differ between people).
- Confounders no label marks: old (chronic) infarcts, hypodense with almost no flow, and leukoaraiosis,
  periventricular white matter of lower density and flow (documentation/explanation/phantom.md).
- Partial volume: a voxel's tissue fraction, lower where it touches CSF (sulci, ventricles, surface).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from isles_pipeline.phantom.fields import smooth_field, voxel_sigma

AIR, SKULL, CSF, GREY, WHITE, DEEP_GREY, OLD_INFARCT, LEUKOARAIOSIS = 0, 1, 2, 3, 4, 5, 6, 7
ACA, MCA, PCA = 1, 2, 3
TERRITORY_NAMES = {ACA: "ACA", MCA: "MCA", PCA: "PCA"}


@dataclass(frozen=True)
class HeadShape:
    """Per-patient constants of the head (mm) and its chronic lesions."""

    semi_axis_lr: float
    semi_axis_ap: float
    skull_mm: float
    cortex_mm: float
    sulcal_depth_mm: float
    centre_shift: tuple[float, float]
    old_infarcts: tuple[tuple[float, float, float, float], ...]  # (x, y, z, radius) mm
    leukoaraiosis: float  # 0 none .. 1 severe

    @staticmethod
    def draw(rng: np.random.Generator) -> "HeadShape":
        num_old = int(rng.choice([0, 1, 2], p=[0.7, 0.2, 0.1]))
        old = []
        for _ in range(num_old):
            side = rng.choice([-1.0, 1.0])
            old.append((float(side * rng.uniform(15, 50)), float(rng.uniform(-60, 50)), float(rng.uniform(-10, 50)),
                        float(rng.uniform(4, 12))))
        return HeadShape(
            semi_axis_lr=float(rng.uniform(66, 76)),
            semi_axis_ap=float(rng.uniform(82, 94)),
            skull_mm=float(rng.uniform(5, 8)),
            cortex_mm=float(rng.uniform(2.5, 3.5)),
            sulcal_depth_mm=float(rng.uniform(10, 16)),
            centre_shift=(float(rng.uniform(-5, 5)), float(rng.uniform(-5, 5))),
            old_infarcts=tuple(old),
            leukoaraiosis=float(rng.uniform(0.3, 1.0)) if rng.random() < 0.4 else 0.0,
        )


@dataclass
class Anatomy:
    labels: np.ndarray  # uint8 tissue classes
    tissue_fraction: np.ndarray  # float32 0..1 parenchyma per voxel (partial volume)
    territory: np.ndarray  # uint8 ACA / MCA / PCA, 0 outside the brain
    hemisphere: np.ndarray  # int8 -1 right-of-image x < 0, +1 x > 0
    artery: np.ndarray  # float32 arterial partial-volume fraction
    vein: np.ndarray  # bool
    brain: np.ndarray  # bool, inside the inner skull table
    skull_distance_mm: np.ndarray  # float32 distance to the skull (beam hardening)


def in_plane_box(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    """Rows and columns holding `mask` (Z, Y, X) in any slice, widened by `margin` voxels; the whole plane
    when the mask is empty. Work confined to it (noise, distances, shifts) skips the air around the head."""
    rows, cols = np.flatnonzero(mask.any(axis=(0, 2))), np.flatnonzero(mask.any(axis=(0, 1)))
    if not len(rows):
        return slice(0, mask.shape[1]), slice(0, mask.shape[2])
    return (slice(max(int(rows[0]) - margin, 0), min(int(rows[-1]) + margin + 1, mask.shape[1])),
            slice(max(int(cols[0]) - margin, 0), min(int(cols[-1]) + margin + 1, mask.shape[2])))


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


def _territories(rng, x, y, shape, spacing) -> np.ndarray:
    """ACA: parasagittal band and frontal pole; PCA: occipital; MCA: the rest (lateral, basal ganglia)."""
    wander = 5.0 * smooth_field(rng, shape, voxel_sigma(10, spacing))
    ax = np.abs(x) + wander
    territory = np.full(shape, MCA, np.uint8)
    territory[(ax < 17 + 0.08 * (y + 40)) & (y > -45)] = ACA
    territory[(y + wander < -52 + 0.35 * ax) | ((y < -40) & (ax < 18))] = PCA
    return territory


def build_anatomy(rng, head: HeadShape, shape_zyx, spacing_zyx, z_offset_mm: float) -> Anatomy:
    z, y, x = physical_grid(shape_zyx, spacing_zyx, z_offset_mm)
    x = x - head.centre_shift[0]
    y = y - head.centre_shift[1]
    taper = np.sqrt(np.clip(1 - (z / 120.0) ** 2, 0.3, 1))  # the head narrows away from its widest plane
    a, b = head.semi_axis_lr * taper, head.semi_axis_ap * taper
    wobble = 0.012 * smooth_field(rng, x.shape, voxel_sigma(12, spacing_zyx))
    radius = np.sqrt((x / a) ** 2 + (y / b) ** 2) + wobble
    mm_per_unit = np.minimum(a, b)
    depth_mm = (1 - radius) * mm_per_unit  # distance below the inner skull table, roughly

    labels = np.full(x.shape, AIR, np.uint8)
    labels[radius < 1 + head.skull_mm / mm_per_unit] = SKULL
    labels[radius < 1] = CSF
    brain_surface = depth_mm > 2.5
    # Sulci: the zero set of a smooth field (a net of thin clefts), as deep as the sulcal depth.
    folding = smooth_field(rng, x.shape, voxel_sigma(3.5, spacing_zyx))
    local_depth = head.sulcal_depth_mm * (1 + 0.3 * smooth_field(rng, x.shape, voxel_sigma(8, spacing_zyx)))
    sulci = (np.abs(folding) < 0.09) & (depth_mm < local_depth)
    parenchyma = brain_surface & ~sulci
    parenchyma[brain_surface & (np.abs(x) < 1.0) & (y > 5)] = False  # interhemispheric fissure
    # distance within each slice (slices are thicker than the cortex)
    # (on the parenchyma's box plus a ring of non-parenchyma: the nearest non-parenchyma voxel is always in it)
    rows, cols = in_plane_box(parenchyma, 1)
    csf_near = np.zeros(parenchyma.shape)
    csf_near[:, rows, cols] = ndimage.distance_transform_edt(parenchyma[:, rows, cols],
                                                             sampling=(1e4,) + tuple(spacing_zyx[1:]))
    labels[parenchyma] = WHITE
    labels[parenchyma & (csf_near < head.cortex_mm + 0.5 * spacing_zyx[1])] = GREY
    for side in (-1, 1):
        deep = ((x - side * 22) / 10) ** 2 + ((y - 4) / 16) ** 2 + (z / 30) ** 2 < 1
        labels[parenchyma & deep] = DEEP_GREY
        ventricle = ((x - side * 7) / 5) ** 2 + ((y + 4) / 22) ** 2 + (z / 25) ** 2 < 1
        labels[brain_surface & ventricle] = CSF
    if head.leukoaraiosis > 0:  # periventricular caps and patches of white matter
        near_ventricle = np.hypot(np.abs(x) - 7, (y + 4) / 2.5) < 14 + 10 * head.leukoaraiosis
        patches = smooth_field(rng, x.shape, voxel_sigma(5, spacing_zyx)) > 1.2 - 0.8 * head.leukoaraiosis
        labels[(labels == WHITE) & near_ventricle & patches] = LEUKOARAIOSIS
    for ox, oy, oz, r in head.old_infarcts:  # encephalomalacia: irregular, cortex and white matter
        rough = 0.25 * smooth_field(rng, x.shape, voxel_sigma(4, spacing_zyx))
        blob = np.sqrt((x - ox) ** 2 + (y - oy) ** 2 + (z - oz) ** 2) / r + rough < 1
        labels[blob & parenchyma] = OLD_INFARCT

    # Partial volume: blur the parenchyma indicator by a fraction of a voxel in-plane and across the slab.
    fraction = ndimage.gaussian_filter((labels >= GREY).astype(np.float32), (0.35, 0.45, 0.45))
    fraction = np.where(labels >= GREY, np.maximum(fraction, 0.55), np.minimum(fraction, 0.45) * (labels == CSF))

    territory = np.where(labels >= GREY, _territories(rng, x, y, x.shape, spacing_zyx), 0).astype(np.uint8)
    artery = np.zeros(x.shape, np.float32)
    for segment in (((0, 8), (0, 60)), ((-8, 6), (-50, 2)), ((8, 6), (50, 2))):  # ACA, left and right MCA
        distance = _segment_distance(x, y, *segment)
        artery = np.maximum(artery, np.clip(1.6 - distance, 0, 1))
    # the main trunks near the circle of Willis, narrower branches (partial volume) above and below it
    artery *= np.where(np.abs(z) < 25, 1.0, 0.6) * (radius < 1)
    vein = (np.hypot(x, (y + b - 9) * 1.0) < 4.0) & (radius < 1)  # superior sagittal sinus, posterior
    skull_distance = np.maximum(depth_mm, 0).astype(np.float32)
    return Anatomy(labels, fraction.astype(np.float32), territory, np.where(x < 0, -1, 1).astype(np.int8),
                   artery, vein, radius < 1, skull_distance)
