"""The stroke: an occlusion, the hypoperfusion it causes, the CTP core, and the later DWI lesion (the OT).

ISLES 2018 holds acute anterior-circulation large-vessel occlusions (Hakim et al., Stroke 2021). Here:
- The occlusion site (ICA terminus, M1, one M2 division, A2) sets the affected territory.
- Collateral status c (0 poor .. 1 good) sets how much flow reaches the territory from its borders
  (leptomeningeal collaterals enter from neighbouring territories, so the deep centre is worst off, and the
  lenticulostriate basal ganglia have none), the bolus delay and dispersion, and how fast the core grows.
- Residual flow fraction q (relative CBF): core at CTP where q < 0.3 (the rCBF < 30 % rule that the
  threshold baseline applies to the maps), penumbra where the delay exceeds 6 s.
- The DWI lesion, imaged an unobserved interval after the CTP, is tissue whose flow is below a threshold
  that rises with that interval, faster with poor collaterals (after the flow-duration thresholds of
  Jones et al., J Neurosurg 1981), modulated by an unobserved vulnerability field. Some patients reperfuse
  after the CTP: their DWI lesion is smaller than the CTP core. Some carry emboli elsewhere, visible on
  perfusion or not. MR is registered to CT within a few millimetres.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, stats

from isles_pipeline.phantom.anatomy import ACA, DEEP_GREY, MCA, OLD_INFARCT, Anatomy, in_plane_box
from isles_pipeline.phantom.fields import smooth_field, voxel_sigma
from isles_pipeline.phantom.population import category_at

# CTP-to-MRI interval in ISLES 2018: median 36 min, IQR 25-79 (Hakim et al. 2021). A log-normal fitted to
# those three quantiles by least squares in log space: mu = mean(ln 25, ln 36, ln 79) = 3.724, sigma =
# (ln 79 - ln 25) / (2 x 0.6745) = 0.853; its quantiles are 23, 41 and 74 min.
INTERVAL_LOG_MEAN, INTERVAL_LOG_SD = 3.724, 0.853
CORE_RCBF = 0.30
NO_OCCLUSION_SHARE = 0.05  # patients whose slabs show no occlusion (a stroke mimic, or a lesion out of view)
OCCLUSIONS = ("ICA", "M1", "M2", "A2")
OCCLUSION_PROBABILITIES = (0.12, 0.38, 0.42, 0.08)
SEVERITY_RANK = {"A2": 0, "M2": 1, "M1": 2, "ICA": 3}  # by the territory an occlusion leaves unsupplied
# How far collaterals reach, relative: a branch occlusion leaves a smaller territory for them to cross.
BRANCH_REACH = {"ICA": 1.0, "M1": 0.8, "M2": 0.45, "A2": 0.45, "none": 1.0}
# The two lesion-size parameters, calibrated on the population rather than one seed, fitted to the published
# ISLES 2018 lesion volumes (median 15.2 ml, IQR 5.7 to 45; Hakim et al., Stroke 2021). Collaterals reach
# COLLATERAL_REACH_MM[0] + COLLATERAL_REACH_MM[1] x c mm into the territory (first 15 + 50 c: lesions too small,
# pooled median 10 ml; then 10 + 40 c on seeds 1-5 x 40 cases; now 10.5 + 40.5 c on the stratified population,
# seeds 1-5 x 40 cases: pooled quartiles 4.9 / 14.0 / 40.2 ml, per-seed medians 10.1-23.6 ml); the
# infarction threshold rises by at most INFARCT_THRESHOLD_RISE after the CTP (was 0.22: DWI lesions half again
# the CTP core, which the threshold baseline cannot see). No learned model's score entered.
COLLATERAL_REACH_MM = (10.5, 40.5)
INFARCT_THRESHOLD_RISE = 0.12


@dataclass(frozen=True)
class Stroke:
    """Per-patient stroke parameters (mm in head coordinates, times in minutes)."""

    kind: str  # "none" or the occlusion site
    side: float  # -1 or +1 (sign of x)
    collaterals: float  # 0 poor .. 1 good
    m2_division: float  # M2: the y (mm) that splits the MCA territory; which half is the sign
    m2_upper: bool
    interval_min: float  # CTP to MRI, unobserved
    reperfused: bool
    emboli: tuple[tuple[float, float, float, float, bool], ...]  # (x, y, z, radius mm, visible on CTP)
    misregistration_mm: tuple[float, float]

    @staticmethod
    def draw(rng: np.random.Generator, z_range_mm: tuple[float, float], quantiles: dict[str, float]) -> "Stroke":
        """The stroke of a patient; its size-deciding draws come as quantiles (`population.STRATIFIED`)."""
        kind, collaterals = occlusion_and_collaterals_at(quantiles["severity"])
        side = float(rng.choice([-1.0, 1.0]))
        emboli = []
        if kind != "none" and rng.random() < 0.25:  # multifocal emboli, mostly in the same hemisphere
            for _ in range(int(rng.integers(1, 5))):
                s = side if rng.random() < 0.8 else -side
                emboli.append((float(s * rng.uniform(20, 55)), float(rng.uniform(-50, 50)),
                               float(rng.uniform(*z_range_mm)), float(rng.uniform(2.5, 7)), bool(rng.random() < 0.5)))
        return Stroke(
            kind=kind,
            side=side,
            collaterals=collaterals,
            m2_division=-10.0 + 25.0 * quantiles["m2_division"],
            m2_upper=bool(rng.random() < 0.5),
            interval_min=float(np.clip(stats.lognorm.ppf(quantiles["interval"], INTERVAL_LOG_SD,
                                                         scale=np.exp(INTERVAL_LOG_MEAN)), 8, 400)),
            reperfused=quantiles["reperfusion"] < 0.12,
            emboli=tuple(emboli),
            misregistration_mm=(float(rng.uniform(-2.5, 2.5)), float(rng.uniform(-2.5, 2.5))),
        )


def occlusion_and_collaterals_at(severity: float) -> tuple[str, float]:
    """The occlusion site and collateral status at a severity quantile (0..1) of the patients.

    One quantile orders both, mildest first: no occlusion, then the sites from the smallest territory to the
    largest in OCCLUSION_PROBABILITIES' proportions, and within a site from good collaterals to poor. The
    marginals are unchanged (each site its share; collaterals Beta(3, 2) whatever the site), but lesion size
    becomes nearly monotonic in one number, which a stratified seed then spreads evenly.
    """
    kinds = ("none",) + tuple(sorted(OCCLUSIONS, key=lambda kind: SEVERITY_RANK[kind]))
    shares = [NO_OCCLUSION_SHARE] + [(1 - NO_OCCLUSION_SHARE) * OCCLUSION_PROBABILITIES[OCCLUSIONS.index(kind)]
                                     for kind in kinds[1:]]
    index = category_at(shares, severity)
    below = float(np.sum(shares[:index]))
    within = float(np.clip((severity - below) / shares[index], 0.0, 1.0))
    return kinds[index], float(stats.beta.ppf(1.0 - within, 3.0, 2.0))


@dataclass
class Lesion:
    flow_fraction: np.ndarray  # q: relative CBF (1 normal)
    volume_fraction: np.ndarray  # relative CBV
    delay_s: np.ndarray  # extra bolus arrival delay
    dispersion_s: np.ndarray  # mean transit of the vascular dispersion kernel
    core: np.ndarray  # bool, q < 0.3 at CTP
    penumbra: np.ndarray  # bool, delay > 6 s outside the core
    dwi: np.ndarray  # bool, the OT
    damage: np.ndarray  # float32 0..1, how far below its infarction threshold (DWI brightness)


def affected_territory(stroke: Stroke, anatomy: Anatomy, y_mm: np.ndarray) -> np.ndarray:
    own_side = anatomy.hemisphere == stroke.side
    t = anatomy.territory
    if stroke.kind == "ICA":
        return own_side & ((t == MCA) | (t == ACA))
    if stroke.kind == "M1":
        return own_side & (t == MCA)
    if stroke.kind == "M2":
        upper = y_mm > stroke.m2_division
        return own_side & (t == MCA) & (upper if stroke.m2_upper else ~upper) & (anatomy.labels != DEEP_GREY)
    if stroke.kind == "A2":
        return own_side & (t == ACA)
    return np.zeros(t.shape, bool)


def build_lesion(rng, stroke: Stroke, anatomy: Anatomy, coords, spacing_zyx) -> Lesion:
    z, y, x = coords
    shape = anatomy.labels.shape
    parenchyma = anatomy.labels >= 3
    c = stroke.collaterals
    q = np.ones(shape, np.float32)
    delay = np.clip(0.6 + 0.4 * smooth_field(rng, shape, voxel_sigma(15, spacing_zyx)), 0, 1.5).astype(np.float32)
    dispersion = np.full(shape, 0.5, np.float32)
    territory = affected_territory(stroke, anatomy, y) & parenchyma
    heterogeneity = smooth_field(rng, shape, voxel_sigma(5, spacing_zyx))
    if territory.any():
        # distance (mm, in-plane) from the healthy brain, whence the collaterals come
        healthy = parenchyma & ~territory
        # (computed on the parenchyma's box, which holds every healthy voxel; far is far enough outside it)
        rows, cols = in_plane_box(parenchyma, 0)
        border = np.full(shape, 1e3)  # mm: "far", without overflowing the logistic below
        border[:, rows, cols] = ndimage.distance_transform_edt(~healthy[:, rows, cols],
                                                               sampling=(1e4,) + tuple(spacing_zyx[1:]))
        # Collaterals reach `reach_mm` into the territory at the penumbral flow level; deeper, flow falls to
        # the floor over a few millimetres (the core). Lenticulostriate end arteries get no collaterals.
        # (a branch occlusion leaves less room)
        reach_mm = (COLLATERAL_REACH_MM[0] + COLLATERAL_REACH_MM[1] * c) * BRANCH_REACH[stroke.kind]
        floor, collateral_flow = 0.03 + 0.1 * c, 0.5 + 0.35 * c
        inside = 1.0 / (1.0 + np.exp(-(reach_mm - border) / 5.0))
        supplied = (floor + (collateral_flow - floor) * inside) * (1 + 0.12 * heterogeneity)
        if stroke.kind in ("ICA", "M1"):
            supplied = np.where(anatomy.labels == DEEP_GREY, supplied * 0.45, supplied)
        q = np.where(territory, np.clip(supplied, 0.02, 1.0), q).astype(np.float32)
        arrival = (2.5 + 7.0 * (1 - c)) * (0.6 + (1 - q))
        delay = np.where(territory, delay + arrival, delay).astype(np.float32)
        dispersion = np.where(territory, 0.5 + (1.0 + 3.0 * (1 - c)) * (1 - q), dispersion).astype(np.float32)
    emboli_dwi = np.zeros(shape, bool)
    for ex, ey, ez, radius, visible in stroke.emboli:
        rough = 0.3 * smooth_field(rng, shape, voxel_sigma(3, spacing_zyx))
        blob = (np.sqrt((x - ex) ** 2 + (y - ey) ** 2 + (z - ez) ** 2) / radius + rough < 1) & parenchyma
        emboli_dwi |= blob
        if visible:
            q = np.where(blob, np.minimum(q, rng.uniform(0.1, 0.35)), q).astype(np.float32)
            delay = np.where(blob, np.maximum(delay, rng.uniform(4, 9)), delay).astype(np.float32)
    q = np.where(anatomy.labels == OLD_INFARCT, 1.0, q).astype(np.float32)  # its own low flow is anatomy
    # Autoregulation keeps or raises CBV in moderately hypoperfused tissue; it collapses in the core.
    volume = np.clip(0.35 + 1.8 * q, 0, 1.2 + 0.1 * c).astype(np.float32)
    volume = np.where(q >= 0.999, 1.0, volume).astype(np.float32)

    core = territory & (q < CORE_RCBF)
    penumbra = territory & (delay > 6.0) & ~core
    # Infarction threshold at the MRI: rises from 0.3 with the interval, faster with poor collaterals.
    minutes = stroke.interval_min
    time_constant = 40 + 200 * c
    threshold = CORE_RCBF + INFARCT_THRESHOLD_RISE * (1 - np.exp(-minutes / time_constant))
    if stroke.reperfused:
        threshold = CORE_RCBF - float(rng.uniform(0.06, 0.15))
    vulnerability = 0.06 * smooth_field(rng, shape, voxel_sigma(4, spacing_zyx))
    margin = threshold - (q + vulnerability)
    dwi = territory & (margin > 0)
    dwi |= emboli_dwi
    damage = np.clip(margin / 0.25, 0, 1).astype(np.float32)
    damage = np.where(emboli_dwi & (damage == 0), 0.5, damage).astype(np.float32)
    shift = (0.0, stroke.misregistration_mm[1] / spacing_zyx[1], stroke.misregistration_mm[0] / spacing_zyx[2])
    dwi = (_shifted(dwi.astype(np.float32), shift) > 0.5) & parenchyma
    damage = _shifted(damage, shift) * dwi
    return Lesion(q, volume, delay, dispersion, core, penumbra, dwi, damage.astype(np.float32))


def _shifted(array: np.ndarray, shift: tuple[float, float, float]) -> np.ndarray:
    """ndimage.shift (linear, zero outside) of an array that is zero outside a small box, computed on that box
    widened by the shift: the same values, without interpolating the empty rest of the slab."""
    margin = int(np.ceil(max(abs(shift[1]), abs(shift[2])))) + 1
    rows, cols = in_plane_box(array != 0, margin)
    out = np.zeros_like(array)
    out[:, rows, cols] = ndimage.shift(array[:, rows, cols], shift, order=1)
    return out
