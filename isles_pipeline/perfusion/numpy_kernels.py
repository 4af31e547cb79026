"""The engine's heavy steps in numpy, for the CPU: the same arithmetic as the torch versions in `denoise`,
`deconvolution` and `maps` (which run on a GPU), without importing torch.

Why: `isles_perfusion_maps` is a command a user waits for, and importing torch costs more (1.2 s on the
2-core dev machine) than the profile bilateral filter and the oSVD together on one thread; numpy's kernels
run these steps at the same speed. tests/test_perfusion_numpy.py holds both versions to the same results.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage
from scipy.linalg.blas import sgemm

from isles_pipeline.perfusion.deconvolution import (
    DEFAULT_OSCILLATION_INDEX,
    DEFAULT_TIKHONOV,
    DEFAULT_TRUNCATION,
    METHODS,
    MIN_TRUNCATION,
    SOLVE_CHUNK_VOXELS,
    candidate_ranks,
    convolution_matrix,
)
from isles_pipeline.perfusion.denoise import (
    CACHE_BLOCK_FRAMES,
    DEFAULT_RADIUS_PX,
    DEFAULT_SPATIAL_SIGMA_MM,
    PROFILE_BLOCK_FRAMES,
    gaussian_taps,
    neighbour_offsets,
)
from isles_pipeline.perfusion.maps import TMAX_CHUNK_VOXELS


def profile_bilateral(frames: np.ndarray, noise_sd: float, pixel_mm: tuple[float, float],
                      radius_px: int = DEFAULT_RADIUS_PX, spatial_sigma_mm: float = DEFAULT_SPATIAL_SIGMA_MM,
                      range_scale: float = 1.0) -> np.ndarray:
    """`denoise.profile_bilateral` on a (T, Y, X) float32 array; returns a new array.

    The slice is padded by the radius and flattened, so that the neighbour at (dy, dx) of every pixel is one
    offset dy * padded_width + dx of a 1D view: contiguous products, 3x faster in numpy than 2D shifted
    views. Pairs touching the padding weigh 0, so every pixel averages exactly the neighbours it has."""
    if noise_sd <= 0 or radius_px < 1:
        return frames.copy()
    count, height, width = frames.shape
    block = min(PROFILE_BLOCK_FRAMES, count)
    usable = count - count % block
    pad = radius_px
    padded_width = width + 2 * pad
    size = (height + 2 * pad) * padded_width
    inside = (slice(pad, pad + height), slice(pad, pad + width))
    padded = np.zeros((count, height + 2 * pad, padded_width), dtype=frames.dtype)
    padded[:, inside[0], inside[1]] = frames
    profiles = np.zeros((usable // block, height + 2 * pad, padded_width), dtype=frames.dtype)
    profiles[:, inside[0], inside[1]] = frames[:usable].reshape(usable // block, block, height, width).mean(axis=1)
    profiles = profiles.reshape(profiles.shape[0], size)
    valid = np.zeros((height + 2 * pad, padded_width), dtype=frames.dtype)
    valid[inside] = 1.0
    valid = valid.reshape(size)
    noise_only = 2.0 * noise_sd**2 / block * profiles.shape[0]
    range_denominator = np.float32(2.0 * range_scale * noise_only)
    pairs = []  # (offset, weight of the pair (x, x + offset) for x in [0, size - offset))
    weight_sum = np.ones(size, dtype=frames.dtype)
    for dy, dx, spatial in neighbour_offsets(radius_px, pixel_mm, spatial_sigma_mm):
        offset = dy * padded_width + dx  # > 0: dy >= 1 or dx >= 1
        difference = profiles[:, :-offset] - profiles[:, offset:]
        distance = np.square(difference, out=difference).sum(axis=0)
        weight = np.exp(-distance / range_denominator - np.float32(spatial))
        weight *= valid[:-offset]
        weight *= valid[offset:]
        weight_sum[:-offset] += weight
        weight_sum[offset:] += weight
        pairs.append((offset, weight))
    flat = padded.reshape(count, size)
    total = flat.copy()
    product = np.empty((min(CACHE_BLOCK_FRAMES, count), size), dtype=frames.dtype)
    for start in range(0, count, CACHE_BLOCK_FRAMES):
        source, target = flat[start: start + CACHE_BLOCK_FRAMES], total[start: start + CACHE_BLOCK_FRAMES]
        work = product[: source.shape[0]]
        for offset, weight in pairs:
            target[:, :-offset] += np.multiply(source[:, offset:], weight, out=work[:, :-offset])
            target[:, offset:] += np.multiply(source[:, :-offset], weight, out=work[:, offset:])
    total /= weight_sum
    return np.ascontiguousarray(total.reshape(count, height + 2 * pad, padded_width)[:, inside[0], inside[1]])


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, slice] | None:
    """`denoise.bounding_box` of a 2D numpy mask."""
    rows, columns = (np.flatnonzero(mask.any(axis=axis)) for axis in (1, 0))
    if rows.size == 0:
        return None
    return tuple(slice(max(int(index[0]) - margin, 0), min(int(index[-1]) + 1 + margin, size))
                 for index, size in zip((rows, columns), mask.shape))


def profile_bilateral_inside(frames: np.ndarray, region: np.ndarray, noise_sd: float,
                             pixel_mm: tuple[float, float], radius_px: int = DEFAULT_RADIUS_PX) -> np.ndarray:
    """`denoise.profile_bilateral_inside` on a (T, Y, X) array, always in place (returns `frames`)."""
    box = bounding_box(region, radius_px)
    if box is not None:
        frames[:, box[0], box[1]] = profile_bilateral(frames[:, box[0], box[1]], noise_sd, pixel_mm, radius_px)
    return frames


def masked_gaussian(curves: np.ndarray, mask: np.ndarray, sigma_mm: float, pixel_mm: tuple[float, float],
                    weight: np.ndarray | None = None) -> np.ndarray:
    """`denoise.masked_gaussian` of (N, Y, X) float32 curves inside a (Y, X) mask, in place (returns `curves`),
    with the same zero-padded separable taps applied by scipy's correlate1d, in place (band-matrix products,
    which suit torch, were 1.3x faster in numpy when re-measured; not worth the change: engine page, Speed).
    weight: (Y, X), 0 outside the mask: each voxel moves only that share of the way to its smoothed value
    (`structure.smoothing_weight`)."""
    if sigma_mm <= 0 or not mask.any():
        return curves
    box = bounding_box(mask)
    inner, inside = curves[:, box[0], box[1]], mask[box]
    smoothed = _gaussian(inner * inside, sigma_mm, pixel_mm)
    smoothed /= np.maximum(_gaussian(inside.astype(curves.dtype), sigma_mm, pixel_mm), np.float32(1e-6))
    if weight is None:
        curves[:, box[0], box[1]] = np.where(inside[None], smoothed, inner)
    else:
        smoothed -= inner
        smoothed *= weight[box]
        inner += smoothed  # a view of `curves`
    return curves


def _gaussian(stack: np.ndarray, sigma_mm: float, pixel_mm: tuple[float, float]) -> np.ndarray:
    """The zero-padded separable Gaussian of a (..., Y, X) array along its last two axes, in place."""
    for axis, pixel in ((-2, pixel_mm[0]), (-1, pixel_mm[1])):
        ndimage.correlate1d(stack, gaussian_taps(sigma_mm / pixel).astype(stack.dtype), axis=axis, output=stack,
                            mode="constant")
    return stack


@dataclass
class NumpyDeconvolver:
    """`deconvolution.Deconvolver` with numpy arrays: `residues(curves)` of (N, V) float32 curves -> (L, V)."""

    method: str
    step_s: float
    num_frames: int
    u_t: np.ndarray
    v: np.ndarray
    singular: np.ndarray
    oscillation_index: float = DEFAULT_OSCILLATION_INDEX
    truncation: float = DEFAULT_TRUNCATION
    tikhonov: float = DEFAULT_TIKHONOV
    min_truncation: float = MIN_TRUNCATION
    second_v: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        self.second_v = np.ascontiguousarray(self.v[2:] - 2 * self.v[1:-1] + self.v[:-2])

    @classmethod
    def for_aif(cls, aif: np.ndarray, step_s: float, method: str = "osvd", **settings) -> "NumpyDeconvolver":
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        aif = np.asarray(aif, dtype=float)
        u, s, vt = np.linalg.svd(convolution_matrix(aif, step_s, circulant=method != "ssvd"))
        n = len(aif)
        def as_array(array):
            return np.ascontiguousarray(array, dtype=np.float32)

        return cls(method, float(step_s), n, as_array(u.T[:, :n]), as_array(vt.T), as_array(s), **settings)

    def _filters(self) -> np.ndarray:
        inverse = 1.0 / np.maximum(self.singular, np.float32(1e-30))
        if self.method == "tikhonov":
            lam = self.tikhonov * self.singular[0]
            return self.singular / (np.square(self.singular) + np.float32(lam**2))
        return np.where(self.singular >= self.truncation * self.singular[0], inverse, np.float32(0))

    def residues(self, curves: np.ndarray) -> np.ndarray:
        """(L, V) residues, stored voxel by voxel (the transpose of a C array): `rise_position` reads each
        voxel's residue as one contiguous row."""
        curves = np.asarray(curves, dtype=np.float32)
        if curves.shape[0] != self.num_frames:
            raise ValueError(f"curves have {curves.shape[0]} frames, the AIF {self.num_frames}")
        length = self.v.shape[0]
        out = np.empty((curves.shape[1], length), dtype=np.float32)
        if self.method != "osvd":
            filters = self._filters()[:, None]
            for start in range(0, curves.shape[1], SOLVE_CHUNK_VOXELS):
                stop = start + SOLVE_CHUNK_VOXELS
                np.matmul((filters * (self.u_t @ curves[:, start:stop])).T, self.v.T, out=out[start:stop])
            return out.T
        ranks = candidate_ranks(self.singular, self.min_truncation)
        width = min(SOLVE_CHUNK_VOXELS, curves.shape[1])
        work = [np.empty(rows * width, dtype=np.float32) for rows in (length, length - 2, length - 2)]
        for start in range(0, curves.shape[1], SOLVE_CHUNK_VOXELS):
            stop = start + SOLVE_CHUNK_VOXELS
            np.matmul(self._osvd(self.u_t @ curves[:, start:stop], ranks, work).T, self.v.T, out=out[start:stop])
        return out.T

    def _osvd(self, projected: np.ndarray, ranks: list[int], work: list[np.ndarray]) -> np.ndarray:
        """`Deconvolver._osvd`: the least regularised nested truncation whose oscillation index is within the
        limit, per voxel (the most regularised if none); returns the kept components U^T c / s (L, V)."""
        scaled = np.divide(projected, np.maximum(self.singular, np.float32(1e-30))[:, None], out=projected)
        count = projected.shape[1]
        length = self.v.shape[0]
        # C-contiguous (rows, count) views of the flat buffers: their transposes are Fortran arrays that BLAS's
        # sgemm accumulates into in place (C += A B, torch's addmm_), one pass instead of a product and a sum
        residue, second, magnitude = (buffer[: rows * count].reshape(rows, count)
                                      for buffer, rows in zip(work, (length, length - 2, length - 2)))
        residue.fill(0)
        second.fill(0)
        limit = np.float32(self.oscillation_index * length)
        levels = np.zeros(count, dtype=np.int64)
        previous = 0
        for level, rank in enumerate(ranks):
            block = scaled[previous:rank].T  # the returned arrays are the buffers (a copy only if BLAS needed one)
            residue = sgemm(1.0, block, self.v[:, previous:rank].T, beta=1.0, c=residue.T, overwrite_c=True).T
            second = sgemm(1.0, block, self.second_v[:, previous:rank].T, beta=1.0, c=second.T, overwrite_c=True).T
            previous = rank
            if level == 0:
                continue
            smooth = np.abs(second, out=magnitude).sum(axis=0) <= limit * np.maximum(residue.max(axis=0),
                                                                                        np.float32(1e-12))
            levels[smooth] = level
        chosen_rank = np.asarray(ranks)[levels]
        scaled *= np.arange(length)[:, None] < chosen_rank[None, :]
        return scaled  # the chosen truncation's U^T c / s: the residue is V @ this


def rise_position(residues: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`maps.rise_position` of (L, V) numpy residues: (V,) largest sample, (V,) rise position in samples."""
    length = residues.shape[0]
    window = length // 2
    peak = np.empty(residues.shape[1], dtype=residues.dtype)
    position = np.empty_like(peak)
    for start in range(0, residues.shape[1], TMAX_CHUNK_VOXELS):
        # one voxel per row (no copy for NumpyDeconvolver's residues): argmax along a contiguous axis, and the
        # window before the peak as one slice of the row repeated twice (the circular wrap without an index)
        rows = np.ascontiguousarray(residues[:, start: start + TMAX_CHUNK_VOXELS].T)
        voxels = np.arange(rows.shape[0])
        coarse = rows.argmax(axis=1)
        values = rows[voxels, coarse]
        twice = np.concatenate([rows, rows], axis=1)
        before = sliding_window_view(twice, window + 1, axis=1)[voxels, coarse + length - window]
        half = 0.5 * values[:, None]
        below = before < half
        found = below.any(axis=1)
        last = np.where(found, window - below[:, ::-1].argmax(axis=1), 0)
        low = np.take_along_axis(before, last[:, None], axis=1)[:, 0]
        high = np.take_along_axis(before, np.minimum(last + 1, window)[:, None], axis=1)[:, 0]
        fraction = np.clip((half[:, 0] - low) / np.maximum(high - low, np.float32(1e-12)), 0, 1)
        peak[start: start + rows.shape[0]] = values
        position[start: start + rows.shape[0]] = (coarse - window + last).astype(residues.dtype) + fraction
    return peak, np.remainder(position, np.float32(length))
