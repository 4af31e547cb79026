"""The main job end to end on a tiny setting: every stage runs and the summary is complete."""
from __future__ import annotations

import json
import math

import pytest

from isles_pipeline.demo import DemoSettings, run_demo

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
    assert math.isfinite(summary["threshold_baseline_mean"]["dice"])
    written = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert written["method_mean"]["dice"] == pytest.approx(summary["method_mean"]["dice"])
    assert (tmp_path / "demo" / "predictions" / "case_1.nii.gz").is_file()
