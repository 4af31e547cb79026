"""Where the parenchyma Gaussian may smooth: a weight per voxel from how far its smoothed curve would move.

Why: a fixed Gaussian of 4 mm erased structures smaller than itself (a 4 mm block of rCBF 0.08 read 0.87 at
5 HU on the block phantom, and the blocks' CBF correlation fell from 0.88 to 0.59) while it is what makes the
anatomical phantom's maps good (Spearman CBF 0.62 against 0.51 without it). The rule is the two-scale case of
the intersection-of-confidence-intervals test (Katkovnik, Signal Processing 1999): a voxel takes the kernel's
estimate only while that estimate stays within the noise of its own. The test runs on two features of the
curves, the mean (CBV-like) and the peak (CBF-like) enhancement, whose noise is several times lower than one
frame's; each feature's noise scale is the robust spread (1.4826 MAD) of the same shift over the whole
parenchyma, which is mostly homogeneous tissue: no noise model, a scale that follows the data.
"""
from __future__ import annotations

from concurrent.futures import Executor

import numpy as np

from isles_pipeline.perfusion import numpy_kernels

FULL_BELOW = 2.0  # mean squared z-score of the feature shift (homogeneous tissue: ~1) below which: all smoothing
NONE_ABOVE = 4.0  # ... above which: none (linear in between)


def time_features(curves: np.ndarray, baseline_count: int) -> np.ndarray:
    """(2, Z, Y, X): the mean enhancement after the baseline (CBV-like) and the peak enhancement (CBF-like)
    of the (N, Z, Y, X) curves: an edge of either is an edge the maps would blur."""
    post = curves[min(baseline_count, curves.shape[0] - 1):]
    return np.stack([post.mean(axis=0), post.max(axis=0)])


def smoothing_weight(curves: np.ndarray, mask: np.ndarray, sigma_mm: float, pixel_mm: tuple[float, float],
                     baseline_count: int, pool: Executor | None = None) -> np.ndarray:
    """(Z, Y, X) float32 in [0, 1]: how much of the masked Gaussian's estimate each voxel takes (1 in
    homogeneous tissue, 0 within the kernel's reach of an edge the features see; 0 outside `mask`).
    pool: threads to spread the slices over."""
    features = time_features(curves, baseline_count)
    smoothed = features.copy()
    list((pool.map if pool is not None else map)(
        lambda z: numpy_kernels.masked_gaussian(smoothed[:, z], mask[z], sigma_mm, pixel_mm),
        range(features.shape[1])))
    shift = (smoothed - features)[:, mask]  # (F, voxels)
    weight = np.zeros(mask.shape, np.float32)
    if shift.shape[1]:
        scale = 1.4826 * np.median(np.abs(shift), axis=1)
        z2 = np.mean(np.square(shift / np.maximum(scale, 1e-6)[:, None]), axis=0)
        weight[mask] = np.clip((NONE_ABOVE - z2) / (NONE_ABOVE - FULL_BELOW), 0.0, 1.0)
    return weight
