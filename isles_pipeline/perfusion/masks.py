"""Which voxels get perfusion values: brain parenchyma only, as in the ISLES 2018 maps.

From the pre-contrast baseline image (HU, denoised): bone is >= BONE_HU; the intracranial space is what the
skull encloses in each slice (holes filled), or, in a slice where the skull ring is open or absent, the soft
tissue not connected to the slice border; CSF (and air) are below CSF_HU; a margin of BONE_MARGIN_MM around
bone is dropped (partial volume and beam hardening). Vessels are recognised after deconvolution by their
blood volume (CBV >= VESSEL_CBV, ml/100g: parenchyma stays below ~8, a voxel holding an artery or vein far
above) and set to zero with the rest, as the ISLES maps show them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

BONE_HU = 150.0
CSF_HU = 20.0
SOFT_TISSUE_MAX_HU = 100.0
BONE_MARGIN_MM = 2.0
VESSEL_CBV = 8.0


@dataclass
class TissueMasks:
    bone: np.ndarray
    intracranial: np.ndarray
    csf: np.ndarray
    brain: np.ndarray  # parenchyma where maps are computed (vessels not yet removed)
    vessels: np.ndarray | None = None

    @property
    def valid(self) -> np.ndarray:
        """Voxels whose map values are reported (parenchyma without vessels)."""
        return self.brain if self.vessels is None else self.brain & ~self.vessels


def _margin_structure(spacing_zyx, margin_mm: float) -> np.ndarray:
    radius = [int(np.ceil(margin_mm / s)) for s in spacing_zyx[1:]]
    yy, xx = np.mgrid[-radius[0]: radius[0] + 1, -radius[1]: radius[1] + 1]
    disc = (yy * spacing_zyx[1]) ** 2 + (xx * spacing_zyx[2]) ** 2 <= margin_mm**2
    return disc[None]


def intracranial_space(baseline_hu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bone, intracranial) boolean masks from a (Z, Y, X) baseline image."""
    bone = baseline_hu >= BONE_HU
    inside = np.zeros_like(bone)
    for z in range(bone.shape[0]):
        filled = ndimage.binary_fill_holes(bone[z]) & ~bone[z]
        if not filled.any():  # open or absent skull: soft tissue not touching the border
            soft = (baseline_hu[z] >= CSF_HU) & (baseline_hu[z] < BONE_HU)
            labels, _ = ndimage.label(soft)
            border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
            filled = soft & ~np.isin(labels, border[border > 0])
            if not filled.any():
                filled = soft
        inside[z] = filled
    return bone, inside


def tissue_masks(baseline_hu: np.ndarray, spacing_zyx) -> TissueMasks:
    bone, inside = intracranial_space(baseline_hu)
    near_bone = ndimage.binary_dilation(bone, _margin_structure(spacing_zyx, BONE_MARGIN_MM))
    csf = inside & (baseline_hu < CSF_HU)
    brain = inside & ~near_bone & (baseline_hu >= CSF_HU) & (baseline_hu < SOFT_TISSUE_MAX_HU)
    return TissueMasks(bone, inside, csf, brain)


def vessel_mask(cbv: np.ndarray, brain: np.ndarray) -> np.ndarray:
    return brain & (cbv >= VESSEL_CBV)
