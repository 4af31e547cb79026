"""Clinical volumes as RAPID-style software reports them, from computed maps.

Why: a clinician reads a CTP study as three numbers, not as maps. The rules, named with their sources:
- ischaemic core: relative CBF < 30 % of the mean CBF of the healthy hemisphere (Campbell et al., Stroke 2011,
  "Cerebral blood flow is the optimal CT perfusion parameter for assessing infarct core"; the RAPID threshold
  used in DEFUSE 3);
- hypoperfusion (critically hypoperfused tissue): Tmax > 6 s;
- mismatch volume = hypoperfusion - core, mismatch ratio = hypoperfusion / core;
- DEFUSE 3 target mismatch (Albers et al., NEJM 2018;378:708-718): core < 70 ml, ratio >= 1.8, mismatch >= 15 ml.
The healthy hemisphere is the half of the brain (split at the valid voxels' centre along x, the image's
left-right axis) with less Tmax > 6 s tissue. The volumes are only as good as the maps: with an implausible
AIF they are flagged, not dropped.
"""
from __future__ import annotations

import numpy as np

CORE_RCBF = 0.30
HYPOPERFUSION_TMAX_S = 6.0
DEFUSE3 = {"core_below_ml": 70.0, "ratio_at_least": 1.8, "mismatch_at_least_ml": 15.0}
RULE = ("core: rCBF < 30 % of the healthy hemisphere's mean CBF (Campbell et al., Stroke 2011); hypoperfusion: "
        "Tmax > 6 s; mismatch = hypoperfusion - core, ratio = hypoperfusion / core; target mismatch: core < 70 ml, "
        "ratio >= 1.8, mismatch >= 15 ml (DEFUSE 3, Albers et al., NEJM 2018)")


def healthy_side(tmax: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(Z, Y, X) bool: the valid voxels of the hemisphere (x half) with fewer Tmax > 6 s voxels."""
    columns = np.nonzero(valid)[2]
    if columns.size == 0:
        return valid.copy()
    middle = float(columns.mean())
    x = np.arange(valid.shape[2])[None, None, :]
    halves = [valid & (x < middle), valid & (x >= middle)]
    late = [int((tmax[h] > HYPOPERFUSION_TMAX_S).sum()) for h in halves]
    return halves[int(np.argmin(late))]


def lesion_masks(cbf: np.ndarray, tmax: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(core, hypoperfusion, reference CBF): the two rules' voxels and the healthy hemisphere's mean CBF."""
    reference = healthy_side(tmax, valid)
    mean_cbf = float(cbf[reference].mean()) if reference.any() else 0.0
    core = valid & (cbf < CORE_RCBF * mean_cbf)
    hypoperfusion = valid & (tmax > HYPOPERFUSION_TMAX_S)
    return core, hypoperfusion, mean_cbf


def clinical_volumes(cbf: np.ndarray, tmax: np.ndarray, valid: np.ndarray, spacing_zyx) -> dict:
    """Core, hypoperfusion and mismatch (ml), the mismatch ratio, the DEFUSE 3 profile, the rule text."""
    return volumes_of(*lesion_masks(cbf, tmax, valid), spacing_zyx)


def volumes_of(core: np.ndarray, hypoperfusion: np.ndarray, mean_cbf: float, spacing_zyx) -> dict:
    """`clinical_volumes` from masks already made by `lesion_masks` (the command also draws them)."""
    voxel_ml = float(np.prod(spacing_zyx)) / 1000.0
    core_ml, hypo_ml = float(core.sum()) * voxel_ml, float(hypoperfusion.sum()) * voxel_ml
    mismatch_ml = max(hypo_ml - core_ml, 0.0)
    ratio = hypo_ml / core_ml if core_ml > 0 else None
    target = (core_ml < DEFUSE3["core_below_ml"] and mismatch_ml >= DEFUSE3["mismatch_at_least_ml"]
              and (ratio is None or ratio >= DEFUSE3["ratio_at_least"]))
    return {"core_ml": round(core_ml, 2), "hypoperfusion_ml": round(hypo_ml, 2), "mismatch_ml": round(mismatch_ml, 2),
            "mismatch_ratio": None if ratio is None else round(ratio, 2), "target_mismatch": bool(target),
            "reference_cbf": round(mean_cbf, 2), "rule": RULE}
