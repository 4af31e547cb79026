"""Head mask from the plain CT: the region whose voxels make the global time-intensity curve and the
intensity statistics ("inside the head").

Otsu's threshold separates air from the head once bone is clipped to `clip_max` HU: unclipped, bone
(> 1000 HU) pulls the threshold above brain tissue. ISLES CTs store air near -23 (clipped), others near
-1000; Otsu does not care which. The largest 3D component (face connectivity, acvl-utils' helper, as nnU-Net
uses it) drops the head rest and noise specks, and holes are filled slice by slice (CSF and ventricles can
fall below the threshold).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

DEFAULT_CLIP_MAX = 100.0  # HU: above soft tissue, below bone


def head_mask(ct: np.ndarray, clip_max: float = DEFAULT_CLIP_MAX) -> np.ndarray:
    """Boolean (Z, Y, X) mask of the head in a CT volume (HU). Empty only for an image without contrast."""
    # imported here: the GPU check imports this module on a machine that has only PyTorch and NumPy
    from acvl_utils.morphology.morphology_helper import remove_all_but_largest_component

    ct = np.asarray(ct, dtype=np.float32)
    low = float(np.percentile(ct, 0.5))
    clipped = np.clip(ct, low, max(low, float(clip_max)))
    if clipped.max() <= clipped.min():
        return np.zeros(ct.shape, dtype=bool)
    mask = remove_all_but_largest_component(ct > threshold_otsu(clipped), connectivity=1)
    for z in range(mask.shape[0]):
        mask[z] = ndimage.binary_fill_holes(mask[z])
    return mask
