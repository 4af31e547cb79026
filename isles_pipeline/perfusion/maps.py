"""Perfusion parameters from residues and curves (indicator-dilution theory, Ostergaard et al. 1996).

The tissue curve is C = (rho / kH) CBF (AIF conv R) with R(0) = 1, so the deconvolved k = (rho / kH) CBF R:
- CBF = (kH / rho) max k, ml/100g/min (k in 1/s: x 6000);
- CBV = (kH / rho) area(C) / area(AIF), ml/100g (x 100);
- MTT = CBV / CBF (central volume theorem), s;
- Tmax = time at which k rises through half its maximum (s), between grid points (`rise_position`): the
  front of the residue, which the regularised maximum overestimated by 1 to 3 s; a rise in the wrapped second
  half of a circulant solution (tissue earlier than the AIF) is a negative delay and clipped to 0;
- TTP = time of the tissue curve's maximum, s from the first frame.
rho = 1.05 g/ml (brain density) and kH = 0.73 (large/small vessel haematocrit correction), as the phantom.
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where used: the CPU engine (numpy_kernels) runs without torch
    import torch

RHO = 1.05
K_H = 0.73
ML_PER_G_PER_S_TO_ML_PER_100G_PER_MIN = 6000.0
MAP_NAMES = ("cbf", "cbv", "mtt", "tmax", "ttp")
TMAX_UPSAMPLING = 4
TMAX_SEARCH_SAMPLES = 3  # the interpolant's maximum is sought within 3 grid samples of the largest sample
TMAX_CHUNK_VOXELS = 16384  # bounds the rolled copy of the residues (and keeps it in cache)


@functools.lru_cache(maxsize=8)
def _window_weights(length: int, upsample: int, half_width: int, dtype: torch.dtype,
                    device: torch.device) -> torch.Tensor:
    """(L, D) matrix W: for samples rolled so that row 0 is the largest, `rolled @ W` is the trigonometric
    interpolant (the zero-padded spectrum, as irfft(rfft(x), n=L * upsample) gives it) at the D = 2 *
    upsample * half_width + 1 fine points within `half_width` samples of that largest sample."""
    import torch

    delta = torch.zeros(length, dtype=torch.float64)
    delta[0] = 1.0
    kernel = torch.fft.irfft(torch.fft.rfft(delta), n=length * upsample)  # the interpolant of a unit sample
    offsets = torch.arange(-upsample * half_width, upsample * half_width + 1)
    lags = offsets[None, :] - upsample * torch.arange(length)[:, None]
    return kernel[lags % (length * upsample)].to(dtype=dtype, device=device)


def _peak_and_position(residues: torch.Tensor, upsample: int,
                       half_width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(V,) largest sample of each column and (V,) position (in samples, [0, L)) of the maximum of the
    column's trigonometric interpolant on a grid `upsample` times finer, sought near the largest sample only:
    each column is rolled to start at its largest sample (a window of the column repeated twice), and the fine
    points there are one small matrix product. The same positions as upsampling the whole curve except where
    the interpolant peaks more than `half_width` samples away from the largest sample (two almost equal
    peaks: 80 of 330 000 brain voxels of the benchmark series), at a fifth of the cost."""
    import torch

    length = residues.shape[0]
    half_width = min(half_width, length // 2)
    weights = _window_weights(length, upsample, half_width, residues.dtype, residues.device)
    peak = torch.empty(residues.shape[1], dtype=residues.dtype, device=residues.device)
    position = torch.empty_like(peak)
    for start in range(0, residues.shape[1], TMAX_CHUNK_VOXELS):
        chunk = residues[:, start: start + TMAX_CHUNK_VOXELS]
        values, coarse = chunk.max(dim=0)
        twice = torch.cat([chunk, chunk]).T  # (V, 2L): row v from coarse[v] on is column v rolled
        rolled = twice.unfold(1, length, 1)[torch.arange(chunk.shape[1], device=chunk.device), coarse]
        offset = (rolled @ weights).argmax(dim=1) - upsample * half_width
        peak[start: start + chunk.shape[1]] = values
        position[start: start + chunk.shape[1]] = coarse + offset.to(residues.dtype) / upsample
    return peak, torch.remainder(position, length)


def rise_position(residues: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(V,) largest sample of each (L, V) column and (V,) position (samples, [0, L)) where the column last
    crosses half of it on the way up to it (linear interpolation between samples), sought over the L / 2
    samples before the largest one, circularly (a circulant solution wraps).

    Why the rise and not the maximum: truncation low-passes the residue, which moves the maximum of an
    exponential residue (a jump at the delay, then a decay) later by about half the kernel, 1 to 3 s at the
    truncations oSVD picks, and spreads a box residue's maximum over its whole width. A symmetric low-pass
    kernel leaves the half-height point of a jump where the jump is, so the rise time estimates the delay of
    the residue's front, the quantity Tmax thresholds stand for, without that bias."""
    import torch

    length = residues.shape[0]
    window = length // 2
    peak = torch.empty(residues.shape[1], dtype=residues.dtype, device=residues.device)
    position = torch.empty_like(peak)
    offsets = torch.arange(window + 1, device=residues.device)
    for start in range(0, residues.shape[1], TMAX_CHUNK_VOXELS):
        chunk = residues[:, start: start + TMAX_CHUNK_VOXELS]
        values, coarse = chunk.max(dim=0)
        index = torch.remainder(coarse[:, None] - window + offsets[None], length)  # (V, W + 1), last: the peak
        before = torch.gather(chunk.T, 1, index)
        half = 0.5 * values[:, None]
        below = before < half
        found = below.any(dim=1)
        last = window - torch.flip(below, dims=[1]).to(torch.int8).argmax(dim=1)  # the last sample below half
        last = torch.where(found, last, torch.zeros_like(last))
        low = torch.gather(before, 1, last[:, None])[:, 0]
        high = torch.gather(before, 1, (last + 1).clamp(max=window)[:, None])[:, 0]
        fraction = ((half[:, 0] - low) / (high - low).clamp_min(1e-12)).clamp(0, 1)
        peak[start: start + chunk.shape[1]] = values
        position[start: start + chunk.shape[1]] = (coarse - window + last).to(residues.dtype) + fraction
    return peak, torch.remainder(position, length)


def flow_and_tmax(residues: torch.Tensor, step_s: float, num_frames: int, upsample: int = TMAX_UPSAMPLING,
                  definition: str = "peak") -> tuple[np.ndarray, np.ndarray]:
    """CBF (ml/100g/min) and Tmax (s) of (L, V) residues.

    CBF is the largest sample. Tmax, definition "rise" (what `compute_maps` uses): where the residue rises
    through half of it (`rise_position`); "peak": the maximum of the residue's trigonometric interpolant,
    sampled `upsample` times finer than the grid within TMAX_SEARCH_SAMPLES of the largest sample (what
    vendors report, and the phantom's simulated vendors). A position in the wrapped second half of a circulant
    solution (tissue before the AIF) is a negative delay, clipped to 0.
    """
    if definition not in ("rise", "peak"):
        raise ValueError(f"Tmax definition must be rise or peak, got {definition!r}")
    length = residues.shape[0]
    if isinstance(residues, np.ndarray):  # the CPU engine's residues: its numpy twin (the peak in torch)
        if definition == "rise":
            from isles_pipeline.perfusion.numpy_kernels import rise_position as numpy_rise_position

            peak, position = numpy_rise_position(residues)
        else:
            import torch

            peak, position = (t.numpy() for t in _peak_and_position(torch.from_numpy(residues), upsample,
                                                                    TMAX_SEARCH_SAMPLES))
    else:
        peak, position = rise_position(residues) if definition == "rise" else \
            _peak_and_position(residues, upsample, TMAX_SEARCH_SAMPLES)
        peak, position = peak.cpu().numpy(), position.cpu().numpy()
    position = np.where(position >= min(num_frames, length), position - length, position)
    tmax = np.clip(position, 0, None) * step_s
    cbf = K_H / RHO * ML_PER_G_PER_S_TO_ML_PER_100G_PER_MIN * np.clip(peak, 0, None)
    return cbf.astype(np.float32), tmax.astype(np.float32)


def blood_volume(curves: np.ndarray, aif: np.ndarray, clip_negative: bool = True) -> np.ndarray:
    """CBV (ml/100g) of (N, V) curves against the AIF used (both on one uniform grid). clip_negative: a
    negative area (noise in a voxel with little flow) is 0, as vendors show it and as the maps promise (no
    negative values); it biases the mean CBV of low-volume regions upwards in noisy, undenoised series."""
    area = curves.sum(axis=0)
    if clip_negative:
        area = np.clip(area, 0, None)
    return (K_H / RHO * 100.0 * area / max(float(aif.sum()), 1e-12)).astype(np.float32)


def transit_time(cbv: np.ndarray, cbf: np.ndarray) -> np.ndarray:
    """MTT = 60 CBV / CBF, s; 0 where there is no flow."""
    return np.where((cbf > 1e-3) & (cbv > 0), 60.0 * cbv / np.maximum(cbf, 1e-3), 0.0).astype(np.float32)


def time_to_peak(curves: np.ndarray, grid_s: np.ndarray) -> np.ndarray:
    return (grid_s[np.argmax(curves, axis=0)] - grid_s[0]).astype(np.float32)
