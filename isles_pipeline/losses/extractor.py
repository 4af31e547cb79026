"""The extractor's loss (paper Eq. 1): L1 between its sigmoid probability and the lesion mask."""
from __future__ import annotations

import torch

from isles_pipeline.losses.precision import as_labels, float32_region


def extractor_l1(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean |sigmoid(logit) - y| over pixels and batch; logit (N, 1, H, W), target mask (N, [1,] H, W)."""
    with float32_region(logit):
        y = as_labels(target).float()
        return (torch.sigmoid(logit.float()[:, 0]) - y).abs().mean()
