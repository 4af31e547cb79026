"""One way to do each thing : one model folder rule, one device rule, and a benchmark that
leaves the caller's data roots as they were."""
from __future__ import annotations

import os

from isles_pipeline import devices
from isles_pipeline import paths as layout
from isles_pipeline.trainers import run


def test_the_trainer_writes_where_the_predictor_reads(tmp_path, monkeypatch):
    for name in ("raw", "preprocessed", "results"):
        monkeypatch.setenv(f"ISLES_{name}", str(tmp_path / name))
    (tmp_path / "preprocessed" / "Dataset018_ISLES2018").mkdir(parents=True)  # a training machine: no raw data
    expected = tmp_path / "results" / "Dataset018_ISLES2018" / "ISLESChainTrainer__ISLESPlans__2d"
    assert layout.model_folder(18, "ISLESChainTrainer", "ISLESPlans", "2d", must_exist=False) == expected
    expected.mkdir(parents=True)
    assert layout.model_folder(18, "ISLESChainTrainer", "ISLESPlans", "2d") == expected
    assert run.model_folder is layout.model_folder  # the trainer has no layout rule of its own
    assert not hasattr(run, "resolve_device") and run.devices is devices


def test_the_preprocessing_benchmark_restores_the_data_roots(tmp_path, monkeypatch):
    from benchmarks.preprocess import run as benchmark

    monkeypatch.setenv("ISLES_raw", str(tmp_path / "my_raw"))
    monkeypatch.delenv("ISLES_results", raising=False)
    result = benchmark(tmp_path / "work", num_cases=4, num_processes=1, size=64, planner="ISLESSmallPlanner")
    assert result["processed"] == 4 and result["failed"] == {}
    assert os.environ["ISLES_raw"] == str(tmp_path / "my_raw") and "ISLES_results" not in os.environ
    assert (tmp_path / "work" / "raw" / "Dataset018_ISLES2018" / "dataset.json").is_file()
