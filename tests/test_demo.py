"""The main job end to end on a tiny setting: every stage runs and the summary is complete."""
from __future__ import annotations

import json
import math

import pytest

from isles_pipeline.demo import DemoSettings, run_demo
from isles_pipeline.evaluation.tables import NO_EVIDENCE

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def test_demo_runs_end_to_end_on_a_tiny_setting(tmp_path):
    lines = []
    settings = DemoSettings(training_cases=8, testing_cases=2, size=64, folds=(0, 1),
                            trainer="ISLESChainTrainer_1epoch", num_processes=1)
    summary = run_demo(tmp_path / "demo", "cpu", settings, say=lines.append)
    assert [line for line in lines if line.startswith("[")][-1] == "[8/8] summary"
    assert sorted(summary["method_per_case"]) == ["case_1", "case_2"]
    for metrics in summary["method_per_case"].values():
        assert math.isfinite(metrics["dice"]) and 0 <= metrics["dice"] <= 1
    assert [p.rsplit("/", 1)[1] for p in summary["overlays"]] == ["case_1.png", "case_2.png"]
    for name in ("method", "threshold_baseline"):  # lesion and lesion-free cases reported apart
        split = summary[name]
        assert split["lesion_cases"]["n"] + split["lesion_free_cases"]["n"] == 2
        lesion_cases = split["lesion_cases"]["cases"]
        dice = [summary[f"{name}_per_case"][c]["dice"] for c in lesion_cases]
        if dice:
            assert split["lesion_cases"]["dice"]["mean"] == pytest.approx(sum(dice) / len(dice))
    difference = summary["method_minus_threshold_baseline"]["lesion_cases"]
    assert difference["n"] == summary["method"]["lesion_cases"]["n"]
    assert any(line.startswith("Paired differences, row minus threshold baseline") for line in lines)
    assert any(line.startswith("Cases with a reference lesion") for line in lines) and NO_EVIDENCE in lines
    written = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert written["method_per_case"].keys() == summary["method_per_case"].keys()
    assert written["threshold_baseline_per_case"].keys() == summary["method_per_case"].keys()
    assert (tmp_path / "demo" / "predictions" / "case_1.nii.gz").is_file()
