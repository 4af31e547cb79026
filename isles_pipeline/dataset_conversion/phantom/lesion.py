"""The stroke: a perfusion core inside a penumbra, and a DWI lesion that is not exactly the core.

Per DESIGN section 4 the ground truth (OT) is the DWI lesion: its boundary is perturbed, part of the
perfusion core may be spared on DWI and part of the DWI lesion may be invisible on perfusion, so that a
perfusion threshold scores a Dice near the challenge's 0.30 and the task is neither trivial nor hopeless.
In ISLES 2018 the DWI followed the CTP by up to a few hours, so the infarct also grows from the core into
the penumbra: `growth_mm` is how far, a learnable relation between the maps and the label that a
threshold cannot capture.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .fields import smooth_field, voxel_sigma


@dataclass(frozen=True)
class Stroke:
    """Per-patient lesion geometry (mm, head coordinates) and severity."""

    kind: str  # "none", "small" or "territorial"
    centre: tuple[float, float, float]  # x, y, z
    penumbra_radii: tuple[float, float, float]
    core_fraction: float
    core_offset: tuple[float, float]
    spared_fraction: float
    invisible_blob: bool
    growth_mm: float
    misregistration_mm: tuple[float, float]

    @staticmethod
    def draw(rng: np.random.Generator, z_range_mm: tuple[float, float]) -> "Stroke":
        kind = rng.choice(["none", "small", "territorial"], p=[0.04, 0.16, 0.8])
        side = rng.choice([-1.0, 1.0])
        z = float(rng.uniform(*z_range_mm))
        if kind == "small":
            radii = tuple(float(v) for v in rng.uniform([7, 7, 6], [13, 13, 12]))
            centre = (side * float(rng.uniform(15, 40)), float(rng.uniform(-40, 40)), z)
        else:
            radii = tuple(float(v) for v in rng.uniform([18, 22, 15], [32, 40, 35]))
            centre = (side * float(rng.uniform(28, 42)), float(rng.uniform(-15, 25)), z)
        return Stroke(
            kind=str(kind),
            centre=centre,
            penumbra_radii=radii,
            core_fraction=float(rng.uniform(0.35, 0.7)),
            core_offset=(float(rng.uniform(-0.25, 0.25)), float(rng.uniform(-0.25, 0.25))),
            spared_fraction=float(rng.uniform(0.0, 0.45)) if rng.random() < 0.8 else 0.0,
            invisible_blob=bool(rng.random() < 0.5),
            growth_mm=float(rng.uniform(5.0, 22.0)),
            misregistration_mm=(float(rng.uniform(-3, 3)), float(rng.uniform(-3, 3))),
        )


def _blob(rng, x, y, z, centre, radii, roughness, spacing_zyx) -> np.ndarray:
    distance = np.sqrt(
        ((x - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 + ((z - centre[2]) / radii[2]) ** 2
    )
    return distance + roughness * smooth_field(rng, x.shape, voxel_sigma(6, spacing_zyx)) < 1


def _signed_distance_mm(mask: np.ndarray, spacing_zyx) -> np.ndarray:
    """Negative inside, positive outside (mm)."""
    if not mask.any():
        return np.full(mask.shape, 1e3, np.float32)
    outside = ndimage.distance_transform_edt(~mask, sampling=spacing_zyx)
    inside = ndimage.distance_transform_edt(mask, sampling=spacing_zyx)
    return (outside - inside).astype(np.float32)


def build_lesion(rng, stroke: Stroke, coords, brain: np.ndarray, spacing_zyx):
    """Masks (penumbra, core, dwi_lesion) restricted to brain tissue for one slab."""
    z, y, x = coords
    empty = np.zeros(brain.shape, bool)
    if stroke.kind == "none":
        return empty, empty.copy(), empty.copy()
    radii = np.array(stroke.penumbra_radii)
    penumbra = _blob(rng, x, y, z, stroke.centre, radii, 0.18, spacing_zyx) & brain
    core_centre = (
        stroke.centre[0] + stroke.core_offset[0] * radii[0],
        stroke.centre[1] + stroke.core_offset[1] * radii[1],
        stroke.centre[2],
    )
    core = _blob(rng, x, y, z, core_centre, radii * stroke.core_fraction, 0.25, spacing_zyx) & penumbra

    # DWI lesion: the core grown into the penumbra, with a perturbed boundary ...
    roughness_mm = 2.5 * smooth_field(rng, brain.shape, voxel_sigma(4, spacing_zyx))
    core_distance = _signed_distance_mm(core, spacing_zyx)
    dwi = (core_distance + roughness_mm < stroke.growth_mm) & (penumbra | (core_distance < 2.0)) & brain
    # ... part of the perfusion core spared (reperfused or not yet diffusion-restricted) ...
    if stroke.spared_fraction > 0 and core.any():
        spared_radii = radii * stroke.core_fraction * stroke.spared_fraction * 1.6
        edge = (stroke.centre[0] + np.sign(stroke.centre[0]) * 0.3 * radii[0], core_centre[1], core_centre[2])
        dwi &= ~_blob(rng, x, y, z, edge, spared_radii, 0.2, spacing_zyx)
    # ... and a part that perfusion does not show (a second embolic territory, small and reperfused).
    if stroke.invisible_blob:
        offset = rng.uniform(-1, 1, size=2) * radii[:2] * 0.8
        centre = (stroke.centre[0] + offset[0], stroke.centre[1] + offset[1], stroke.centre[2])
        dwi |= _blob(rng, x, y, z, centre, radii * rng.uniform(0.15, 0.3), 0.2, spacing_zyx) & brain
    # MR and CT are registered with an error of a few millimetres in-plane.
    shift_voxels = (0.0, stroke.misregistration_mm[1] / spacing_zyx[1], stroke.misregistration_mm[0] / spacing_zyx[2])
    dwi = (ndimage.shift(dwi.astype(np.float32), shift_voxels, order=1) > 0.5) & brain
    return penumbra, core, dwi
