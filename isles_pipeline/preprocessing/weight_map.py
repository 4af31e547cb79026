"""The SDF weight map W of the generator and segmentor losses (paper 2.3 and Fig. 3).

Definition, per 2D slice (training is slice-wise; slices are 5-12 mm apart, so in-plane distance is the one
that means "surroundings"): with phi the signed distance function of the ground-truth lesion in mm
(negative inside, positive outside, in-plane spacing honoured) and d = max(phi, 0) the distance to the
nearest lesion pixel centre (0 on the lesion),

    W = 1 + alpha * exp(-d / sigma_mm)    on a slice with lesion,
    W = 1                                 on a slice without lesion.

So W is 1 + alpha on the lesion, decays with distance over a length sigma_mm into its surroundings (where
the hard false positives and missed borders are), tends to 1 far away, lies in [1, 1 + alpha] and is never
zero: the loss never ignores a pixel. The inside is flat rather than peaking at the lesion's centre because
the centre of a core is the easy part.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt


def sdf_weight_map(label: np.ndarray, spacing_yx: tuple[float, float], alpha: float = 4.0,
                   sigma_mm: float = 10.0) -> np.ndarray:
    """W (module doc) for a (Z, Y, X) or (Y, X) binary label; float32 of the same shape."""
    label = np.asarray(label) > 0
    squeeze = label.ndim == 2
    slices = label[None] if squeeze else label
    weight = np.ones(slices.shape, dtype=np.float32)
    for z, lesion in enumerate(slices):
        if lesion.any():
            distance = distance_transform_edt(~lesion, sampling=spacing_yx)
            weight[z] += np.float32(alpha) * np.exp(-distance / float(sigma_mm)).astype(np.float32)
    return weight[0] if squeeze else weight
