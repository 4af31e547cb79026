"""Stratified draws of a seed's patients, so that any seed's cases cover the population.

A phantom seed is a sample of patients. Drawn independently, a seed's 40 cases (about 30 with a lesion) had a
median lesion volume of 9.5 to 30.4 ml over five seeds (documentation/results/phantom-realism-over-seeds.md,
section 4): one seed's cases described the seed, not the population. The draws that decide most of a lesion's
size (the stroke's severity, which orders the occlusion site and the collateral status; the centre and its
slice count, so the slab's coverage; where the slab sits; the CTP-to-MRI interval; reperfusion; the M2 division)
are therefore quantiles from a scrambled Sobol' sequence (scipy.stats.qmc; Owen scrambling seeded by the
phantom's seed), one point per patient. Every patient's quantiles are still uniform, so the population is
unchanged; but the first n patients of any seed fill each dimension evenly (exactly one per 1/n interval when n
is a power of two). The rest of a patient (head, bolus, noise, emboli, ...) is drawn independently as before.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.stats import qmc

# The stratified dimensions, in the order of a patient's quantile vector.
STRATIFIED = ("severity", "centre", "slice_count", "slab_position", "interval", "reperfusion", "m2_division")


@lru_cache(maxsize=64)
def _sobol_points(seed: int, split_code: int, exponent: int) -> np.ndarray:
    """The first 2**exponent points of a seed's split's scrambled Sobol' sequence (a prefix of any longer run)."""
    sampler = qmc.Sobol(len(STRATIFIED), scramble=True, seed=np.random.default_rng([seed, split_code, 0]))
    return sampler.random_base2(exponent)


def patient_quantiles(seed: int, split_code: int, patient_number: int) -> dict[str, float]:
    """The stratified quantiles (each in [0, 1)) of one patient of a seed's split; patients count from 1."""
    exponent = max(int(np.ceil(np.log2(patient_number))), 5)
    point = _sobol_points(seed, split_code, exponent)[patient_number - 1]
    return dict(zip(STRATIFIED, (float(u) for u in point)))


def category_at(shares, quantile: float) -> int:
    """Index of the category holding a quantile (0..1) when categories take these shares (any positive scale)."""
    cumulative = np.cumsum(shares, dtype=np.float64)
    return min(int(np.searchsorted(cumulative / cumulative[-1], quantile, side="right")), len(cumulative) - 1)


def independent_quantiles(rng: np.random.Generator) -> dict[str, float]:
    """Quantiles for a patient drawn alone (a single test case, an ISLES 2024 subject)."""
    return dict(zip(STRATIFIED, (float(u) for u in rng.random(len(STRATIFIED)))))
