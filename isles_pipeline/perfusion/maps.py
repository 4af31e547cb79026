"""Perfusion parameters from residues and curves (indicator-dilution theory, Ostergaard et al. 1996).

The tissue curve is C = (rho / kH) CBF (AIF conv R) with R(0) = 1, so the deconvolved k = (rho / kH) CBF R:
- CBF = (kH / rho) max k, ml/100g/min (k in 1/s: x 6000);
- CBV = (kH / rho) area(C) / area(AIF), ml/100g (x 100);
- MTT = CBV / CBF (central volume theorem), s;
- Tmax = time of the maximum of k (s), less the shift of that maximum the regularisation itself causes
  (measured per level by the deconvolver on a reference curve); a maximum in the wrapped second half of a
  circulant solution (tissue earlier than the AIF) is a negative delay and clipped to 0;
- TTP = time of the tissue curve's maximum, s from the first frame.
rho = 1.05 g/ml (brain density) and kH = 0.73 (large/small vessel haematocrit correction), as the phantom.
"""
from __future__ import annotations

import numpy as np
import torch

RHO = 1.05
K_H = 0.73
ML_PER_G_PER_S_TO_ML_PER_100G_PER_MIN = 6000.0
MAP_NAMES = ("cbf", "cbv", "mtt", "tmax", "ttp")


def flow_and_tmax(residues: torch.Tensor, step_s: float, num_frames: int,
                  peak_bias_s: torch.Tensor | np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """CBF (ml/100g/min) and Tmax (s) of (L, V) residues; `peak_bias_s` (per voxel or one value) is the
    regularisation's shift of the maximum (`Deconvolver.peak_bias_s`), subtracted from Tmax."""
    peak, index = residues.max(dim=0)
    length = residues.shape[0]
    position = torch.where(index >= min(num_frames, length), index - length, index).to(residues.dtype)
    bias = torch.as_tensor(peak_bias_s, dtype=residues.dtype, device=residues.device)
    tmax = (position * step_s - bias).clamp_min(0).cpu().numpy()
    cbf = (K_H / RHO * ML_PER_G_PER_S_TO_ML_PER_100G_PER_MIN * peak.clamp_min(0)).cpu().numpy()
    return cbf.astype(np.float32), tmax.astype(np.float32)


def blood_volume(curves: np.ndarray, aif: np.ndarray) -> np.ndarray:
    """CBV (ml/100g) of (N, V) curves against the AIF used (both on one uniform grid); a negative area
    (noise in a voxel without flow) is 0."""
    area = np.clip(curves.sum(axis=0), 0, None)
    return (K_H / RHO * 100.0 * area / max(float(aif.sum()), 1e-12)).astype(np.float32)


def transit_time(cbv: np.ndarray, cbf: np.ndarray) -> np.ndarray:
    """MTT = 60 CBV / CBF, s; 0 where there is no flow."""
    return np.where((cbf > 1e-3) & (cbv > 0), 60.0 * cbv / np.maximum(cbf, 1e-3), 0.0).astype(np.float32)


def time_to_peak(curves: np.ndarray, grid_s: np.ndarray) -> np.ndarray:
    return (grid_s[np.argmax(curves, axis=0)] - grid_s[0]).astype(np.float32)
