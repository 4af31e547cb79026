"""Bootstrap intervals of a mean and of a paired difference: reproducible, sensible width, NaN handling."""
import numpy as np
import pytest

from isles_pipeline.evaluation.statistics import bootstrap_mean_ci, paired_difference_ci


def test_interval_matches_the_normal_approximation_on_a_large_sample():
    values = np.random.default_rng(3).normal(0.6, 0.2, 400)
    ci = bootstrap_mean_ci(values)
    half_width = 1.96 * values.std(ddof=1) / np.sqrt(values.size)
    assert ci["mean"] == pytest.approx(values.mean())
    assert ci["ci_low"] < ci["mean"] < ci["ci_high"]
    assert ci["ci_high"] - ci["mean"] == pytest.approx(half_width, rel=0.15)
    assert ci["mean"] - ci["ci_low"] == pytest.approx(half_width, rel=0.15)
    assert bootstrap_mean_ci(values) == ci  # fixed seed: the same table every run


def test_undefined_values_are_left_out_and_counted_and_small_samples_have_no_interval():
    ci = bootstrap_mean_ci([0.2, None, float("nan"), 0.4])
    assert ci["mean"] == pytest.approx(0.3) and ci["n"] == 2 and ci["n_undefined"] == 2
    assert 0.2 <= ci["ci_low"] <= ci["ci_high"] <= 0.4
    assert bootstrap_mean_ci([0.5])["ci_low"] is None and bootstrap_mean_ci([0.5])["mean"] == 0.5
    assert bootstrap_mean_ci([])["mean"] is None
    assert bootstrap_mean_ci([0.7, 0.7, 0.7])[("ci_low")] == 0.7


def test_paired_difference_removes_the_shared_case_to_case_spread():
    rng = np.random.default_rng(0)
    case_difficulty = rng.uniform(0.1, 0.9, 12)
    first = case_difficulty + 0.05 + rng.normal(0, 0.005, 12)
    second = case_difficulty
    paired = paired_difference_ci(list(first), list(second))
    assert paired["mean_difference"] == pytest.approx(0.05, abs=0.005)
    assert paired["ci_low"] > 0 and paired["interval_includes_zero"] is False
    unpaired_width = bootstrap_mean_ci(first)["ci_high"] - bootstrap_mean_ci(first)["ci_low"]
    assert paired["ci_high"] - paired["ci_low"] < unpaired_width / 5
    noise = paired_difference_ci(list(second + rng.normal(0, 0.05, 12)), list(second))
    assert noise["interval_includes_zero"] is True


def test_paired_difference_skips_cases_undefined_in_either_and_needs_equal_lengths():
    paired = paired_difference_ci([1.0, None, 3.0, 5.0], [0.0, 2.0, float("nan"), 4.0])
    assert paired["n"] == 2 and paired["n_undefined"] == 2 and paired["mean_difference"] == 1.0
    with pytest.raises(ValueError, match="same cases"):
        paired_difference_ci([1.0], [1.0, 2.0])
