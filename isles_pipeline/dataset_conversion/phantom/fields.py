"""Smooth random fields: the one source of irregularity (boundaries, textures, correlated noise)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma_voxels) -> np.ndarray:
    """White noise blurred by a Gaussian and rescaled to zero mean, unit standard deviation (float32)."""
    field = rng.standard_normal(shape, dtype=np.float32)
    field = ndimage.gaussian_filter(field, sigma_voxels, mode="wrap")
    std = float(field.std())
    return (field - field.mean()) / (std if std > 0 else 1.0)


def voxel_sigma(sigma_mm: float, spacing_zyx: tuple[float, float, float]) -> tuple[float, ...]:
    """A physical blur width expressed per axis in voxels (thick slices get little blur across z)."""
    return tuple(sigma_mm / s for s in spacing_zyx)
