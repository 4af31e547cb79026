"""The segmentor's loss (paper Eq. 3): W-weighted cross-entropy and -log(generalised Dice)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from isles_pipeline.losses.generalized_dice import log_generalized_dice_loss
from isles_pipeline.losses.precision import as_labels, float32_region, pixel_weight


def weighted_cross_entropy(logits: torch.Tensor, target: torch.Tensor,
                           weight: torch.Tensor | None = None) -> torch.Tensor:
    """mean over pixels of W * CE(softmax(logits), target); W (N, 1, H, W) or None (= 1)."""
    with float32_region(logits):
        labels = as_labels(target)
        ce = F.cross_entropy(logits.float(), labels, reduction="none")
        w = pixel_weight(weight, ce)
        return (ce if w is None else ce * w).mean()


def segmentor_terms(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                    dice: bool = True) -> dict[str, torch.Tensor]:
    """Unscaled terms {"ce", "dice"}; "dice" is -log(GD), absent when `dice` is off (Table 1, "U-Net + CE")."""
    terms = {"ce": weighted_cross_entropy(logits, target, weight)}
    if dice:
        terms["dice"] = log_generalized_dice_loss(logits, target)
    return terms
