"""Automatic arterial input (AIF) and venous output (VOF) functions.

AIF, the way clinical packages pick it (e.g. Mouridsen et al., MRM 2006; Kudo et al. 2013 describe the
vendors' variants): among voxels of the search region (intracranial, away from bone so that partial volume
with the skull and its beam hardening cannot mimic a bolus), keep the strongest enhancers (top
`CANDIDATE_PERCENTILE` of peak enhancement), then the early ones (time to peak no later than the candidates'
median: veins peak late), and rank these by peak / full width at half maximum (a narrow, high first
pass). The AIF is the mean curve of the best `AIF_VOXELS`: averaging a few voxels limits noise, ranking
by height limits partial volume.

VOF: the largest-area curves that peak after the AIF (the venous sinus, wide and free of partial volume).
A partial-volumed AIF is too small, which scales CBF and CBV up; a first pass conserves indicator mass, so
the AIF's area should equal the VOF's: when the VOF's area is larger, the AIF is scaled up to it (never
down: a small VOF is itself partial-volumed). Capped at `MAX_VOF_SCALE`. When the scan ends before the venous
first pass has fallen to `first_pass.FIT_END_FRACTION` of its peak, the summed area is short; both first
passes' areas then come from gamma-variate fits (`first_pass`), and when the VOF was cut too early to fit
(before or just after its peak) the AIF is left as measured and reported as unchecked.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from isles_pipeline.errors import CaseError
from isles_pipeline.perfusion import aif_quality
from isles_pipeline.perfusion.baseline import full_width_half_maximum
from isles_pipeline.perfusion.first_pass import FIT_END_FRACTION, fit_first_pass

CANDIDATE_PERCENTILE = 99.0
AIF_VOXELS = 8
VOF_VOXELS = 8
MIN_AIF_TO_TISSUE = 3.0  # an arterial peak is several times the median tissue peak
MIN_AIF_SNR = 10.0  # and far above the noise
VOF_MIN_LAG_S = 2.0
MAX_VOF_SCALE = 3.0


@dataclass
class ArterialInput:
    """The AIF (and VOF) a deconvolution used, on the uniform grid; curves are enhancement in HU."""

    grid_s: np.ndarray
    aif: np.ndarray  # as measured (mean of the chosen voxels)
    aif_voxels: np.ndarray  # (K, 3) z, y, x indices
    vof: np.ndarray | None = None
    vof_voxels: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), int))
    scale: float = 1.0  # the AIF used is aif * scale (VOF area correction)
    vof_area: str | None = None  # how the areas were compared: "summed", "gamma-variate fit" or "cut short"
    baseline_frames: int = 1
    quality: dict = field(default_factory=dict)  # `aif_quality.quality_report` of the chosen AIF

    @property
    def scaled_aif(self) -> np.ndarray:
        return self.aif * self.scale

    def to_json(self) -> dict:
        def round_list(values) -> list[float]:
            return [round(float(x), 4) for x in values]

        return {
            "grid_s": round_list(self.grid_s),
            "aif_hu": round_list(self.aif),
            "aif_voxels_zyx": self.aif_voxels.tolist(),
            "vof_hu": None if self.vof is None else round_list(self.vof),
            "vof_voxels_zyx": self.vof_voxels.tolist(),
            "aif_scale": float(self.scale),
            "aif_peak_hu": float(self.aif.max()),
            "aif_area_hu_s": float(self.aif.sum() * (self.grid_s[1] - self.grid_s[0])) if len(self.grid_s) > 1
            else None,
            "baseline_frames": int(self.baseline_frames),
            "quality": self.quality,
        }


def select_arterial_input(enhancement: np.ndarray, search: np.ndarray, grid_s: np.ndarray, noise_sd: float,
                          baseline_frames: int = 1, vof_correction: bool = True,
                          name: str = "series", measured_until_s: float | None = None) -> ArterialInput:
    """Pick AIF and VOF from (N, Z, Y, X) baseline-subtracted curves inside the boolean `search` mask.

    Strong voxels that fail `aif_quality`'s shape checks (too narrow, brighter than blood, a jump between
    two frames, peaking after the tissue) are no candidates; the chosen AIF's quality is in `.quality`.
    measured_until_s: the last measured time when the scan ends with bridged (copied) frames; the areas of
    the VOF rescaling stop there. Raises CaseError when no voxel enhances like an artery.
    """
    search_index = np.flatnonzero(search.ravel())
    if search_index.size == 0:
        raise CaseError(name, "no arterial voxel found (no intracranial soft tissue to search)")
    flat = enhancement.reshape(enhancement.shape[0], -1)
    peak = flat.max(axis=0)[search_index]  # the curves themselves are only read for the few candidates
    step = float(grid_s[1] - grid_s[0]) if len(grid_s) > 1 else 1.0
    tissue_peak = float(np.median(peak))
    floor = max(MIN_AIF_TO_TISSUE * tissue_peak, MIN_AIF_SNR * noise_sd, 1e-6)
    tissue = peak < floor
    # the tissue's mean curve, for the timing check: every 8th tissue voxel is as good a mean and 8x cheaper
    tissue_curve = flat[:, search_index[tissue][::8]].mean(axis=1) if tissue.any() else None
    tissue_peak_s = None if tissue_curve is None else float(np.argmax(tissue_curve) * step)
    bright = np.flatnonzero(peak >= floor)
    if bright.size == 0:
        raise CaseError(name, f"no arterial voxel found: the strongest enhancement {peak.max():.3g} HU is not "
                              f"above {floor:.3g} HU (3x the median tissue peak, 10x the noise)")
    bright_curves = flat[:, search_index[bright]]
    bolus_like = aif_quality.plausible(bright_curves, step)  # a venous curve too may peak after the tissue
    shaped = bolus_like & aif_quality.plausible(bright_curves, step, tissue_peak_s)
    # the percentile leaves out what is not shaped like a first pass: after motion, bone outnumbers arteries
    kept = np.ones(peak.size, bool)
    kept[bright[~shaped]] = False
    threshold = np.percentile(peak[kept], CANDIDATE_PERCENTILE)
    pool = bright[shaped] if shaped.any() else bright
    strong = pool[peak[pool] >= min(threshold, peak[pool].max())]
    curves = flat[:, search_index[strong]]  # (N, candidates); below, indices are into `strong`
    time_to_peak = curves.argmax(axis=0)
    early = np.flatnonzero(time_to_peak <= np.median(time_to_peak))
    width = np.maximum(full_width_half_maximum(curves[:, early]), 1)
    best = early[np.argsort(-(peak[strong[early]] / width), kind="stable")[:AIF_VOXELS]]
    aif = curves[:, best].mean(axis=1)
    result = ArterialInput(np.asarray(grid_s, float), aif, _positions(search_index[strong[best]], search.shape),
                           baseline_frames=baseline_frames)

    aif_peak_time = int(np.argmax(aif))
    # the VOF: strong, shaped like a bolus (not bone moving in), later than the AIF
    venous_pool = bright[bolus_like] if bolus_like.any() else bright
    venous_curves = flat[:, search_index[venous_pool]]
    late = np.flatnonzero((venous_curves.argmax(axis=0) - aif_peak_time) * step >= VOF_MIN_LAG_S)
    if late.size:
        area = venous_curves[:, late].sum(axis=0)
        venous = late[np.argsort(-area, kind="stable")[:VOF_VOXELS]]
        result.vof = venous_curves[:, venous].mean(axis=1)
        result.vof_voxels = _positions(search_index[venous_pool[venous]], search.shape)
        measured = len(grid_s) if measured_until_s is None else int(np.searchsorted(grid_s, measured_until_s,
                                                                                     side="right"))
        ratio, result.vof_area = venous_to_arterial_area(aif[:measured], result.vof[:measured], step)
        if vof_correction and ratio is not None:
            result.scale = float(np.clip(ratio, 1.0, MAX_VOF_SCALE))
    result.quality = aif_quality.quality_report(aif, curves[:, best], step, tissue_peak_s, result.scale, noise_sd,
                                                bright.size, int((~shaped).sum()), result.vof_area)
    return result


def venous_to_arterial_area(aif: np.ndarray, vof: np.ndarray, step_s: float) -> tuple[float | None, str]:
    """The VOF's first-pass area over the AIF's, and how it was measured: summed when the venous first pass is
    (nearly) over by the scan's end, from gamma-variate fits when it was cut after its peak, None ("cut short")
    when it was cut too early for a fit."""
    if vof[-1] <= FIT_END_FRACTION * vof.max():
        return float(vof.sum() / max(aif.sum(), 1e-12)), "summed"
    arterial, venous = fit_first_pass(aif, step_s), fit_first_pass(vof, step_s)
    if arterial is None or venous is None:
        return None, "cut short"
    return venous.area / arterial.area, "gamma-variate fit"


def _positions(flat_index: np.ndarray, shape) -> np.ndarray:
    """(K, 3) z, y, x indices of flat voxel indices."""
    return np.stack(np.unravel_index(flat_index, shape), axis=1)
