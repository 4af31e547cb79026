"""TEMPORARY: the minimum deconvolution the phantom's vendors need, until `isles_pipeline.perfusion` lands.

(The perfusion engine is being written on another branch; this module is to be replaced by calls into it.)
Model: C(t) = (rho/kH) CBF dt sum_j AIF(t_j) R(t - t_j); the deconvolved b(t) = (rho/kH) CBF R(t).
- "ssvd": lower-triangular (causal) convolution matrix, truncated SVD (Ostergaard et al., MRM 1996):
  delay-sensitive, a late bolus lowers CBF.
- "bcsvd": block-circulant matrix over 2T samples (Wu et al., MRM 2003): delay-insensitive. A circulant
  matrix is diagonalised by the DFT and its singular values are the moduli of the AIF's DFT, so truncating
  them is filtering in frequency: computed with FFTs, O(T log T) per voxel instead of O(T^2).
- "osvd": bcSVD with, per voxel, the smallest truncation whose residue oscillation index stays below a limit.
"""
from __future__ import annotations

import numpy as np

RHO_OVER_KH = 1.05 / 0.73
OSCILLATION_LIMIT = 0.035
OSVD_FRACTIONS = (1.0, 0.5, 0.25, 0.1)


def _ssvd(curves, aif, dt, threshold):
    n = len(aif)
    index = np.arange(n)[:, None] - np.arange(n)[None, :]
    matrix = np.where(index >= 0, aif[np.clip(index, 0, None)], 0.0) * dt
    u, s, vt = np.linalg.svd(matrix)
    inverse_s = np.where(s > threshold * s.max(), 1.0 / np.maximum(s, 1e-12), 0.0)
    pseudo_inverse = (vt.T * inverse_s) @ u.T
    return (pseudo_inverse.astype(np.float32) @ curves.astype(np.float32))


def _oscillation(residue):
    second = np.abs(np.diff(residue, n=2, axis=0)).sum(axis=0)
    return second / (len(residue) * np.maximum(residue.max(axis=0), 1e-6))


def _circulant(curves, aif, dt, threshold, adaptive):
    n = len(aif)
    length = 2 * n
    spectrum = np.fft.rfft(aif * dt, length)
    modulus = np.abs(spectrum)
    curves_spectrum = np.fft.rfft(curves.astype(np.float32), length, axis=0)
    if not adaptive:
        keep = modulus > threshold * modulus.max()
        inverse = np.where(keep, 1.0 / np.where(keep, spectrum, 1.0), 0.0)
        return np.fft.irfft(curves_spectrum * inverse[:, None].astype(np.complex64), length, axis=0)[:n].astype(np.float32)
    best = None
    for fraction in OSVD_FRACTIONS:  # from the strongest truncation to the weakest; keep the last that is smooth
        keep = modulus > threshold * fraction * modulus.max()
        inverse = np.where(keep, 1.0 / np.where(keep, spectrum, 1.0), 0.0)
        residue = np.fft.irfft(curves_spectrum * inverse[:, None].astype(np.complex64), length, axis=0)[:n]
        residue = residue.astype(np.float32)
        if best is None:
            best = residue
            continue
        smooth = _oscillation(residue) < OSCILLATION_LIMIT
        best[:, smooth] = residue[:, smooth]
    return best


def deconvolve(curves: np.ndarray, aif: np.ndarray, dt: float, method: str, threshold: float) -> np.ndarray:
    """Residue b(t) (T, N) of concentration curves (T, N) given the AIF (T,), frames dt seconds apart."""
    aif = np.asarray(aif, np.float64)
    if method == "ssvd":
        return _ssvd(curves, aif, dt, threshold)
    if method in ("bcsvd", "osvd"):
        return _circulant(curves, aif, dt, threshold, adaptive=method == "osvd")
    raise ValueError(f"unknown deconvolution {method!r}")
