"""Connected-component post-processing of a binary core mask, as plain JSON-describable steps.

A post-processing is a list of steps, each a dict, applied in order, all with 26-connectivity (components in
3D on the original grid; the issue's choice, which wins over the plans' `postprocessing.connectivity`):
    {"name": "remove_small_components", "min_volume_ml": 0.5}
    {"name": "keep_largest_component"}
The empty list means none. Steps are data, not pickled functions, so the file stays readable and safe.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from isles_pipeline.evaluation.metrics import label_components

STEP_NAMES = ("remove_small_components", "keep_largest_component")


def remove_small_components(mask: np.ndarray, min_volume_ml: float, spacing_zyx: Sequence[float]) -> np.ndarray:
    """The mask without components smaller than `min_volume_ml` (26-connectivity)."""
    mask = np.asarray(mask, bool)
    if min_volume_ml <= 0 or not mask.any():
        return mask.copy()
    labels, count = label_components(mask)
    voxel_ml = float(np.prod(spacing_zyx)) / 1000.0
    sizes_ml = np.bincount(labels.ravel(), minlength=count + 1) * voxel_ml
    keep = sizes_ml >= min_volume_ml
    keep[0] = False
    return keep[labels]


def keep_largest_component(mask: np.ndarray) -> np.ndarray:
    """Only the largest component (26-connectivity); ties keep the lowest label (the first in scan order)."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        return mask.copy()
    labels, count = label_components(mask)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def apply_step(mask: np.ndarray, step: dict, spacing_zyx: Sequence[float]) -> np.ndarray:
    name = step.get("name")
    if name == "remove_small_components":
        return remove_small_components(mask, float(step["min_volume_ml"]), spacing_zyx)
    if name == "keep_largest_component":
        return keep_largest_component(mask)
    raise ValueError(f"unknown post-processing step {name!r}; expected one of {STEP_NAMES}")


def apply_postprocessing(mask: np.ndarray, steps: Sequence[dict], spacing_zyx: Sequence[float]) -> np.ndarray:
    """Apply the steps in order (none: a copy of the mask)."""
    result = np.asarray(mask, bool).copy()
    for step in steps:
        result = apply_step(result, step, spacing_zyx)
    return result
