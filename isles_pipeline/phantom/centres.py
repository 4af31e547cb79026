"""The simulated centres: each a CT scanner protocol and a vendor's perfusion software.

ISLES 2018 came from four centres (Hakim et al., Stroke 2021) whose scanners differed in coverage (2 to 22
slices of 5 to 12 mm), frame count and timing, dose, and in the software that computed the maps. The case
files do not name the centre (neither does ISLES 2018); the phantom writes it into the truth only.

A protocol decides what the scanner records (frame times, tube current and so noise, slab geometry); a
vendor decides how the maps are computed from that series (`vendor_maps.py`): delay-sensitive or
delay-insensitive deconvolution, how the AIF is picked and scaled, smoothing, processing matrix, the Tmax
definition, masks and the integer scaling of CBF and CBV.

Non-uniform timing (centre C, an "adaptive" protocol: dense frames over the first pass, sparse after) is
resampled to uniform 1 s frames before the 4D file is written, because ISLES 2018 files carry only
pixdim[4] = 1 s; the true acquisition times stay in the truth (`frame_times_s`). The vendor software works
on the scanner's own frames, before that resampling, as it did in reality.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from isles_pipeline.phantom.population import category_at


@dataclass(frozen=True)
class Protocol:
    """What the scanner does. Times in s, lengths in mm, tube current-time product in mAs (80 kVp)."""

    slice_counts: tuple[int, ...]
    slice_count_probabilities: tuple[float, ...]
    slice_mm: tuple[float, ...]
    pixel_mm: tuple[float, float]  # in-plane spacing range at 256 x 256
    dense_interval_s: float
    dense_duration_s: tuple[float, float]  # the first part of the scan, at dense_interval_s
    sparse_interval_s: float  # after it (equal to dense_interval_s for a uniform protocol)
    total_duration_s: tuple[int, int]  # 42..63 s: ISLES 2018 series have 43 to 64 frames of 1 s
    mas: tuple[float, float]

    def frame_times(self, rng: np.random.Generator) -> np.ndarray:
        """Acquisition times (s) of the frames, starting at 0."""
        total = float(rng.integers(self.total_duration_s[0], self.total_duration_s[1] + 1))
        dense = min(float(rng.uniform(*self.dense_duration_s)), total)
        times = list(np.arange(0.0, dense + 1e-6, self.dense_interval_s))
        while times[-1] + self.sparse_interval_s <= total + 1e-6:
            times.append(times[-1] + self.sparse_interval_s)
        if times[-1] < total:  # the last frame closes the scan, so the resampled series spans it
            times.append(total)
        return np.round(np.array(times), 3)

    def slice_count_at(self, quantile: float) -> int:
        """The slice count at a quantile (0..1) of this protocol's patients."""
        return self.slice_counts[category_at(self.slice_count_probabilities, quantile)]

    @property
    def uniform(self) -> bool:
        return self.dense_interval_s == self.sparse_interval_s


@dataclass(frozen=True)
class Vendor:
    """How a perfusion package turns the series into maps (see vendor_maps.compute_vendor_maps)."""

    deconvolution: str  # "ssvd" (delay-sensitive), "bcsvd" or "osvd" (delay-insensitive)
    svd_threshold: float  # sSVD / bcSVD truncation (Tikhonov: lambda), relative to the largest singular value
    oscillation_index: float  # oSVD: the residue oscillation a voxel's truncation may reach (Wu et al. 2003)
    aif_choice: str  # "peak": highest-peak voxels; "early": earliest-arriving of the high-peak ones
    vof_scaling: bool  # rescale the AIF so its area equals the venous outflow's (partial-volume correction)
    smoothing_mm: float  # in-plane Gaussian sigma applied to every frame before deconvolution
    matrix_step: int  # 1: full matrix; 2: the map is computed on 2 x 2 blocks (a 128 matrix) and expanded
    tmax_definition: str  # "residue": the residue's peak, interpolated between samples; "frame": on the grid
    cbf_unit_scale: float  # stored CBF = ml/100g/min times this (uint16)
    cbv_unit_scale: float  # stored CBV = ml/100g times this (uint16)
    hu_window: tuple[float, float]  # baseline HU kept as tissue (CSF and bone outside)
    vessel_cbv_limit: float  # ml/100g above which a voxel is a vessel and masked out


@dataclass(frozen=True)
class Centre:
    name: str
    protocol: Protocol
    vendor: Vendor
    weight: float  # share of patients

    def describe(self) -> dict:
        return {"name": self.name, "protocol": asdict(self.protocol), "vendor": asdict(self.vendor)}


CENTRES = (
    # A: wide-coverage 1 s protocol, delay-insensitive oSVD on a 128 matrix, moderate smoothing.
    Centre("A", Protocol(slice_counts=(8, 16), slice_count_probabilities=(0.5, 0.5), slice_mm=(5.0,),
                         pixel_mm=(0.85, 0.95), dense_interval_s=1.0, dense_duration_s=(60, 60),
                         sparse_interval_s=1.0, total_duration_s=(44, 60), mas=(100, 200)),
           Vendor(deconvolution="osvd", svd_threshold=0.0, oscillation_index=0.035, aif_choice="early",
                  vof_scaling=True, smoothing_mm=3.0, matrix_step=2,
                  tmax_definition="residue", cbf_unit_scale=1.0, cbv_unit_scale=10.0,
                  hu_window=(15.0, 80.0), vessel_cbv_limit=10.0), 0.3),
    # B: a 4-row scanner's thick slabs at low dose, 1 s frames, delay-sensitive standard SVD, strong smoothing.
    Centre("B", Protocol(slice_counts=(2, 4), slice_count_probabilities=(0.4, 0.6), slice_mm=(10.0, 12.0),
                         pixel_mm=(0.8, 0.9), dense_interval_s=1.0, dense_duration_s=(60, 60),
                         sparse_interval_s=1.0, total_duration_s=(42, 50), mas=(60, 120)),
           Vendor(deconvolution="ssvd", svd_threshold=0.2, oscillation_index=0.0, aif_choice="peak",
                  vof_scaling=False, smoothing_mm=4.0, matrix_step=1,
                  tmax_definition="residue", cbf_unit_scale=1.0, cbv_unit_scale=10.0,
                  hu_window=(12.0, 80.0), vessel_cbv_limit=12.0), 0.2),
    # C: an "adaptive" protocol, dense 1.5 s frames over the first pass then 3 s, block-circulant SVD on a
    # 128 matrix with strong smoothing, Tmax in whole grid steps, CBV stored in 0.01 ml/100g. The smoothing is
    # calibrated on seeds 1-5 (`python -m experiments.centre_smoothing -centre C -values 3 4 5 6`): with fewer,
    # sparser frames and a fixed 20 % truncation, 3 mm read the low-flow core's CBF at about half the reference,
    # and the threshold baseline's Dice on this centre's lesion cases was 0.14 (4 mm 0.22, 5 mm 0.26, 6 mm 0.28).
    # 5 mm is the least that brings it within 0.06 of centre A's: no vendor ships maps on which its core rule
    # finds little.
    Centre("C", Protocol(slice_counts=(8, 16, 22), slice_count_probabilities=(0.4, 0.4, 0.2), slice_mm=(5.0,),
                         pixel_mm=(0.9, 1.0), dense_interval_s=1.5, dense_duration_s=(28, 34),
                         sparse_interval_s=3.0, total_duration_s=(48, 63), mas=(80, 150)),
           Vendor(deconvolution="bcsvd", svd_threshold=0.2, oscillation_index=0.0, aif_choice="peak",
                  vof_scaling=True, smoothing_mm=5.0, matrix_step=2,
                  tmax_definition="frame", cbf_unit_scale=1.0, cbv_unit_scale=100.0,
                  hu_window=(10.0, 80.0), vessel_cbv_limit=10.0), 0.25),
    # D: 4 or 8 slices of 8 to 10 mm, long 1 s series, Tikhonov-regularised circulant deconvolution without
    # VOF correction, strong smoothing: 2.5 mm gave the threshold baseline a Dice of 0.08 on this centre's lesion
    # cases of seeds 1-5 (4 mm 0.20, 5 mm 0.25; `-centre D -values 2.5 4 5`), for the same reason as C's.
    Centre("D", Protocol(slice_counts=(4, 8), slice_count_probabilities=(0.4, 0.6), slice_mm=(8.0, 10.0),
                         pixel_mm=(0.8, 1.0), dense_interval_s=1.0, dense_duration_s=(60, 60),
                         sparse_interval_s=1.0, total_duration_s=(52, 63), mas=(120, 250)),
           Vendor(deconvolution="tikhonov", svd_threshold=0.15, oscillation_index=0.0, aif_choice="early",
                  vof_scaling=False, smoothing_mm=5.0, matrix_step=1,
                  tmax_definition="residue", cbf_unit_scale=1.0, cbv_unit_scale=10.0,
                  hu_window=(15.0, 80.0), vessel_cbv_limit=10.0), 0.25),
)


def centre_at(quantile: float) -> Centre:
    """The centre at a quantile (0..1) of the patients, each centre's share its weight."""
    return CENTRES[category_at([c.weight for c in CENTRES], quantile)]


def centre_by_name(name: str) -> Centre:
    for centre in CENTRES:
        if centre.name == name:
            return centre
    raise KeyError(f"no phantom centre {name!r}; known: {', '.join(c.name for c in CENTRES)}")


# Image noise of one frame (HU, 80 kVp, soft-tissue kernel) at the reference dose, slice and pixel size.
# Quantum noise scales as 1 / sqrt(mAs x voxel volume) (e.g. Hsieh, Computed Tomography, 2nd ed., ch. 5), so
# a phantom written at a coarser matrix is less noisy per voxel, as a scan reconstructed on one would be.
# The reference level is the one free calibration constant of the acquisition: 7 HU at 100 mAs, 5 mm and
# 0.9 mm pixels (frames of 3 to 8 HU over the four protocols at 256 x 256, the low end of the
# 5-25 HU of clinical CTP frames: perfusion source images are reconstructed with smooth kernels), chosen so that
# the perfusion-threshold baseline scores near the published Dice 0.30 and |dV| 15 ml of ISLES 2018 (Hakim et
# al., Stroke 2021): noise is what most decides how well a threshold of the delivered maps finds the core. No learned
# model's score entered this choice.
REFERENCE_NOISE_HU, REFERENCE_MAS, REFERENCE_SLICE_MM, REFERENCE_PIXEL_MM = 7.0, 100.0, 5.0, 0.9


def frame_noise_hu(mas: float, slice_mm: float, pixel_mm: float) -> float:
    volume_ratio = (REFERENCE_SLICE_MM * REFERENCE_PIXEL_MM**2) / (slice_mm * pixel_mm**2)
    return REFERENCE_NOISE_HU * float(np.sqrt(REFERENCE_MAS / mas * volume_ratio))
