"""A digital CT perfusion phantom of the published block design (Kudo et al., Radiology 2013;267:201-211, the
ASIST-Japan phantom on which commercial packages were graded), written from the paper's description.

Why: our anatomical phantom's vendor maps come from this engine, so validating on it alone is circular. A
block phantom with known CBF, CBV, MTT and delay per block, a gamma-variate AIF and VOF, and both residue
shapes grades any deconvolution on the same terms as the paper did.

Design (per section = one slice, 1 mm pixels, 5 mm slices, 1 s frames):
- CBV is constant in a section (1 to 5 ml/100g); columns are MTT = 24 / k s (k = 1..7: 24 to 3.4 s), so CBF
  = 60 CBV / MTT spans 2.5 to 87.5 ml/100g/min as in the paper; rows are the bolus delay (0 to 5 s here, to
  cover the delay range of occlusions; the paper went to 3 s).
- Residue R(t) exponential exp(-t / MTT) or box (1 until MTT), both with R(0) = 1, so the true Tmax is the delay.
- Blocks large (12 x 12 px in 16 px cells) or small (4 x 4 px in 10 px cells); between blocks and around the
  grid, normal grey matter (CBF 60, CBV 4, no delay, exponential residue): a small low-flow block inside normal
  tissue is what spatial smoothing must not erase.
- A skull frame (1200 HU), an artery (gamma variate, peak 400 HU, alpha 3, beta 1.5 s, arrival 8 s) and a
  vein (the same indicator mass 5 s later and 1.6x wider) in every section, as a package would find them.
- Tissue curves C(t) = (rho / kH) CBF (AIF conv R)(t - delay) integrated on a 0.05 s grid, then sampled
  (no discretisation shared with any deconvolution). White Gaussian noise of a given SD per frame and voxel.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RHO, K_H = 1.05, 0.73
CBV_LEVELS = (1.0, 2.0, 3.0, 4.0, 5.0)
MTT_LEVELS = tuple(24.0 / k for k in range(1, 8))
DELAY_LEVELS = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)
RESIDUES = ("exponential", "box")
SIZES = {"large": (12, 16), "small": (4, 10)}  # block px, cell px
NORMAL = {"cbf": 60.0, "cbv": 4.0}
SIZE_PX, PIXEL_MM, SLICE_MM = 144, 1.0, 5.0
NUM_FRAMES, FRAME_S, FINE_S = 80, 1.0, 0.05
AIF_ARRIVAL_S, AIF_ALPHA, AIF_BETA_S, AIF_PEAK_HU = 8.0, 3.0, 1.5, 400.0
BASELINE_HU = {"tissue": 35.0, "bone": 1200.0, "air": -1000.0, "blood": 40.0}


@dataclass
class KudoPhantom:
    """The noise-free series (T, Z, Y, X) in HU and the truth, voxel-wise and per block."""

    series: np.ndarray
    frame_times_s: np.ndarray
    spacing_zyx: tuple[float, float, float]
    truth: dict  # cbf, cbv, mtt, tmax (Z, Y, X); block (Z, Y, X) int, -1 outside blocks; brain (Z, Y, X) bool
    blocks: list[dict]  # per block id: section, cbf, cbv, mtt, delay, residue, size, interior voxel mask index
    aif: np.ndarray  # the true arterial curve on the frames (HU over baseline)
    artery: np.ndarray  # (Z, Y, X) bool
    vein: np.ndarray

    def noisy(self, noise_sd_hu: float, seed: int) -> np.ndarray:
        """The series with white Gaussian noise of `noise_sd_hu` in every voxel and frame (a new array)."""
        if noise_sd_hu <= 0:
            return self.series.copy()
        rng = np.random.default_rng(seed)
        return (self.series + rng.standard_normal(self.series.shape, dtype=np.float32) * noise_sd_hu).astype(
            np.float32)


def gamma_variate(t: np.ndarray, arrival_s: float, alpha: float, beta_s: float, peak_hu: float) -> np.ndarray:
    s = np.clip(t - arrival_s, 0, None)
    return peak_hu * (s / (alpha * beta_s)) ** alpha * np.exp(alpha - s / beta_s)


def tissue_curve(fine_aif: np.ndarray, fine_t: np.ndarray, frame_t: np.ndarray, cbf: float, mtt: float,
                 delay: float, residue: str) -> np.ndarray:
    """(rho / kH) CBF (AIF conv R)(t - delay) at the frame times, CBF in ml/100g/min."""
    r = np.exp(-fine_t / mtt) if residue == "exponential" else (fine_t < mtt).astype(float)
    convolved = np.convolve(fine_aif, r)[: len(fine_t)] * FINE_S
    return RHO / K_H * cbf / 6000.0 * np.interp(frame_t - delay, fine_t, convolved, left=0.0)


def _section_layout(size: str) -> list[tuple[slice, slice, int, int]]:
    """(rows, cols, delay index, mtt index) of each block of a section, the grid centred in the slice."""
    block, cell = SIZES[size]
    height, width = len(DELAY_LEVELS) * cell, len(MTT_LEVELS) * cell
    top, left = (SIZE_PX - height) // 2 + 8, (SIZE_PX - width) // 2  # 8 px lower: room for the vessels above
    pad = (cell - block) // 2
    return [(slice(top + i * cell + pad, top + i * cell + pad + block),
             slice(left + j * cell + pad, left + j * cell + pad + block), i, j)
            for i in range(len(DELAY_LEVELS)) for j in range(len(MTT_LEVELS))]


def build_phantom(sizes=tuple(SIZES), residues=RESIDUES, cbv_levels=CBV_LEVELS) -> KudoPhantom:
    """The noise-free phantom: one section per (size, residue, CBV)."""
    fine_t = np.arange(0, NUM_FRAMES * FRAME_S + 10, FINE_S)
    frame_t = np.arange(NUM_FRAMES) * FRAME_S
    fine_aif = gamma_variate(fine_t, AIF_ARRIVAL_S, AIF_ALPHA, AIF_BETA_S, AIF_PEAK_HU)
    aif = gamma_variate(frame_t, AIF_ARRIVAL_S, AIF_ALPHA, AIF_BETA_S, AIF_PEAK_HU)
    vof = gamma_variate(frame_t, AIF_ARRIVAL_S + 5.0, AIF_ALPHA, 1.6 * AIF_BETA_S, AIF_PEAK_HU / 1.6)
    sections = [(s, r, v) for s in sizes for r in residues for v in cbv_levels]
    shape = (len(sections), SIZE_PX, SIZE_PX)
    baseline = np.full(shape, BASELINE_HU["air"], np.float32)
    inner = slice(4, SIZE_PX - 4)
    baseline[:, inner, inner] = BASELINE_HU["bone"]
    brain_slice = slice(9, SIZE_PX - 9)
    baseline[:, brain_slice, brain_slice] = BASELINE_HU["tissue"]
    brain = np.zeros(shape, bool)
    brain[:, brain_slice, brain_slice] = True
    artery, vein = np.zeros(shape, bool), np.zeros(shape, bool)
    artery[:, 14:17, 40:43] = True  # 3 x 3 px artery, 5 px inside the skull's 2 mm margin
    vein[:, 14:18, 100:104] = True
    brain &= ~(artery | vein)
    normal_mtt = 60 * NORMAL["cbv"] / NORMAL["cbf"]
    normal = tissue_curve(fine_aif, fine_t, frame_t, NORMAL["cbf"], normal_mtt, 0.0, "exponential")
    enhancement = np.zeros((NUM_FRAMES,) + shape, np.float32)
    enhancement[:, brain] = normal[:, None]
    enhancement[:, artery] = aif[:, None]
    enhancement[:, vein] = vof[:, None]
    truth = {"cbf": np.where(brain, NORMAL["cbf"], 0.0), "cbv": np.where(brain, NORMAL["cbv"], 0.0),
             "mtt": np.where(brain, normal_mtt, 0.0), "tmax": np.zeros(shape), "block": np.full(shape, -1)}
    blocks = []
    for z, (size, residue, cbv) in enumerate(sections):
        for rows, cols, i, j in _section_layout(size):
            delay, mtt = DELAY_LEVELS[i], MTT_LEVELS[j]
            cbf = 60.0 * cbv / mtt
            enhancement[:, z, rows, cols] = tissue_curve(fine_aif, fine_t, frame_t, cbf, mtt, delay,
                                                         residue)[:, None, None]
            for key, value in (("cbf", cbf), ("cbv", cbv), ("mtt", mtt), ("tmax", delay), ("block", len(blocks))):
                truth[key][z, rows, cols] = value
            blocks.append({"section": z, "size": size, "residue": residue, "cbf": cbf, "cbv": cbv, "mtt": mtt,
                           "delay": delay, "rows": rows, "cols": cols})
    truth = {k: v.astype(np.int32 if k == "block" else np.float32) for k, v in truth.items()}
    truth["brain"] = brain
    series = (enhancement + baseline[None]).astype(np.float32)
    return KudoPhantom(series, frame_t, (SLICE_MM, PIXEL_MM, PIXEL_MM), truth, blocks, aif.astype(np.float32),
                       artery, vein)


def block_region(block: dict, erode_px: int = 0) -> tuple[int, slice, slice]:
    """(z, rows, cols) of a block, shrunk by `erode_px` on each side (an ROI inside a large tile)."""
    rows, cols = block["rows"], block["cols"]
    return (block["section"], slice(rows.start + erode_px, rows.stop - erode_px),
            slice(cols.start + erode_px, cols.stop - erode_px))
