"""Edge-preserving spatial denoising of CTP frames (in-plane, never along time).

A bilateral filter whose range term compares whole time-intensity profiles (TIPS, Mendrik et al., IEEE TMI
2011): two neighbours are averaged when their curves agree within the noise, so tissue is smoothed while
edges between grey matter, CSF, vessels and bone, which differ over many frames, are kept. The weights are
the same for every frame, so each frame is a weighted average of its own neighbours: time is not blurred
and the bolus timing (Tmax) is untouched. Slices are filtered independently (CTP slices are 5 to 12 mm thick).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_RADIUS_PX = 2
DEFAULT_SPATIAL_SIGMA_MM = 1.5


def estimate_noise_sd(baseline_frames: np.ndarray, mask: np.ndarray) -> float:
    """Per-frame noise SD (HU) from the scatter of the baseline frames (count, Z, Y, X) inside `mask`
    (median over voxels, so vessels and edges do not inflate it)."""
    if baseline_frames.shape[0] < 2 or not mask.any():
        return 0.0
    return float(np.median(baseline_frames[:, mask].std(axis=0, ddof=1)))


def _pair_slices(offset: int, size: int) -> tuple[slice, slice]:
    """Slices of the voxels x and of their neighbours x + offset that both lie inside an axis of `size`."""
    return slice(max(0, -offset), size - max(0, offset)), slice(max(0, offset), size + min(0, offset))


def profile_bilateral(frames: torch.Tensor, noise_sd: float, pixel_mm: tuple[float, float],
                      radius_px: int = DEFAULT_RADIUS_PX, spatial_sigma_mm: float = DEFAULT_SPATIAL_SIGMA_MM,
                      range_scale: float = 1.0) -> torch.Tensor:
    """Filter one slice's frames (T, Y, X) with the profile bilateral filter; returns a new tensor.

    The range weight is exp(-d^2 / (4 range_scale sigma^2)), d^2 the mean squared difference of the two
    profiles, sigma the noise SD: identical tissue (d^2 ~ 2 sigma^2) weighs exp(-1/2), an edge of one noise
    SD over all frames less than half of that. `noise_sd` <= 0 turns the filter off. The weight of a pair
    is symmetric, so each is computed once and used for both voxels (half the work).
    """
    if noise_sd <= 0 or radius_px < 1:
        return frames.clone()
    count, height, width = frames.shape
    range_denominator = 4.0 * range_scale * noise_sd**2 * count
    total = frames.clone()
    weight_sum = torch.ones((height, width), dtype=frames.dtype, device=frames.device)
    for dy in range(0, radius_px + 1):
        for dx in range(-radius_px, radius_px + 1):
            if dy == 0 and dx <= 0:
                continue  # each unordered pair once; (0, 0) is the voxel itself
            spatial = ((dy * pixel_mm[0]) ** 2 + (dx * pixel_mm[1]) ** 2) / (2 * spatial_sigma_mm**2)
            if spatial > 4.5:  # beyond 3 sigma
                continue
            (ys, yn), (xs, xn) = _pair_slices(dy, height), _pair_slices(dx, width)
            here, there = frames[:, ys, xs], frames[:, yn, xn]
            distance = torch.linalg.vector_norm(here - there, dim=0).square_()
            weight = torch.exp(-distance / range_denominator - spatial)
            total[:, ys, xs].addcmul_(there, weight)
            total[:, yn, xn].addcmul_(here, weight)
            weight_sum[ys, xs] += weight
            weight_sum[yn, xn] += weight
    return total.div_(weight_sum)


def _gaussian_taps(sigma_px: float, device, dtype) -> torch.Tensor:
    radius = max(int(np.ceil(3 * sigma_px)), 1)
    offsets = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    taps = torch.exp(-0.5 * (offsets / sigma_px) ** 2)
    return taps / taps.sum()


def masked_gaussian(curves: torch.Tensor, mask: torch.Tensor, sigma_mm: float,
                    pixel_mm: tuple[float, float]) -> torch.Tensor:
    """In-plane Gaussian smoothing of (N, Y, X) curves restricted to `mask` (Y, X) (normalised convolution:
    smooth(f m) / smooth(m)): parenchyma is averaged with parenchyma only, never with CSF, bone or vessels
    outside the mask, so those edges keep their place. Voxels outside the mask are returned unchanged."""
    if sigma_mm <= 0 or not bool(mask.any()):
        return curves
    weight = mask.to(curves.dtype)
    stack = torch.cat([curves * weight, weight[None]], dim=0)[:, None]  # (N + 1, 1, Y, X)
    for axis, size_mm in ((0, pixel_mm[0]), (1, pixel_mm[1])):
        taps = _gaussian_taps(sigma_mm / size_mm, curves.device, curves.dtype)
        shape = (1, 1, len(taps), 1) if axis == 0 else (1, 1, 1, len(taps))
        padding = (len(taps) // 2, 0) if axis == 0 else (0, len(taps) // 2)
        stack = F.conv2d(stack, taps.reshape(shape), padding=padding)
    smoothed = stack[:-1, 0] / stack[-1, 0].clamp_min(1e-6)
    return torch.where(mask[None], smoothed, curves)
