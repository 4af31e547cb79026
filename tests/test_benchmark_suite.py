"""`python -m benchmarks.suite` runs a stage in a child process and reports its figures with the machine."""
from __future__ import annotations

import json

from benchmarks.suite import main


def test_one_stage_reports_figures_and_machine(tmp_path, capsys):
    out = tmp_path / "results.json"
    assert main(["--quick", "-device", "cpu", "--stages", "generate_and_convert", "-o", str(out)]) == 0
    results = json.loads(out.read_text())
    stage = results["generate_and_convert"]
    assert stage["converted"] == 12 and stage["failed"] == 0 and stage["generate_s"] > 0
    assert results["machine"]["cpu_count"] >= 1 and results["machine"]["date"]
    assert "convert them" in capsys.readouterr().out
