"""Perfusion maps as a vendor's deconvolution software would deliver them.

Deconvolution of noisy curves blurs the maps, adds noise that grows with the scan noise, underestimates
flow when the bolus arrives late (delay-sensitive SVD), lengthens Tmax by dispersion, and masks out CSF
and the skull. The ISLES 2018 dtypes: CBF and CBV uint16, MTT and Tmax float64.
Phantom units: CBF in ml/100g/min, CBV in 0.1 ml/100g (x10, so that uint16 keeps a decimal), MTT and
Tmax in seconds.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .fields import smooth_field, voxel_sigma

CBV_STORAGE_SCALE = 10.0


def degrade_maps(rng, truth: dict[str, np.ndarray], tissue: np.ndarray, vessels: np.ndarray,
                 noise_sd_hu: float, spacing_zyx) -> dict[str, np.ndarray]:
    """Vendor-like CBF, CBV, MTT, Tmax from the true parameter maps."""
    blur = voxel_sigma(1.6, spacing_zyx)
    relative_noise = 0.08 + 0.015 * noise_sd_hu  # 15 % at 5 HU scan noise, 45 % at 25 HU

    def noisy(values):
        texture = smooth_field(rng, tissue.shape, voxel_sigma(1.0, spacing_zyx))
        return ndimage.gaussian_filter(values, blur) * (1 + relative_noise * texture)

    delay_bias = np.clip(1 - 0.025 * truth["delay"], 0.6, 1)
    cbf = noisy(truth["cbf"] * delay_bias)
    cbv = noisy(truth["cbv"])
    cbf = np.where(vessels, 120 + 60 * rng.random(tissue.shape), cbf)
    cbv = np.where(vessels, 15 + 20 * rng.random(tissue.shape), cbv)
    cbf = np.clip(cbf, 0, None) * tissue
    cbv = np.clip(cbv, 0, None) * tissue
    mtt = np.where(cbf > 0.5, 60.0 * cbv / np.maximum(cbf, 0.5), 0.0)
    mtt = np.clip(mtt, 0, 30) * tissue
    dispersion = 0.08 * truth["delay"]  # a late bolus is also a dispersed one
    tmax = ndimage.gaussian_filter(truth["tmax"], blur) + dispersion
    tmax = np.clip(tmax + (0.4 + 0.03 * noise_sd_hu) * smooth_field(rng, tissue.shape, blur), 0, None) * tissue
    return {
        "CT_CBF": np.round(cbf).astype(np.uint16),
        "CT_CBV": np.round(cbv * CBV_STORAGE_SCALE).astype(np.uint16),
        "CT_MTT": mtt.astype(np.float64),
        "CT_Tmax": tmax.astype(np.float64),
    }
