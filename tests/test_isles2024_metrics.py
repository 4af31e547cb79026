"""ISLES 2024's metrics (isles2024_metrics) on hand-computed examples, beside our own lesion F1."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from isles_pipeline.cli.evaluate import main as evaluate_main
from isles_pipeline.evaluation.isles2024_metrics import (
    FIRST_RELEASE_MATCH_IOU,
    isles2024_case_metrics,
    lesion_f1_and_count_difference,
)
from isles_pipeline.evaluation.metrics import case_metrics
from isles_pipeline.files import read_json


def _masks():
    """Reference: lesions R1 (10 voxels) and R2 (4). Prediction: P1 inside R1 (6 voxels, IoU 0.6: matched),
    P2 across R2's end (5 voxels, 2 shared, IoU 2/7: matched at 0.2, not at the first release's 0.5), P3 a lone
    voxel (false positive)."""
    reference = np.zeros((1, 10, 10), bool)
    prediction = np.zeros_like(reference)
    reference[0, 0, 0:10] = True
    prediction[0, 0, 0:6] = True
    reference[0, 5, 0:4] = True
    prediction[0, 5, 2:7] = True
    prediction[0, 9, 9] = True
    return reference, prediction


def test_hand_computed_case():
    reference, prediction = _masks()
    metrics = isles2024_case_metrics(reference, prediction, (2.0, 1.0, 0.5))
    # TP 2 (R1-P1, R2-P2), FP 1 (P3), FN 0: F1 = 2 / (2 + 0.5)
    assert metrics["isles24_lesion_f1"] == pytest.approx(0.8)
    # at the first release's IoU >= 0.5: TP 1 (R1-P1), FP 2 (P2, P3), FN 1 (R2): F1 = 1 / (1 + 1 + 0.5)
    assert lesion_f1_and_count_difference(reference, prediction, FIRST_RELEASE_MATCH_IOU) == (pytest.approx(0.4), 1)
    assert metrics["isles24_lesion_count_diff"] == 1  # |2 - 3|
    assert metrics["isles24_dice"] == pytest.approx(2 * 8 / (14 + 12))
    assert metrics["isles24_abs_volume_diff_ml"] == pytest.approx(2 * 1e-3)  # 2 voxels of 1 mm^3
    # our rule (any touching voxel finds a lesion): R1 and R2 found, only P3 false: 2*2 / (2*2 + 1 + 0)
    assert case_metrics(reference, prediction, (2.0, 1.0, 0.5))["lesion_f1"] == pytest.approx(0.8)


def test_empty_masks_and_the_matching_rules():
    empty = np.zeros((2, 4, 4), bool)
    assert isles2024_case_metrics(empty, empty, (1, 1, 1)) == {
        "isles24_dice": 1.0, "isles24_abs_volume_diff_ml": 0.0, "isles24_lesion_count_diff": 0,
        "isles24_lesion_f1": 1.0}
    one = empty.copy()
    one[0, 0, 0] = True
    assert isles2024_case_metrics(one, empty, (1, 1, 1))["isles24_lesion_f1"] == 0.0
    assert isles2024_case_metrics(empty, one, (1, 1, 1))["isles24_dice"] == 0.0
    # one to one: of a split lesion's two parts (IoU 0.5 and 0.25) one matches, the other is a false positive
    reference = np.zeros((1, 1, 8), bool)
    reference[0, 0, 0:4] = True
    prediction = np.zeros_like(reference)
    prediction[0, 0, 0:2] = True
    prediction[0, 0, 3] = True
    assert lesion_f1_and_count_difference(reference, prediction) == (pytest.approx(1 / 1.5), 1)
    # one predicted lesion over two reference lesions, IoU 0.4 with each: one matched (TP 1, FN 1); at the first
    # release's IoU >= 0.5 none
    reference = np.zeros((1, 1, 5), bool)
    reference[0, 0, [0, 1, 3, 4]] = True
    assert lesion_f1_and_count_difference(reference, np.ones_like(reference)) == (pytest.approx(2 / 3), 1)
    assert lesion_f1_and_count_difference(reference, np.ones_like(reference), FIRST_RELEASE_MATCH_IOU) == (0.0, 1)
    # 26-connectivity: diagonal neighbours are one lesion
    diagonal = np.zeros((2, 2, 2), bool)
    diagonal[0, 0, 0] = diagonal[1, 1, 1] = True
    assert lesion_f1_and_count_difference(diagonal, diagonal) == (1.0, 0)


def test_isles_evaluate_writes_the_isles2024_summary(tmp_path, capsys):
    reference, prediction = _masks()
    for folder, mask in (("ref", reference), ("pred", prediction)):
        image = sitk.GetImageFromArray(mask.astype(np.uint8))
        image.SetSpacing((0.5, 1.0, 2.0))
        (tmp_path / folder).mkdir()
        sitk.WriteImage(image, str(tmp_path / folder / "stroke_0001.nii.gz"))
    assert evaluate_main(["-ref", str(tmp_path / "ref"), "-pred", str(tmp_path / "pred"), "--isles2024"]) == 0
    summary = read_json(tmp_path / "pred" / "summary_isles2024.json")
    assert summary["num_cases"] == 1 and summary["mean"]["isles24_lesion_f1"] == pytest.approx(0.8)
    assert "ISLES 2024: dice 0.6154" in capsys.readouterr().out
