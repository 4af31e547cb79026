"""A JSON file with a syntax error ends every command with one line naming the file and the position, exit 1."""
from __future__ import annotations

import re

import pytest

from isles_pipeline.cli import determine_postprocessing, plan_and_preprocess, predict, train

BROKEN = '{\n  "plans_name": "ISLESPlans",\n  "configurations": {,\n}\n'  # line 3 column 21


@pytest.fixture
def roots(tmp_path, monkeypatch):
    for name in ("raw", "preprocessed", "results"):
        (tmp_path / name / "Dataset018_ISLES2018").mkdir(parents=True)
        monkeypatch.setenv(f"ISLES_{name}", str(tmp_path / name))
    return tmp_path


def _one_error_line(capsys, path) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert re.fullmatch(rf"ERROR {re.escape(str(path))}: invalid JSON at line 3 column \d+: .+", err[0]), err[0]
    return err[0]


def test_train_reports_a_broken_plans_file_in_one_line(roots, capsys):
    plans = roots / "preprocessed" / "Dataset018_ISLES2018" / "ISLESPlans.json"
    plans.write_text(BROKEN)
    assert train.main(["18", "0", "-device", "cpu"]) == 1
    _one_error_line(capsys, plans)


def test_predict_reports_a_broken_model_plans_file_in_one_line(roots, capsys):
    model = roots / "results" / "Dataset018_ISLES2018" / "ISLESChainTrainer__ISLESPlans__2d"
    (model / "fold_0").mkdir(parents=True)
    (model / "plans.json").write_text(BROKEN)
    (roots / "in").mkdir()
    assert predict.main(["-i", str(roots / "in"), "-o", str(roots / "out"), "-d", "18", "-device", "cpu"]) == 1
    _one_error_line(capsys, model / "plans.json")


def test_determine_postprocessing_reports_a_broken_plans_file_in_one_line(roots, capsys):
    import numpy as np
    import SimpleITK as sitk

    from isles_pipeline.imageio.nifti_io import write_image

    model = roots / "results" / "Dataset018_ISLES2018" / "ISLESChainTrainer__ISLESPlans__2d"
    mask = sitk.GetImageFromArray(np.zeros((2, 4, 4), np.uint8))
    write_image(mask, model / "fold_0" / "validation" / "case_1.nii.gz")
    write_image(mask, roots / "raw" / "Dataset018_ISLES2018" / "labelsTr" / "case_1.nii.gz")
    (model / "plans.json").write_text(BROKEN)
    assert determine_postprocessing.main(["-d", "18"]) == 1
    _one_error_line(capsys, model / "plans.json")


def test_plan_and_preprocess_reports_a_broken_dataset_json_in_one_line(roots, capsys):
    dataset_json = roots / "raw" / "Dataset018_ISLES2018" / "dataset.json"
    dataset_json.write_text(BROKEN)
    assert plan_and_preprocess.main(["-d", "18", "-np", "1"]) == 1
    _one_error_line(capsys, dataset_json)
