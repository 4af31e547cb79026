"""A plain textbook deconvolution, the floor any engine must beat: block-circulant SVD with one fixed
truncation (Wu et al., MRM 2003, without the oscillation index), no denoising, a given AIF, rectangle-rule
convolution matrix, CBF = max of the residue, Tmax = its sample position, CBV = area ratio.

Why here and not in the package: it is a yardstick written independently of the engine's code, so a shared
mistake cannot make both look right.
"""
from __future__ import annotations

import numpy as np

RHO, K_H = 1.05, 0.73
DEFAULT_THRESHOLD = 0.1  # fraction of the largest singular value


def plain_maps(series: np.ndarray, frame_s: float, aif: np.ndarray, baseline_frames: int,
               threshold: float = DEFAULT_THRESHOLD) -> dict[str, np.ndarray]:
    """cbf (ml/100g/min), cbv (ml/100g), mtt, tmax (s) of a (T, Z, Y, X) HU series on uniform frames."""
    frames = series.shape[0]
    curves = series.reshape(frames, -1).astype(np.float32)
    curves = curves - curves[:baseline_frames].mean(axis=0)
    length = 2 * frames
    padded = np.zeros(length)
    padded[:frames] = aif
    lag = np.subtract.outer(np.arange(length), np.arange(length)) % length
    matrix = frame_s * padded[lag]
    u, s, vt = np.linalg.svd(matrix)
    inverse = np.where(s >= threshold * s[0], 1.0 / s, 0.0)
    pseudo = (vt.T * inverse) @ u.T[:, :frames]  # (2N, N): the zero padding's columns never matter
    residues = pseudo.astype(np.float32) @ curves
    peak = residues.max(axis=0)
    position = residues.argmax(axis=0)
    shape = series.shape[1:]
    cbf = K_H / RHO * 6000.0 * np.clip(peak, 0, None)
    cbv = K_H / RHO * 100.0 * curves.sum(axis=0) / aif.sum()
    tmax = np.where(position < frames, position, 0) * frame_s  # the wrapped half: tissue before the AIF
    mtt = np.where(cbf > 1e-3, 60.0 * cbv / np.maximum(cbf, 1e-3), 0.0)
    return {k: v.reshape(shape).astype(np.float32) for k, v in
            {"cbf": cbf, "cbv": cbv, "mtt": mtt, "tmax": tmax}.items()}
