"""THE connected-component definition, shared by the planner (lesion statistics), post-processing, the
predictor and evaluation, so that a "lesion" means the same thing everywhere."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

FULL_CONNECTIVITY = 3  # the plans' default and evaluation's rule: 26 neighbours in 3D (8 in 2D)


def component_structure(connectivity: int, ndim: int) -> np.ndarray:
    """THE definition of a connected component, as the plans' `postprocessing.connectivity` gives it: scipy's
    generate_binary_structure connectivity, 1 = faces (6 neighbours in 3D), 2 = + edges (18), 3 = + corners
    (26); capped at the array's rank (in 2D, 2 and 3 are both 8-connectivity)."""
    if isinstance(connectivity, bool) or connectivity not in (1, 2, 3):
        raise ValueError(f"connectivity must be 1, 2 or 3 (6-, 18- or 26-connectivity in 3D), got {connectivity!r}")
    return ndimage.generate_binary_structure(ndim, min(int(connectivity), ndim))


def label_components(mask: np.ndarray, connectivity: int = FULL_CONNECTIVITY) -> tuple[np.ndarray, int]:
    """Connected components (see component_structure; 26-connectivity unless told); (labels, count)."""
    mask = np.asarray(mask).astype(bool, copy=False)
    labels, count = ndimage.label(mask, structure=component_structure(connectivity, mask.ndim))
    return labels, int(count)
