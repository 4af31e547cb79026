"""Every metric against small arrays computed by hand, including anisotropic spacing."""
import math

import numpy as np
import pytest

from isles_pipeline.evaluation.metrics import case_metrics, dice, hd95, lesion_detection, precision_recall, volume_ml


def _empty(shape=(3, 8, 8)):
    return np.zeros(shape, bool)


def test_dice_by_hand():
    ref, pred = _empty(), _empty()
    ref[1, 2:4, 2:4] = True  # 4 voxels
    pred[1, 3:5, 2:4] = True  # 4 voxels, 2 shared
    assert dice(ref, pred) == pytest.approx(2 * 2 / 8)
    assert dice(_empty(), _empty()) == 1.0
    assert dice(ref, _empty()) == 0.0


def test_volume_anisotropic_spacing():
    mask = _empty()
    mask[0, 0, 0:5] = True
    assert volume_ml(mask, (10.0, 0.5, 2.0)) == pytest.approx(5 * 10 * 0.5 * 2 / 1000)


def test_hd95_single_voxels_anisotropic():
    ref, pred = _empty((4, 8, 8)), _empty((4, 8, 8))
    ref[0, 1, 1] = True
    pred[2, 1, 4] = True  # 2 slices away (5 mm each) and 3 columns (0.8 mm each)
    expected = math.hypot(2 * 5.0, 3 * 0.8)
    assert hd95(ref, pred, (5.0, 0.8, 0.8)) == pytest.approx(expected)
    # the same displacement measured with swapped spacing gives another number: spacing is really used
    assert hd95(ref, pred, (0.8, 0.8, 5.0)) == pytest.approx(math.hypot(2 * 0.8, 3 * 5.0))


def test_hd95_is_robust_to_an_outlier_and_symmetric():
    ref = np.zeros((1, 1, 200), bool)
    pred = np.zeros((1, 1, 200), bool)
    ref[0, 0, :100] = True
    pred[0, 0, :100] = True
    pred[0, 0, 199] = True  # one far voxel
    # in a 1-voxel-thick line every voxel is surface: predicted distances are 100 zeros and one of 100 mm
    value = hd95(ref, pred, (1.0, 1.0, 1.0))
    assert value == pytest.approx(np.percentile([0.0] * 100 + [100.0], 95)) == 0.0
    pred[0, 0, 150:200] = True  # now a third of the predicted surface is far: the 95th percentile sees it
    expected = np.percentile([0.0] * 100 + [float(d) for d in range(51, 101)], 95)
    assert hd95(ref, pred, (1.0, 1.0, 1.0)) == pytest.approx(expected)
    assert hd95(pred, ref, (1.0, 1.0, 1.0)) == hd95(ref, pred, (1.0, 1.0, 1.0))


def test_hd95_empty_conventions():
    ref = _empty()
    ref[0, 0, 0] = True
    assert hd95(_empty(), _empty(), (1, 1, 1)) == 0.0
    assert math.isnan(hd95(ref, _empty(), (1, 1, 1)))
    assert math.isnan(hd95(_empty(), ref, (1, 1, 1)))


def test_precision_recall_by_hand():
    ref, pred = _empty(), _empty()
    ref[0, 0, 0:4] = True
    pred[0, 0, 2:8] = True  # TP 2, FP 4, FN 2
    precision, recall = precision_recall(ref, pred)
    assert precision == pytest.approx(2 / 6) and recall == pytest.approx(2 / 4)
    assert precision_recall(_empty(), _empty()) == (1.0, 1.0)
    assert precision_recall(ref, _empty()) == (1.0, 0.0)  # nothing predicted: no false positive, all missed
    assert precision_recall(_empty(), pred) == (0.0, 1.0)


def test_lesion_detection_26_connectivity():
    ref, pred = _empty((3, 10, 10)), _empty((3, 10, 10))
    ref[0, 0, 0] = True
    ref[1, 1, 1] = True  # diagonal neighbour of (0,0,0): one lesion with 26-connectivity
    ref[2, 8, 8] = True  # a second lesion, missed
    pred[1, 1, 1] = True  # touches lesion 1 by one voxel
    pred[0, 6, 6] = True  # a false positive component
    counts = lesion_detection(ref, pred)
    assert counts["n_reference"] == 2 and counts["n_predicted"] == 2
    assert (counts["tp"], counts["fp"], counts["fn"]) == (1, 1, 1)
    assert counts["lesion_f1"] == pytest.approx(2 * 1 / (2 + 1 + 1))


def test_case_metrics_keys_and_values():
    ref, pred = _empty(), _empty()
    ref[1, 2:4, 2:4] = True
    pred[1, 2:4, 2:4] = True
    pred[2, 7, 7] = True
    m = case_metrics(ref, pred, (2.0, 1.0, 1.0))
    assert set(m) == {"dice", "hd95_mm", "abs_volume_diff_ml", "precision", "recall", "lesion_f1",
                      "lesion_count_diff", "reference_volume_ml", "predicted_volume_ml"}
    assert m["reference_volume_ml"] == pytest.approx(4 * 2.0 / 1000)
    assert m["predicted_volume_ml"] == pytest.approx(5 * 2.0 / 1000)
    assert m["dice"] == pytest.approx(8 / 9)
    assert m["abs_volume_diff_ml"] == pytest.approx(2.0 / 1000)
    assert m["precision"] == pytest.approx(4 / 5) and m["recall"] == 1.0
    assert m["lesion_f1"] == pytest.approx(2 / 3) and m["lesion_count_diff"] == 1
    both_empty = case_metrics(_empty(), _empty(), (1, 1, 1))
    assert both_empty["dice"] == 1.0 and both_empty["hd95_mm"] == 0.0 and both_empty["lesion_f1"] == 1.0
    with pytest.raises(ValueError):
        case_metrics(ref, pred[:2], (1, 1, 1))
