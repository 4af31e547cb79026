"""A seed's patients are stratified: each size-deciding draw keeps its population distribution, and the first n
patients of any seed fill it evenly (an independent sample of 30 misses by a KS distance of ~0.25)."""
from __future__ import annotations

import numpy as np
from scipy import stats

from isles_pipeline.phantom.centres import CENTRES, centre_at
from isles_pipeline.phantom.lesion import (
    NO_OCCLUSION_SHARE,
    OCCLUSION_PROBABILITIES,
    OCCLUSIONS,
    occlusion_and_collaterals_at,
)
from isles_pipeline.phantom.population import STRATIFIED, category_at, independent_quantiles, patient_quantiles


def _quantiles(seed, count):
    return np.array([[patient_quantiles(seed, 1, k)[name] for name in STRATIFIED] for k in range(1, count + 1)])


def test_quantiles_are_repeatable_in_range_and_differ_between_seeds():
    first = _quantiles(3, 50)
    assert np.array_equal(first, _quantiles(3, 50))
    assert first.min() >= 0 and first.max() < 1
    assert not np.allclose(first, _quantiles(4, 50))
    assert not np.allclose(_quantiles(3, 5), np.array([[patient_quantiles(3, 2, k)[n] for n in STRATIFIED]
                                                      for k in range(1, 6)]))  # TESTING is another sample


def test_every_prefix_of_a_seed_fills_each_dimension_evenly():
    for seed in (1, 7, 21, 1234):
        for count in (10, 28, 60):
            sample = _quantiles(seed, count)
            for column, name in enumerate(STRATIFIED):
                distance = stats.kstest(sample[:, column], "uniform").statistic
                assert distance < 2.0 / count + 0.04, (seed, count, name, distance)
    independent = np.random.default_rng(0).random((28, len(STRATIFIED)))
    assert max(stats.kstest(column, "uniform").statistic for column in independent.T) > 2.0 / 28 + 0.04


def test_severity_keeps_each_sites_share_and_the_collateral_distribution():
    grid = (np.arange(20000) + 0.5) / 20000
    drawn = [occlusion_and_collaterals_at(u) for u in grid]
    kinds = np.array([kind for kind, _ in drawn])
    collaterals = np.array([c for _, c in drawn])
    assert abs(np.mean(kinds == "none") - NO_OCCLUSION_SHARE) < 1e-3
    for kind, share in zip(OCCLUSIONS, OCCLUSION_PROBABILITIES):
        assert abs(np.mean(kinds == kind) - (1 - NO_OCCLUSION_SHARE) * share) < 1e-3
        within = collaterals[kinds == kind]
        assert stats.kstest(within, stats.beta(3.0, 2.0).cdf).statistic < 0.01
        severities = grid[kinds == kind]
        assert np.all(np.diff(within[np.argsort(severities)]) <= 0)  # poorer collaterals, more severe
    ranks = [OCCLUSIONS.index(k) for k in kinds[kinds != "none"]]
    assert ranks[0] == OCCLUSIONS.index("A2") and ranks[-1] == OCCLUSIONS.index("ICA")


def test_centres_and_categories_take_their_shares():
    grid = (np.arange(10000) + 0.5) / 10000
    names = np.array([centre_at(u).name for u in grid])
    weights = np.array([c.weight for c in CENTRES])
    for centre, weight in zip(CENTRES, weights / weights.sum()):
        assert abs(np.mean(names == centre.name) - weight) < 1e-3
    assert [category_at((1, 3), u) for u in (0.0, 0.24, 0.26, 0.999999, 1.0)] == [0, 0, 1, 1, 1]
    alone = independent_quantiles(np.random.default_rng(5))
    assert set(alone) == set(STRATIFIED) and all(0 <= u < 1 for u in alone.values())
