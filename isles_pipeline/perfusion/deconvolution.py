"""Deconvolution of tissue curves by the arterial input: C = A k, k(t) = (rho/kH) CBF R(t) (per second).

One SVD per AIF; every voxel's solution is then matrix products, vectorised over voxels (chunked to bound
memory) with torch on the CPU or a GPU.

- `convolution_matrix`: the AIF as a matrix with the discretisation of Wu et al. (MRM 2003) that assumes AIF
  and residue vary linearly between samples, A[i, j] = dt (a[i-j-1] + 4 a[i-j] + a[i-j+1]) / 6. Circulant
  (block-circulant SVD, the curves zero-padded to 2N) makes the result insensitive to the bolus delay
  between AIF and tissue; the plain lower-triangular form (sSVD, Ostergaard 1996) is kept to show why.
- Methods: `osvd` (circulant; per voxel, the least regularised truncation whose oscillation index
  O = sum |k[i] - 2 k[i-1] + k[i-2]| / (L max k) is at most `oscillation_index`, Wu et al. 2003, never below
  MIN_TRUNCATION of the largest singular value), `bcsvd`
  (circulant, fixed truncation), `ssvd` (non-circulant, fixed truncation; delay-sensitive, for comparison),
  `tikhonov` (circulant, filter factors s / (s^2 + lambda^2), lambda relative to the largest s).
- oSVD cost: the candidate truncations are nested, so the solution of each is the previous one plus the
  next block of singular components: all candidates together cost one (L x L) product per voxel.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where it is used: the CPU engine (numpy_kernels) runs without it
    import torch

METHODS = ("osvd", "bcsvd", "ssvd", "tikhonov")
OSVD_THRESHOLDS = tuple(np.geomspace(0.002, 0.5, 10))  # fractions of the largest singular value
DEFAULT_OSCILLATION_INDEX = 0.095  # Wu et al. 2003
# The least regularised truncation oSVD may pick (a fraction of the largest singular value). The oscillation
# index cannot veto a one-sample spike (its summed second difference is 2 to 4 times its height, divided by
# L max k: O ~ 4 / L, far below the limit), so a floor is the guard against a collapse on clean curves. Any
# floor from 0.005 up cost the noise-free exponential residues of the deconvolution tests more than 10 % of
# their CBF, and the block phantom did not collapse without one, so the default is none: a setting.
MIN_TRUNCATION = 0.0
DEFAULT_TRUNCATION = 0.1  # bcSVD / sSVD threshold, fraction of the largest singular value
DEFAULT_TIKHONOV = 0.1  # lambda as a fraction of the largest singular value
CHUNK_VOXELS = 65536  # voxels per call from `compute_maps`: bounds the (L, V) residues held at once
SOLVE_CHUNK_VOXELS = 8192  # on a CPU, voxels per pass of the solve: its (L, V) work arrays (3 MB each) stay
# in cache, which made the oSVD 1.5x faster than 65536 at a time (2-core dev machine, 2026-11)


def convolution_matrix(aif: np.ndarray, step_s: float, circulant: bool = True) -> np.ndarray:
    """(L, L) matrix A with tissue = A @ residue (L = 2N circulant, N plain), Wu et al.'s linear weights."""
    aif = np.asarray(aif, dtype=float)
    n = len(aif)
    length = 2 * n if circulant else n
    padded = np.zeros(length + 2)
    padded[1: n + 1] = aif  # padded[k + 1] = a[k]; zero before the first and after the last sample
    kernel = step_s * (padded[0:length] + 4 * padded[1: length + 1] + padded[2: length + 2]) / 6.0
    lag = np.subtract.outer(np.arange(length), np.arange(length))
    if circulant:
        return kernel[lag % length]
    return np.where(lag >= 0, kernel[np.clip(lag, 0, None)], 0.0)


def candidate_ranks(singular, min_truncation: float = MIN_TRUNCATION) -> list[int]:
    """oSVD's nested candidate ranks: how many singular values (descending) lie above each of
    OSVD_THRESHOLDS (at least `min_truncation`) times the largest; `singular` numpy or torch."""
    smax = float(singular[0])
    thresholds = [t for t in OSVD_THRESHOLDS if t >= min_truncation] or [OSVD_THRESHOLDS[-1]]
    return sorted({max(int((singular >= t * smax).sum()), 1) for t in thresholds})


def oscillation_index(residue: torch.Tensor) -> torch.Tensor:
    """Wu et al.'s O per column of (L, V) residues: summed |second difference| / (L * max)."""
    second = residue[2:] - 2 * residue[1:-1] + residue[:-2]
    peak = residue.amax(dim=0).clamp_min(1e-12)
    return second.abs().sum(dim=0) / (residue.shape[0] * peak)


@dataclass
class Deconvolver:
    """The SVD of one AIF's convolution matrix, ready to deconvolve any number of curves.

    Build with `Deconvolver.for_aif(aif, step_s, method, device)`; `residues(curves)` takes (N, V)
    baseline-subtracted tissue curves on the AIF's uniform grid and returns (L, V) residues k in 1/s;
    `solve(curves)` also returns each voxel's regularisation level (index into `level_filters()`).
    """

    method: str
    step_s: float
    num_frames: int
    u_t: torch.Tensor  # (L, N): U^T restricted to the unpadded rows
    v: torch.Tensor  # (L, L)
    singular: torch.Tensor  # (L,), descending
    oscillation_index: float = DEFAULT_OSCILLATION_INDEX
    truncation: float = DEFAULT_TRUNCATION
    tikhonov: float = DEFAULT_TIKHONOV
    min_truncation: float = MIN_TRUNCATION  # oSVD only; 0 gives the unguarded candidates (a simulated vendor)
    second_v: torch.Tensor = field(init=False, repr=False)  # D V (L - 2, L), D the second difference

    def __post_init__(self):
        self.second_v = self.v[2:] - 2 * self.v[1:-1] + self.v[:-2]

    @classmethod
    def for_aif(cls, aif: np.ndarray, step_s: float, method: str = "osvd", device: torch.device | str = "cpu",
                **settings) -> "Deconvolver":
        import torch

        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        aif = np.asarray(aif, dtype=float)
        matrix = convolution_matrix(aif, step_s, circulant=method != "ssvd")
        # torch's LAPACK call on one thread: numpy's threaded OpenBLAS took 0.3 s for this 100 x 100 on a busy CPU
        u, s, vt = (t.numpy() for t in torch.linalg.svd(torch.as_tensor(matrix, dtype=torch.float64)))
        n = len(aif)
        def as_tensor(array):
            return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32, device=device)

        return cls(method, float(step_s), n, as_tensor(u.T[:, :n]), as_tensor(vt.T), as_tensor(s), **settings)

    def _ranks(self) -> list[int]:
        return candidate_ranks(self.singular, self.min_truncation)

    def level_filters(self) -> list[torch.Tensor]:
        """Filter factors f (k = V diag(f) U^T c) of each regularisation level, most regularised first."""
        import torch
        inverse = 1.0 / self.singular.clamp_min(1e-30)
        if self.method == "tikhonov":
            lam = self.tikhonov * self.singular[0]
            return [self.singular / (self.singular.square() + lam**2)]
        if self.method in ("bcsvd", "ssvd"):
            return [torch.where(self.singular >= self.truncation * self.singular[0], inverse,
                                torch.zeros_like(inverse))]
        index = torch.arange(len(self.singular), device=self.singular.device)
        return [torch.where(index < rank, inverse, torch.zeros_like(inverse)) for rank in self._ranks()]

    def residues(self, curves) -> torch.Tensor:
        """(L, V) residues of (N, V) curves (numpy or tensor)."""
        return self.solve(curves)[0]

    def solve(self, curves) -> tuple[torch.Tensor, torch.Tensor]:
        """(L, V) residues and (V,) regularisation levels of (N, V) curves, chunked over voxels."""
        import torch
        curves = torch.as_tensor(curves, dtype=torch.float32, device=self.v.device)
        if curves.shape[0] != self.num_frames:
            raise ValueError(f"curves have {curves.shape[0]} frames, the AIF {self.num_frames}")
        out = torch.empty((self.v.shape[0], curves.shape[1]), dtype=torch.float32, device=self.v.device)
        levels = torch.zeros(curves.shape[1], dtype=torch.long, device=self.v.device)
        ranks = self._ranks() if self.method == "osvd" else None
        filters = self.level_filters()[0][:, None] if self.method != "osvd" else None
        chunk = CHUNK_VOXELS if curves.is_cuda else SOLVE_CHUNK_VOXELS  # a GPU wants large launches
        length = self.v.shape[0]
        # the oSVD's work arrays, allocated once: a fresh 3 MB array per step cost as much as the step
        work = [torch.empty((rows, min(chunk, curves.shape[1])), dtype=torch.float32, device=self.v.device)
                for rows in (length, length - 2, length - 2)] if ranks is not None else None
        for start in range(0, curves.shape[1], chunk):
            stop = start + chunk
            projected = self.u_t @ curves[:, start:stop]  # U^T c
            if ranks is not None:
                out[:, start:stop], levels[start:stop] = self._osvd(projected, ranks, work)
            else:
                out[:, start:stop] = self.v @ (filters * projected)
        return out, levels

    def _osvd(self, projected: torch.Tensor, ranks: list[int],
              work: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Least regularised candidate truncation with O <= the limit, per voxel (most regularised if none).

        The truncations are nested: each candidate adds the next singular components to the previous one, and
        so does its second difference (D V is precomputed), so a candidate costs a small product and three
        passes (|second difference| summed, maximum); the chosen residue is rebuilt once at the end.
        `work`: (L, >= V), (L - 2, >= V) twice, overwritten."""
        import torch
        scaled = projected.div_(self.singular.clamp_min(1e-30)[:, None])  # U^T c / s, in place
        count = projected.shape[1]
        length = self.v.shape[0]
        residue, second, magnitude = (array[:, :count] for array in work)
        residue.zero_()
        second.zero_()
        limit = self.oscillation_index * length
        levels = torch.zeros(count, dtype=torch.long, device=projected.device)
        previous = 0
        for level, rank in enumerate(ranks):
            block = scaled[previous:rank]
            residue.addmm_(self.v[:, previous:rank], block)
            second.addmm_(self.second_v[:, previous:rank], block)
            previous = rank
            if level == 0:
                continue
            # O = sum |D k| / (L max k) <= the limit, without a division
            smooth = torch.abs(second, out=magnitude).sum(dim=0) <= limit * residue.amax(dim=0).clamp_min(1e-12)
            levels.masked_fill_(smooth, level)
        chosen_rank = torch.as_tensor(ranks, device=projected.device)[levels]  # (V,)
        drop = torch.arange(length, device=projected.device)[:, None] >= chosen_rank[None, :]
        return self.v @ scaled.masked_fill_(drop, 0.0), levels


