"""Segmentation metrics of one case: overlap, surface distance, volume and lesion-wise detection.

Conventions (why: the ISLES'22 evaluation set the empty-case rules; we follow it where it speaks and say what we
chose where it does not):
- Dice is 1 when reference and prediction are both empty, 0 when exactly one is.
- HD95 (mm, true voxel spacing) is 0 when both are empty and NaN when exactly one is: a distance to nothing is
  undefined, and a fixed penalty would dominate a mean. NaN values are excluded from means
  (`evaluation.summary` counts them as `n_undefined`).
- Precision is 1 when the prediction is empty (it has no false positives), recall is 1 when the reference is
  empty (nothing was missed): an empty prediction of a non-empty reference scores precision 1, recall 0,
  Dice 0; a prediction on an empty reference scores precision 0, recall 1, Dice 0.
- Lesion-wise F1: components with 26-connectivity. A reference lesion is found (TP) when any predicted
  component touches it by at least one voxel; a predicted component touching no reference lesion is a false
  positive. F1 = 2 TP / (2 TP + FP + FN); 1 when both have no lesions.
- Volumes in ml: voxel count x product of spacing (mm^3) / 1000.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

from isles_pipeline.components import label_components

METRIC_KEYS = ("dice", "hd95_mm", "abs_volume_diff_ml", "precision", "recall", "lesion_f1",
               "lesion_count_diff", "reference_volume_ml", "predicted_volume_ml")


def _as_bool(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    return array.astype(bool) if array.dtype != bool else array


def _spacing3(spacing_zyx: Sequence[float], ndim: int) -> tuple[float, ...]:
    spacing = tuple(float(s) for s in spacing_zyx)
    if len(spacing) != ndim:
        raise ValueError(f"spacing {spacing} does not match an array of {ndim} dimensions")
    return spacing


def dice(reference: np.ndarray, prediction: np.ndarray) -> float:
    """2 |R & P| / (|R| + |P|); 1 when both are empty."""
    reference, prediction = _as_bool(reference), _as_bool(prediction)
    total = int(reference.sum()) + int(prediction.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(reference, prediction).sum()) / total


def _surface(mask: np.ndarray) -> np.ndarray:
    """Voxels of the mask with at least one face-neighbour outside it (outside the array counts as outside)."""
    eroded = ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(mask.ndim, 1),
                                    border_value=0)
    return mask & ~eroded


def hd95(reference: np.ndarray, prediction: np.ndarray, spacing_zyx: Sequence[float]) -> float:
    """Symmetric 95th-percentile Hausdorff distance in mm: the larger of the two directed 95th percentiles of
    surface-voxel to nearest-surface-voxel distances (the Hausdorff max, made robust). Surfaces are voxels with
    a face-neighbour outside the mask. 0 when both are empty, NaN when one is."""
    reference, prediction = _as_bool(reference), _as_bool(prediction)
    spacing = _spacing3(spacing_zyx, reference.ndim)
    has_ref, has_pred = bool(reference.any()), bool(prediction.any())
    if not has_ref and not has_pred:
        return 0.0
    if has_ref != has_pred:
        return float("nan")
    ref_surface, pred_surface = _surface(reference), _surface(prediction)
    to_ref = ndimage.distance_transform_edt(~ref_surface, sampling=spacing)
    to_pred = ndimage.distance_transform_edt(~pred_surface, sampling=spacing)
    forward = to_ref[pred_surface]
    backward = to_pred[ref_surface]
    return float(max(np.percentile(forward, 95), np.percentile(backward, 95)))


def volume_ml(mask: np.ndarray, spacing_zyx: Sequence[float]) -> float:
    """Volume of a mask in millilitres."""
    mask = _as_bool(mask)
    spacing = _spacing3(spacing_zyx, mask.ndim)
    return float(mask.sum()) * float(np.prod(spacing)) / 1000.0


def precision_recall(reference: np.ndarray, prediction: np.ndarray) -> tuple[float, float]:
    """Voxel precision TP/(TP+FP) (1 for an empty prediction) and recall TP/(TP+FN) (1 for an empty reference)."""
    reference, prediction = _as_bool(reference), _as_bool(prediction)
    tp = int(np.logical_and(reference, prediction).sum())
    n_pred, n_ref = int(prediction.sum()), int(reference.sum())
    precision = tp / n_pred if n_pred else 1.0
    recall = tp / n_ref if n_ref else 1.0
    return precision, recall


def lesion_detection(reference: np.ndarray, prediction: np.ndarray) -> dict:
    """Lesion-wise counts with 26-connectivity: TP reference lesions touched by a prediction, FN the others,
    FP predicted components touching no reference lesion; F1 = 2TP/(2TP+FP+FN), 1 when there are no lesions."""
    reference, prediction = _as_bool(reference), _as_bool(prediction)
    ref_labels, n_ref = label_components(reference)
    pred_labels, n_pred = label_components(prediction)
    found = np.unique(ref_labels[prediction & (ref_labels > 0)])
    hitting = np.unique(pred_labels[reference & (pred_labels > 0)])
    tp, fn, fp = int(found.size), n_ref - int(found.size), n_pred - int(hitting.size)
    denominator = 2 * tp + fp + fn
    f1 = 1.0 if denominator == 0 else 2.0 * tp / denominator
    return {"tp": tp, "fp": fp, "fn": fn, "n_reference": n_ref, "n_predicted": n_pred, "lesion_f1": f1}


def case_metrics(reference: np.ndarray, prediction: np.ndarray, spacing_zyx: Sequence[float]) -> dict:
    """All metrics of one case; arrays in (z, y, x) (or (y, x)) order, spacing in mm in the same order.

    Keys: dice, hd95_mm, abs_volume_diff_ml, precision, recall, lesion_f1, lesion_count_diff (see module doc),
    and the two volumes (reference_volume_ml tells lesion cases from lesion-free ones; predicted_volume_ml of a
    lesion-free case is its false-positive volume).
    """
    reference, prediction = _as_bool(reference), _as_bool(prediction)
    if reference.shape != prediction.shape:
        raise ValueError(f"reference {reference.shape} and prediction {prediction.shape} differ in shape")
    precision, recall = precision_recall(reference, prediction)
    lesions = lesion_detection(reference, prediction)
    reference_ml, predicted_ml = volume_ml(reference, spacing_zyx), volume_ml(prediction, spacing_zyx)
    return {
        "dice": dice(reference, prediction),
        "hd95_mm": hd95(reference, prediction, spacing_zyx),
        "abs_volume_diff_ml": abs(reference_ml - predicted_ml),
        "precision": precision,
        "recall": recall,
        "lesion_f1": lesions["lesion_f1"],
        "lesion_count_diff": abs(lesions["n_reference"] - lesions["n_predicted"]),
        "reference_volume_ml": reference_ml,
        "predicted_volume_ml": predicted_ml,
    }
