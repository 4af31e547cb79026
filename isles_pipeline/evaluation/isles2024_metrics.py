"""ISLES 2024's own evaluation conventions, beside ours (metrics.py): Dice, absolute volume difference (ml),
absolute lesion-count difference and lesion-wise F1.

Source: the challenge's evaluation code, ezequieldlrosa/isles24 `utils/eval_utils.py`
(https://github.com/ezequieldlrosa/isles24/blob/main/utils/eval_utils.py), which the README names as the
implementation used to rank teams. It calls panoptica (BrainLesion/panoptica) with
`Panoptica_Evaluator(expected_input=InputType.SEMANTIC, instance_approximator=ConnectedComponentsInstance-
Approximator(), instance_matcher=NaiveThresholdMatching(matching_threshold=0.2))` and reads:
- lesions: connected components of each binary mask; panoptica's default backend for 3D is cc3d, whose
  default connectivity is 26 (panoptica/instance_approximator.py, _functionals._connected_components);
- matching (panoptica/instance_matcher.py, NaiveThresholdMatching): IoU of every overlapping (reference,
  prediction) pair, pairs taken in decreasing IoU (ties in the order of the prediction's, then the reference's
  component label, as panoptica lists them), a pair matched when IoU >= the threshold and neither lesion is
  matched yet (one to one); TP = matched pairs, FP = unmatched predicted lesions, FN = unmatched reference lesions;
- lesion-wise F1 = panoptica's recognition quality RQ = TP / (TP + FP/2 + FN/2);
- absolute lesion-count difference = |#reference lesions - #predicted lesions|;
- Dice = the global binary Dice (panoptica's global_bin_dsc);
- when both masks are empty, F1 and Dice are `empty_value` = 1;
- absolute volume difference = |sum(reference) - sum(prediction)| x voxel volume, in ml.
Changes since the challenge's first release (commit 34c6637, 2024-08-07), which this module first followed:
- the latest commit (94b3486, 2025-12-16) passes `NaiveThresholdMatching(matching_threshold=0.2)` instead of the
  default 0.5, so a predicted lesion now finds a reference lesion at IoU >= 0.2 (MATCH_IOU; the first release's
  0.5 is kept as FIRST_RELEASE_MATCH_IOU). Lesion F1 changes wherever a best overlap lies in [0.2, 0.5); Dice,
  volume and lesion-count difference do not depend on matching.
Measured against the official code run with panoptica 1.1.19 (the last release whose result shape it reads) on 67
mask pairs, 12 of them from the phantom (experiments.isles2024_evaluator_agreement;
documentation/results/isles2024-evaluator-agreement.md): all four metrics agree on every pair.
Conventions the official code has that binary 3D masks never meet, not followed here: a 2D array is labelled with
4-connectivity (panoptica uses scipy's default below 3D), and a mask with labels 1 and 2 is split where the labels
meet (the official code casts to int, cc3d labels each value apart); here masks are binary and 2D arrays use
8-connectivity.
Differences from ours (metrics.py): our lesion F1 counts a reference lesion found when any predicted voxel
touches it; ISLES 2024's needs IoU >= 0.2 with one predicted lesion. The challenge also masks predictions with
an NCCT-derived brain mask before scoring (isles24_evaluate.ipynb); that mask is not public, so it is not
applied here.

Written from the description above (no code copied).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from scipy import ndimage

from isles_pipeline.files import atomic_write_json

ISLES2024_KEYS = ("isles24_dice", "isles24_abs_volume_diff_ml", "isles24_lesion_count_diff", "isles24_lesion_f1")
MATCH_IOU = 0.2  # the official code since 2025-12-16 (commit 94b3486)
FIRST_RELEASE_MATCH_IOU = 0.5  # its first release (panoptica's default)
EMPTY_VALUE = 1.0


def lesions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components with full connectivity (26 in 3D, as cc3d's default); (labels, count)."""
    mask = np.asarray(mask).astype(bool)
    return ndimage.label(mask, structure=np.ones((3,) * mask.ndim, bool))


def dice(reference: np.ndarray, prediction: np.ndarray) -> float:
    """Global binary Dice; EMPTY_VALUE when both are empty."""
    reference, prediction = np.asarray(reference, bool), np.asarray(prediction, bool)
    total = int(reference.sum()) + int(prediction.sum())
    return EMPTY_VALUE if total == 0 else 2.0 * int(np.logical_and(reference, prediction).sum()) / total


def abs_volume_difference_ml(reference: np.ndarray, prediction: np.ndarray, voxel_ml: float) -> float:
    return abs(int(np.count_nonzero(reference)) - int(np.count_nonzero(prediction))) * float(voxel_ml)


def matched_lesions(reference_labels: np.ndarray, prediction_labels: np.ndarray,
                    match_iou: float = MATCH_IOU) -> list[tuple[int, int, float]]:
    """One-to-one (reference, prediction, IoU) matches: overlapping pairs in decreasing IoU, IoU >= match_iou.
    Equal IoUs are taken in (prediction label, reference label) order, panoptica's, so that the same pairs match."""
    overlap = (reference_labels > 0) & (prediction_labels > 0)
    pairs, counts = np.unique(np.stack([reference_labels[overlap], prediction_labels[overlap]]), axis=1,
                              return_counts=True)
    if not counts.size:
        return []
    reference_sizes = np.bincount(reference_labels.ravel())
    prediction_sizes = np.bincount(prediction_labels.ravel())
    candidates = []
    for (r, p), intersection in zip(pairs.T, counts):
        union = reference_sizes[r] + prediction_sizes[p] - intersection
        candidates.append((intersection / union, int(r), int(p)))
    matches, used_reference, used_prediction = [], set(), set()
    for iou, r, p in sorted(candidates, key=lambda c: (-c[0], c[2], c[1])):
        if r in used_reference or p in used_prediction or iou < match_iou:
            continue
        matches.append((r, p, float(iou)))
        used_reference.add(r)
        used_prediction.add(p)
    return matches


def lesion_f1_and_count_difference(reference: np.ndarray, prediction: np.ndarray,
                                   match_iou: float = MATCH_IOU) -> tuple[float, int]:
    """(lesion-wise F1 as panoptica's RQ, |#reference lesions - #predicted lesions|)."""
    reference_labels, n_reference = lesions(reference)
    prediction_labels, n_prediction = lesions(prediction)
    if n_reference == 0 and n_prediction == 0:
        return EMPTY_VALUE, 0
    tp = len(matched_lesions(reference_labels, prediction_labels, match_iou))
    fp, fn = n_prediction - tp, n_reference - tp
    return tp / (tp + 0.5 * fp + 0.5 * fn), abs(n_reference - n_prediction)


def isles2024_case_metrics(reference: np.ndarray, prediction: np.ndarray, spacing_zyx: Sequence[float],
                           match_iou: float = MATCH_IOU) -> dict[str, float]:
    """The four ISLES 2024 metrics of one case (masks on one grid; spacing in mm)."""
    reference, prediction = np.asarray(reference, bool), np.asarray(prediction, bool)
    if reference.shape != prediction.shape:
        raise ValueError(f"reference {reference.shape} and prediction {prediction.shape} differ in shape")
    f1, count_difference = lesion_f1_and_count_difference(reference, prediction, match_iou)
    return {"isles24_dice": dice(reference, prediction),
            "isles24_abs_volume_diff_ml": abs_volume_difference_ml(reference, prediction,
                                                                   float(np.prod(spacing_zyx)) / 1000.0),
            "isles24_lesion_count_diff": count_difference, "isles24_lesion_f1": f1}


def evaluate_folders_isles2024(reference_folder: Path, prediction_folder: Path,
                               output_file: Optional[Path] = None) -> dict:
    """ISLES 2024 metrics of every prediction with a reference (paired by file name, as evaluate_folders),
    per case and averaged; written to `output_file` when given."""
    from isles_pipeline.evaluation.evaluate import GeometryMismatchError, nifti_files_by_case, read_mask
    from isles_pipeline.imageio.case_images import geometry_mismatch

    references, predictions = nifti_files_by_case(reference_folder), nifti_files_by_case(prediction_folder)
    per_case = []
    for name in sorted(set(references) & set(predictions)):
        reference, grid = read_mask(references[name])
        prediction, prediction_grid = read_mask(predictions[name])
        problem = geometry_mismatch(grid, prediction_grid)
        if problem:
            raise GeometryMismatchError(f"prediction {predictions[name]} and reference {references[name]} are on "
                                        f"different grids: {problem}")
        per_case.append({"case": name, "metrics": isles2024_case_metrics(reference, prediction,
                                                                         tuple(reversed(grid.spacing)))})
    mean = {key: float(np.mean([row["metrics"][key] for row in per_case])) if per_case else None
            for key in ISLES2024_KEYS}
    summary = {"num_cases": len(per_case), "mean": mean, "metric_per_case": per_case,
               "conventions": "ISLES 2024 (ezequieldlrosa/isles24 utils/eval_utils.py via panoptica): lesions = "
                              f"26-connected components; one-to-one matching at IoU >= {MATCH_IOU} (the official code "
                              "since 2025-12-16; 0.5 before); F1 = TP / (TP + FP/2 + FN/2); Dice and F1 are 1 when "
                              "both masks are empty; no brain mask applied"}
    if output_file is not None:
        atomic_write_json(Path(output_file), summary)
    return summary
