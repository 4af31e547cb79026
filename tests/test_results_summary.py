"""Results tables: lesion cases and lesion-free cases apart, so empty/empty cases cannot lift a mean."""
import pytest

from isles_pipeline.evaluation.summary import compare_methods, summarize_cases
from isles_pipeline.evaluation.tables import NO_EVIDENCE, comparison_table, summary_table


def _case(dice, reference_ml, predicted_ml, hd95=3.0):
    return {"dice": dice, "hd95_mm": hd95, "abs_volume_diff_ml": abs(reference_ml - predicted_ml),
            "precision": 1.0, "recall": 1.0, "lesion_f1": 1.0, "lesion_count_diff": 0,
            "reference_volume_ml": reference_ml, "predicted_volume_ml": predicted_ml}


METHOD = {"a": _case(0.5, 10.0, 8.0), "b": _case(0.7, 20.0, 25.0), "c": _case(1.0, 0.0, 0.0, 0.0),
          "d": _case(1.0, 0.0, 0.0, 0.0), "e": _case(0.0, 0.0, 1.5, None)}
BASELINE = {"a": _case(0.1, 10.0, 2.0), "b": _case(0.2, 20.0, 3.0), "c": _case(1.0, 0.0, 0.0, 0.0),
            "d": _case(0.0, 0.0, 0.5, None), "e": _case(0.0, 0.0, 2.5, None)}


def test_empty_cases_do_not_enter_the_lesion_means():
    summary = summarize_cases(METHOD)
    lesion, free = summary["lesion_cases"], summary["lesion_free_cases"]
    assert lesion["n"] == 2 and lesion["cases"] == ["a", "b"]
    assert lesion["dice"]["mean"] == pytest.approx(0.6)  # not (0.5 + 0.7 + 1 + 1 + 0) / 5
    assert lesion["dice"]["ci_low"] <= 0.6 <= lesion["dice"]["ci_high"]
    assert lesion["abs_volume_diff_ml"]["mean"] == pytest.approx(3.5)
    assert free["n"] == 3 and free["cases"] == ["c", "d", "e"] and free["n_with_false_positive"] == 1
    assert free["false_positive_volume_ml"]["mean"] == pytest.approx(0.5)


def test_paired_comparison_uses_the_same_cases_and_the_table_says_when_there_is_no_evidence():
    comparison = compare_methods(METHOD, BASELINE)
    assert comparison["lesion_cases"]["n"] == 2 and comparison["lesion_free_cases"]["n"] == 3
    assert comparison["lesion_cases"]["dice"]["mean_difference"] == pytest.approx(0.45)
    assert comparison["lesion_free_cases"]["false_positive_volume_ml"]["mean_difference"] == pytest.approx(-0.5)
    only_common = compare_methods({k: METHOD[k] for k in "ab"}, BASELINE)
    assert only_common["lesion_free_cases"]["n"] == 0
    lines = summary_table({"method": summarize_cases(METHOD), "baseline": summarize_cases(BASELINE)})
    assert lines[0].startswith("Cases with a reference lesion (n=2)")
    assert any(line.startswith("method") and "0.600 [" in line for line in lines)
    assert any(line.startswith("baseline") and "1 of 3" not in line and "2 of 3" in line for line in lines)
    table = comparison_table({"method": comparison}, "baseline")
    assert table[-1] == NO_EVIDENCE
    row = next(line for line in table if line.startswith("method"))
    assert "+0.450 [" in row and "*" in row  # the FP-volume interval [-1, 0] includes 0


def test_phantom_results_compares_every_row_with_the_one_stage_unet_and_the_threshold():
    from experiments.phantom_results import ONE_STAGE_ROW, THRESHOLD_ROW, add_comparisons, results_table

    rows = {name: dict(summarize_cases(per_case), per_case=per_case)
            for name, per_case in ((THRESHOLD_ROW, BASELINE), (ONE_STAGE_ROW, METHOD), ("ISLESChainTrainer", METHOD))}
    part = add_comparisons({"rows": rows})
    assert set(part["comparisons"]) == {ONE_STAGE_ROW, THRESHOLD_ROW}
    assert set(part["comparisons"][ONE_STAGE_ROW]) == {THRESHOLD_ROW, "ISLESChainTrainer"}
    same = part["comparisons"][ONE_STAGE_ROW]["ISLESChainTrainer"]["lesion_cases"]["dice"]
    assert same["mean_difference"] == 0.0 and same["interval_includes_zero"] is True
    lines = results_table({"cv": part, "testing": part})  # CV, then TESTING, each with both comparisons
    assert [line for line in lines if line.startswith("==")] == [
        "== Cross-validation (4 folds by patient, out-of-fold predictions) on the TRAINING phantom ==",
        "== TESTING phantom, each row's fold ensemble =="]
    assert sum(line.startswith("Paired differences") for line in lines) == 4
    assert lines.count(NO_EVIDENCE) == 4
