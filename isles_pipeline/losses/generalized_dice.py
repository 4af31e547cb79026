"""Generalised Dice overlap (Sudre et al. 2017, "Generalised Dice overlap as a deep learning loss function
for highly unbalanced segmentations", Eq. 2):

    GD = 2 * sum_l w_l sum_i r_li p_li / sum_l w_l sum_i (r_li + p_li),   w_l = 1 / (sum_i r_li)^2

summed over every pixel of the batch (not per slice: a slice with a 3-pixel lesion would otherwise get a
weight of 1/9 and dominate). Computed in float32.

Absent classes: a class with no reference pixel in the batch would get w = 1/0. We give it the largest weight
among the present classes (as if it were as rare as the rarest present one), so that predicting it where it is
absent is still penalised (only through the denominator, since its intersection is zero). If no class is
present at all (an empty batch) every weight is 1. The weights are then normalised to sum to 1, which leaves
GD unchanged but keeps numerator and denominator far from float32 underflow (1/(5*256*256)^2 ~ 1e-11), so
the smoothing `eps` really is negligible and -log(GD) stays finite when the prediction misses completely.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from isles_pipeline.losses.precision import as_labels, float32_region


def class_weights(reference_volume: torch.Tensor) -> torch.Tensor:
    """w_l = 1 / V_l^2 for present classes, max of those for absent ones, normalised to sum 1 (float32)."""
    volume = reference_volume.float()
    present = volume > 0
    w = torch.where(present, 1.0 / volume.clamp_min(1e-12).square(), torch.zeros_like(volume))
    fill = torch.where(present.any(), w.max(), torch.ones_like(w.max()))
    w = torch.where(present, w, fill)
    return w / w.sum()


def generalized_dice(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """GD in [0, 1] of softmax(logits) (N, L, H, W) against a label map (N, [1,] H, W); float32 scalar."""
    with float32_region(logits):
        probs = torch.softmax(logits.float(), dim=1)
        onehot = F.one_hot(as_labels(target), probs.shape[1]).permute(0, 3, 1, 2).float()
        dims = (0, 2, 3)
        w = class_weights(onehot.sum(dims))
        intersection = (probs * onehot).sum(dims)
        union = (probs + onehot).sum(dims)
        return (2.0 * (w * intersection).sum() + eps) / ((w * union).sum() + eps)


def log_generalized_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-log(GD) (paper Eq. 3): the log balances its gradient against the cross-entropy's."""
    return -torch.log(generalized_dice(logits, target))
