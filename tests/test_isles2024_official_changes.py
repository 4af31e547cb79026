"""Where the ISLES 2024 challenge's evaluator changed since its first release, our ISLES 2024 metrics follow the
latest: lesions match at IoU >= 0.2 (was 0.5).

The expected values are not ours: they were obtained by running the official functions
(ezequieldlrosa/isles24 utils/eval_utils.py, compute_dice_f1_instance_difference and
compute_absolute_volume_difference) with panoptica 1.1.19 on these very arrays, at the latest commit
(94b3486, 2025-12-16) and at the first release (34c6637, 2024-08-07); panoptica 2.1.7 (with the result shape
adapted, as experiments/isles2024_official_driver.py does) gave the same values. No panoptica is needed here.
"""
from __future__ import annotations

import numpy as np
import pytest

from isles_pipeline.evaluation.isles2024_metrics import (
    FIRST_RELEASE_MATCH_IOU,
    MATCH_IOU,
    isles2024_case_metrics,
    lesion_f1_and_count_difference,
)


def _line(start, stop, length=24):
    mask = np.zeros((1, 3, length), np.uint8)
    mask[0, 1, start:stop] = 1
    return mask


def _cases():
    """(name, reference, prediction, spacing_zyx, official latest (F1, count diff, Dice, |dV| ml), first-release F1)."""
    hand_reference = np.zeros((1, 10, 10), np.uint8)
    hand_prediction = np.zeros_like(hand_reference)
    hand_reference[0, 0, 0:10] = 1
    hand_prediction[0, 0, 0:6] = 1
    hand_reference[0, 5, 0:4] = 1
    hand_prediction[0, 5, 2:7] = 1
    hand_prediction[0, 9, 9] = 1
    halves = _line(0, 4) | _line(6, 10)
    box = np.zeros((3, 8, 12), np.uint8)
    box[:, 1:7, 1:7] = 1
    shifted = np.zeros_like(box)
    shifted[:, 1:7, 5:11] = 1
    return [
        ("IoU 0.2 exactly (4 of 20 voxels)", _line(0, 20), _line(0, 4), (2.0, 1.0, 0.5), (1.0, 0, 1 / 3, 0.016), 0.0),
        ("IoU 0.15 (3 of 20 voxels)", _line(0, 20), _line(0, 3), (2.0, 1.0, 0.5), (0.0, 0, 6 / 23, 0.017), 0.0),
        ("IoU 0.45 (9 of 20 voxels)", _line(0, 20), _line(0, 9), (1.0, 1.0, 1.0), (1.0, 0, 18 / 29, 0.011), 0.0),
        ("one voxel in a 5-voxel prediction", _line(2, 3), _line(0, 5), (1.0, 1.0, 1.0), (1.0, 0, 1 / 3, 0.004), 0.0),
        ("one lesion predicted as two parts", _line(0, 10), halves, (1.0, 1.0, 1.0), (2 / 3, 1, 8 / 9, 0.002), 0.0),
        ("two lesions predicted as one", halves, _line(0, 10), (1.0, 1.0, 1.0), (2 / 3, 1, 8 / 9, 0.002), 0.0),
        ("one prediction across two lesions, IoU 0.25 each", halves, _line(2, 8), (1.0, 1.0, 1.0),
         (2 / 3, 1, 4 / 7, 0.002), 0.0),
        ("box shifted by 4 of 6 voxels (IoU 0.2)", box, shifted, (5.0, 0.9, 0.9), (1.0, 0, 1 / 3, 0.0), 0.0),
        ("three lesions, one matched at IoU 2/7", hand_reference, hand_prediction, (2.0, 1.0, 0.5),
         (0.8, 1, 8 / 13, 0.002), 0.4),
    ]


@pytest.mark.parametrize("case", _cases(), ids=lambda case: case[0])
def test_matches_the_official_evaluator_at_its_latest_commit(case):
    _, reference, prediction, spacing, (f1, count_difference, dice, volume_ml), _ = case
    metrics = isles2024_case_metrics(reference, prediction, spacing)
    assert metrics["isles24_lesion_f1"] == pytest.approx(f1, abs=1e-12)
    assert metrics["isles24_lesion_count_diff"] == count_difference
    assert metrics["isles24_dice"] == pytest.approx(dice, abs=1e-12)
    assert metrics["isles24_abs_volume_diff_ml"] == pytest.approx(volume_ml, rel=1e-9)


@pytest.mark.parametrize("case", _cases(), ids=lambda case: case[0])
def test_the_first_release_threshold_gives_the_first_release_f1(case):
    _, reference, prediction, _, (_, count_difference, _, _), first_release_f1 = case
    f1, count = lesion_f1_and_count_difference(reference, prediction, match_iou=FIRST_RELEASE_MATCH_IOU)
    assert (f1, count) == (pytest.approx(first_release_f1, abs=1e-12), count_difference)


def test_the_default_is_the_latest_threshold():
    assert (MATCH_IOU, FIRST_RELEASE_MATCH_IOU) == (0.2, 0.5)
