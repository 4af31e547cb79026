"""The conventional perfusion-threshold core: relative CBF < 30 % inside Tmax > 6 s.

This is the ISLES 2018 organisers' style of baseline (scored Dice 0.30 on the test set) and the rule most
commercial software uses (e.g. RAPID: rCBF < 30 % for the core, Tmax > 6 s for the hypoperfusion).
Relative CBF is taken against the mean CBF of perfused tissue that is not hypoperfused (Tmax <= 6 s), a
stand-in for the contralateral hemisphere that needs no knowledge of the lesion side.
"""
from __future__ import annotations

import numpy as np


def threshold_core(cbf: np.ndarray, tmax: np.ndarray, rcbf_threshold: float = 0.3,
                   tmax_threshold_s: float = 6.0) -> np.ndarray:
    """Boolean core mask of a case from its CBF and Tmax maps (any units of CBF; Tmax in seconds)."""
    cbf = np.asarray(cbf, np.float64)
    tmax = np.asarray(tmax, np.float64)
    if cbf.shape != tmax.shape:
        raise ValueError(f"CBF {cbf.shape} and Tmax {tmax.shape} differ in shape")
    tissue = cbf > 0
    reference_region = tissue & (tmax <= tmax_threshold_s)
    if not reference_region.any():
        return np.zeros(cbf.shape, bool)
    reference = float(cbf[reference_region].mean())
    return tissue & (cbf < rcbf_threshold * reference) & (tmax > tmax_threshold_s)
