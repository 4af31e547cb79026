"""Connected-component post-processing of a binary core mask, as plain JSON-describable steps.

A post-processing is a list of steps, each a dict, applied in order, components in 3D on the original grid:
    {"name": "remove_small_components", "min_volume_ml": 0.5}
    {"name": "keep_largest_component"}
The empty list means none. Steps are data, not pickled functions, so the file stays readable and safe.
What a component is comes from the plans' `postprocessing.connectivity` (1, 2 or 3: 6-, 18- or
26-connectivity, `evaluation.metrics.component_structure`; 3 when the plans predate the key), read by
`plans_connectivity` for the choice (determine_postprocessing) and for its application (the predictor).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from isles_pipeline.components import FULL_CONNECTIVITY, component_structure, label_components

STEP_NAMES = ("remove_small_components", "keep_largest_component")


def plans_connectivity(configuration: dict) -> int:
    """The plans configuration's `postprocessing.connectivity`, checked (FULL_CONNECTIVITY when absent)."""
    connectivity = configuration.get("postprocessing", {}).get("connectivity", FULL_CONNECTIVITY)
    component_structure(connectivity, 3)  # ValueError naming the value when it is not 1, 2 or 3
    return int(connectivity)


def remove_small_components(mask: np.ndarray, min_volume_ml: float, spacing_zyx: Sequence[float],
                            connectivity: int = FULL_CONNECTIVITY) -> np.ndarray:
    """The mask without components smaller than `min_volume_ml`."""
    mask = np.asarray(mask, bool)
    if min_volume_ml <= 0 or not mask.any():
        return mask.copy()
    labels, count = label_components(mask, connectivity)
    voxel_ml = float(np.prod(spacing_zyx)) / 1000.0
    sizes_ml = np.bincount(labels.ravel(), minlength=count + 1) * voxel_ml
    keep = sizes_ml >= min_volume_ml
    keep[0] = False
    return keep[labels]


def keep_largest_component(mask: np.ndarray, connectivity: int = FULL_CONNECTIVITY) -> np.ndarray:
    """Only the largest component; ties keep the lowest label (the first in scan order)."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        return mask.copy()
    labels, count = label_components(mask, connectivity)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def apply_step(mask: np.ndarray, step: dict, spacing_zyx: Sequence[float], connectivity: int) -> np.ndarray:
    name = step.get("name")
    if name == "remove_small_components":
        return remove_small_components(mask, float(step["min_volume_ml"]), spacing_zyx, connectivity)
    if name == "keep_largest_component":
        return keep_largest_component(mask, connectivity)
    raise ValueError(f"unknown post-processing step {name!r}; expected one of {STEP_NAMES}")


def apply_postprocessing(mask: np.ndarray, steps: Sequence[dict], spacing_zyx: Sequence[float],
                         connectivity: int = FULL_CONNECTIVITY) -> np.ndarray:
    """Apply the steps in order (none: a copy of the mask), components by `connectivity` (plans_connectivity)."""
    result = np.asarray(mask, bool).copy()
    for step in steps:
        result = apply_step(result, step, spacing_zyx, connectivity)
    return result
