"""Edge-preserving spatial denoising of CTP frames (in-plane, never along time).

A bilateral filter whose range term compares whole time-intensity profiles (TIPS, Mendrik et al., IEEE TMI
2011): two neighbours are averaged when their curves agree within the noise, so tissue is smoothed while
edges between grey matter, CSF, vessels and bone, which differ over many frames, are kept. The weights are
the same for every frame, so each frame is a weighted average of its own neighbours: time is not blurred
and the bolus timing (Tmax) is untouched. Slices are filtered independently (CTP slices are 5 to 12 mm thick).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:  # imported where used: the CPU engine (numpy_kernels) runs without torch
    import torch

DEFAULT_RADIUS_PX = 2
DEFAULT_SPATIAL_SIGMA_MM = 1.5
PROFILE_BLOCK_FRAMES = 4  # profiles are compared as means of blocks of 4 frames: 4x less work, less noise
CACHE_BLOCK_FRAMES = 4  # on a CPU the weighted sums run over 4 frames at a time, which stay in cache (1.3x)


def estimate_noise_sd(baseline_frames: np.ndarray, mask: np.ndarray) -> float:
    """Per-frame noise SD (HU) from the scatter of the baseline frames (count, Z, Y, X) inside `mask`: the
    median over voxels of their SD (vessels and edges do not inflate it), divided by the median of a sample
    SD of white noise over `count` frames (chi with count - 1 degrees of freedom), which the median of the
    SDs of few frames falls short of: by 11 % with 4 frames, 4 % with 10."""
    from scipy.special import gammaincinv  # scipy.special comes with scipy.ndimage: no extra import

    count = baseline_frames.shape[0]
    if count < 2 or not mask.any():
        return 0.0
    median_sd = float(np.median(baseline_frames[:, mask].std(axis=0, ddof=1)))
    degrees = count - 1
    return median_sd / float(np.sqrt(2.0 * gammaincinv(degrees / 2.0, 0.5) / degrees))


def estimate_noise_sd_from_differences(frames: np.ndarray, mask: np.ndarray,
                                       prepare: Callable[[np.ndarray], np.ndarray] | None = None) -> float:
    """Per-frame noise SD (HU) from the second differences in time of (T, Z, Y, X) frames inside `mask`, for a
    baseline too short to measure the scatter on (a scan started late). White noise gives a second difference
    of SD sqrt(6) sigma; a tissue curve's own curvature is small next to it on most frames, and the median over
    frames and voxels (1.4826 MAD) ignores the few where the bolus bends it. Slice by slice, each a float32
    copy that `prepare` may change in place (the engine bridges moved frames there): `frames` is not copied
    whole and never written."""
    if frames.shape[0] < 3 or not mask.any():
        return 0.0
    second = []
    for z in range(frames.shape[1]):
        if mask[z].any():
            copy = np.array(frames[:, z], np.float32)
            copy = copy if prepare is None else prepare(copy)
            second.append(np.diff(copy[:, mask[z]], n=2, axis=0).ravel())
    return float(1.4826 * np.median(np.abs(np.concatenate(second))) / np.sqrt(6.0))


def neighbour_offsets(radius_px: int, pixel_mm: tuple[float, float],
                      spatial_sigma_mm: float) -> list[tuple[int, int, float]]:
    """(dy, dx, spatial term) of the bilateral's neighbours: each unordered pair of voxels once (dy >= 0, and
    dx > 0 on the voxel's own row), within 3 spatial sigmas; the one neighbourhood both kernels use."""
    offsets = []
    for dy in range(0, radius_px + 1):
        for dx in range(-radius_px, radius_px + 1):
            if dy == 0 and dx <= 0:
                continue  # (0, 0) is the voxel itself
            spatial = ((dy * pixel_mm[0]) ** 2 + (dx * pixel_mm[1]) ** 2) / (2 * spatial_sigma_mm**2)
            if spatial <= 4.5:  # 3 sigma
                offsets.append((dy, dx, spatial))
    return offsets


def _pair_slices(offset: int, size: int) -> tuple[slice, slice]:
    """Slices of the voxels x and of their neighbours x + offset that both lie inside an axis of `size`."""
    return slice(max(0, -offset), size - max(0, offset)), slice(max(0, offset), size + min(0, offset))


def profile_bilateral(frames: torch.Tensor, noise_sd: float, pixel_mm: tuple[float, float],
                      radius_px: int = DEFAULT_RADIUS_PX, spatial_sigma_mm: float = DEFAULT_SPATIAL_SIGMA_MM,
                      range_scale: float = 1.0) -> torch.Tensor:
    """Filter one slice's frames (T, Y, X) with the profile bilateral filter; returns a new tensor.

    Profiles are compared as the means of consecutive blocks of PROFILE_BLOCK_FRAMES frames; d^2 is the
    summed squared difference of those means and the range weight exp(-d^2 / (2 range_scale E)), E the value
    of d^2 that noise alone gives (two voxels of the same tissue), so identical tissue weighs exp(-1/2) and
    an edge of one noise SD over all frames far less. `noise_sd` <= 0 turns the filter off. The weight of a
    pair is symmetric, so each is computed once and used for both voxels (half the work).
    """
    import torch

    if noise_sd <= 0 or radius_px < 1:
        return frames.clone()
    count, height, width = frames.shape
    block = min(PROFILE_BLOCK_FRAMES, count)
    usable = count - count % block
    profiles = frames[:usable].reshape(usable // block, block, height, width).mean(dim=1)
    noise_only = 2.0 * noise_sd**2 / block * profiles.shape[0]
    range_denominator = 2.0 * range_scale * noise_only
    pairs = []  # (slices of x, slices of x + offset, weight of the pair)
    weight_sum = torch.ones((height, width), dtype=frames.dtype, device=frames.device)
    for dy, dx, spatial in neighbour_offsets(radius_px, pixel_mm, spatial_sigma_mm):
        (ys, yn), (xs, xn) = _pair_slices(dy, height), _pair_slices(dx, width)
        distance = (profiles[:, ys, xs] - profiles[:, yn, xn]).square_().sum(dim=0)  # 10x vector_norm's speed
        weight = torch.exp(-distance / range_denominator - spatial)
        weight_sum[ys, xs] += weight
        weight_sum[yn, xn] += weight
        pairs.append(((ys, xs), (yn, xn), weight))
    total = frames.clone()
    step = count if frames.is_cuda else CACHE_BLOCK_FRAMES
    for start in range(0, count, step):
        source, target = frames[start: start + step], total[start: start + step]
        for (ys, xs), (yn, xn), weight in pairs:
            target[:, ys, xs].addcmul_(source[:, yn, xn], weight)
            target[:, yn, xn].addcmul_(source[:, ys, xs], weight)
    return total.div_(weight_sum)


def bounding_box(mask: torch.Tensor | np.ndarray, margin: int = 0) -> tuple[slice, slice] | None:
    """(rows, columns) slices of a 2D mask's bounding box grown by `margin` pixels (clipped to the image);
    None for an empty mask."""
    import torch

    mask = torch.as_tensor(mask)
    rows, columns = (torch.nonzero(mask.any(dim=axis)).flatten() for axis in (1, 0))
    if rows.numel() == 0:
        return None
    return tuple(slice(max(int(index[0]) - margin, 0), min(int(index[-1]) + 1 + margin, size))
                 for index, size in zip((rows, columns), mask.shape))


def profile_bilateral_inside(frames: torch.Tensor, region: torch.Tensor | np.ndarray, noise_sd: float,
                             pixel_mm: tuple[float, float], radius_px: int = DEFAULT_RADIUS_PX,
                             in_place: bool = False, **settings) -> torch.Tensor:
    """`profile_bilateral` on the bounding box of `region` (Y, X) only, grown by the filter's radius so that
    every voxel of the region gets exactly the whole-slice result; voxels outside the box are left
    unfiltered. The region is the head: the air around it (a third of a CT slice) needs no filtering.
    in_place: write the result into `frames` (and return it) instead of into a copy."""
    box = bounding_box(region, radius_px)
    if box is None:
        return frames if in_place else frames.clone()
    if box[0].stop - box[0].start == frames.shape[1] and box[1].stop - box[1].start == frames.shape[2]:
        filtered = profile_bilateral(frames, noise_sd, pixel_mm, radius_px, **settings)
        return frames.copy_(filtered) if in_place else filtered
    filtered = frames if in_place else frames.clone()
    filtered[:, box[0], box[1]] = profile_bilateral(frames[:, box[0], box[1]], noise_sd, pixel_mm, radius_px,
                                                    **settings)
    return filtered


def gaussian_taps(sigma_px: float) -> np.ndarray:
    """Normalised Gaussian taps (float64) out to ceil(3 sigma), at least one on each side."""
    radius = max(int(np.ceil(3 * sigma_px)), 1)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_px) ** 2)
    return taps / taps.sum()


def _gaussian_taps(sigma_px: float, device, dtype) -> torch.Tensor:
    import torch

    return torch.as_tensor(gaussian_taps(sigma_px), dtype=dtype, device=device)


def _band_matrix(size: int, taps: torch.Tensor) -> torch.Tensor:
    """(size, size) matrix B with B @ f = the zero-padded correlation of f with the (odd, symmetric) taps:
    a matrix product runs ~10x faster on a CPU than torch's single-channel conv2d with a long 1D kernel."""
    import torch

    radius = len(taps) // 2
    lag = torch.arange(size, device=taps.device)[None, :] - torch.arange(size, device=taps.device)[:, None]
    inside = lag.abs() <= radius
    return torch.where(inside, taps[(lag + radius).clamp(0, len(taps) - 1)], torch.zeros((), dtype=taps.dtype,
                                                                                            device=taps.device))


def masked_gaussian(curves: torch.Tensor, mask: torch.Tensor, sigma_mm: float,
                    pixel_mm: tuple[float, float], in_place: bool = False) -> torch.Tensor:
    """In-plane Gaussian smoothing of (N, Y, X) curves restricted to `mask` (Y, X) (normalised convolution:
    smooth(f m) / smooth(m)): parenchyma is averaged with parenchyma only, never with CSF, bone or vessels
    outside the mask, so those edges keep their place. Voxels outside the mask are returned unchanged.
    The separable Gaussian (zero outside the slice) is two band-matrix products, B_y @ f @ B_x^T.
    in_place: write the result into `curves` (and return it) instead of into a copy."""
    import torch

    if sigma_mm <= 0 or not bool(mask.any()):
        return curves if in_place else curves.clone()
    # only the mask's bounding box matters: the weighted input is 0 outside it, the output is kept only inside
    box = bounding_box(mask)
    inner, inside = curves[:, box[0], box[1]], mask[box]
    stack = torch.empty((curves.shape[0] + 1, *inside.shape), dtype=curves.dtype, device=curves.device)
    stack[-1] = inside
    torch.mul(inner, stack[-1], out=stack[:-1])  # (N + 1, y, x): f m and m
    rows = _band_matrix(stack.shape[1], _gaussian_taps(sigma_mm / pixel_mm[0], curves.device, curves.dtype))
    columns = _band_matrix(stack.shape[2], _gaussian_taps(sigma_mm / pixel_mm[1], curves.device, curves.dtype))
    stack = torch.matmul(torch.matmul(rows, stack), columns.T)
    smoothed = curves if in_place else curves.clone()
    smoothed[:, box[0], box[1]] = torch.where(inside[None], stack[:-1].div_(stack[-1].clamp_min(1e-6)), inner)
    return smoothed
