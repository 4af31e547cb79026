"""Pictures in the style of the paper's Fig. 4: for a few slices, an input map, the generated pseudo-DWI, and
the ground truth (green) with the prediction (red) drawn as contours over the pseudo-DWI.

One PNG per case; the trainer's validation can call `save_overlay` on its own arrays too. matplotlib is
imported inside the function (Agg backend, no display needed, nothing at import time).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from isles_pipeline.files import atomic_path


def pick_slices(prediction: np.ndarray, truth: Optional[np.ndarray] = None, num_slices: int = 4) -> list[int]:
    """Slices with the most truth voxels first (the lesion is what a reader checks), then those with the most
    predicted voxels; evenly spaced slices when both are empty. Returned in z order."""
    z = prediction.shape[0]
    predicted = np.asarray(prediction, bool).reshape(z, -1).sum(1)
    true = np.asarray(truth, bool).reshape(z, -1).sum(1) if truth is not None else np.zeros(z, int)
    if not (predicted.any() or true.any()):
        return sorted({int(round(v)) for v in np.linspace(0, z - 1, min(num_slices, z))})
    order = np.lexsort((-predicted, -true))  # by truth area, ties by predicted area
    return sorted(int(i) for i in order[:num_slices] if predicted[i] or true[i])


def _window(image: np.ndarray) -> tuple[float, float]:
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(finite, (1, 99))
    return float(low), float(high if high > low else low + 1)


def _tint(mask: np.ndarray, colour: tuple[float, float, float], alpha: float = 0.35) -> np.ndarray:
    """An RGBA layer: `colour` at `alpha` on the mask, transparent elsewhere."""
    layer = np.zeros(mask.shape + (4,), np.float32)
    layer[mask] = (*colour, alpha)
    return layer


def save_overlay(path: Path, input_map: np.ndarray, prediction: np.ndarray, pseudo_dwi: Optional[np.ndarray] = None,
                 truth: Optional[np.ndarray] = None, slices: Optional[Sequence[int]] = None,
                 input_name: str = "input map", title: Optional[str] = None) -> list[int]:
    """Write the PNG (atomically) and return the slice indices shown. Arrays are (Z, Y, X) on one grid."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    prediction = np.asarray(prediction, bool)
    slices = list(slices) if slices is not None else pick_slices(prediction, truth)
    columns = [input_name] + (["pseudo-DWI"] if pseudo_dwi is not None else []) + ["truth (green) / prediction (red)"]
    figure = Figure(figsize=(3 * len(columns), 3 * len(slices)), dpi=80)
    axes = figure.subplots(len(slices), len(columns), squeeze=False)
    backdrop = pseudo_dwi if pseudo_dwi is not None else input_map
    input_range, backdrop_range = _window(np.asarray(input_map, float)), _window(np.asarray(backdrop, float))
    for row, z in enumerate(slices):
        panels = [(input_map[z], input_range)] + ([(pseudo_dwi[z], backdrop_range)] if pseudo_dwi is not None else [])
        panels.append((backdrop[z], backdrop_range))
        for column, (image, (low, high)) in enumerate(panels):
            ax = axes[row][column]
            ax.imshow(image, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(columns[column], fontsize=9)
            if column == 0:
                ax.set_ylabel(f"slice {z}", fontsize=9)
        last = axes[row][len(columns) - 1]
        for mask, colour in ((truth, (0.0, 1.0, 0.0)), (prediction, (1.0, 0.0, 0.0))):
            if mask is not None and np.asarray(mask[z], bool).any():
                last.imshow(_tint(np.asarray(mask[z], bool), colour), interpolation="nearest")
                last.contour(np.asarray(mask[z], float), levels=[0.5], colors=[colour], linewidths=1.0)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    with atomic_path(Path(path)) as temporary:
        figure.savefig(temporary, format="png")
    return slices
