"""Perfusion parameters from residues and curves (indicator-dilution theory, Ostergaard et al. 1996).

The tissue curve is C = (rho / kH) CBF (AIF conv R) with R(0) = 1, so the deconvolved k = (rho / kH) CBF R:
- CBF = (kH / rho) max k, ml/100g/min (k in 1/s: x 6000);
- CBV = (kH / rho) area(C) / area(AIF), ml/100g (x 100);
- MTT = CBV / CBF (central volume theorem), s;
- Tmax = time of the maximum of k (s), between grid points (`flow_and_tmax`); a maximum in the wrapped
  second half of a circulant solution (tissue earlier than the AIF) is a negative delay and clipped to 0.
  Regularisation smooths the jump of an undispersed residue, which moves its maximum ~0.9 s later at 1 s
  frames; with the dispersion real boluses have, the estimate is within one frame of the true maximum;
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
TMAX_UPSAMPLING = 4


def flow_and_tmax(residues: torch.Tensor, step_s: float, num_frames: int,
                  upsample: int = TMAX_UPSAMPLING) -> tuple[np.ndarray, np.ndarray]:
    """CBF (ml/100g/min) and Tmax (s) of (L, V) residues.

    CBF is the largest sample. Tmax is located on the residue's trigonometric interpolant (the periodic
    signal a circulant solution is), sampled `upsample` times finer than the grid by zero-padding its
    spectrum: a frame-quantised Tmax would be as coarse as the frames.
    """
    peak = residues.amax(dim=0)
    length = residues.shape[0]
    fine = torch.fft.irfft(torch.fft.rfft(residues, dim=0), n=length * upsample, dim=0)
    position = fine.argmax(dim=0).to(residues.dtype) / upsample
    position = torch.where(position >= min(num_frames, length), position - length, position)
    tmax = (position.clamp_min(0) * step_s).cpu().numpy()
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
