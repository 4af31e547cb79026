"""Loss reductions run in float32 even inside a bf16 autocast region (sums over 65k pixels x batch lose
too many digits in bf16)."""
from __future__ import annotations

import contextlib

import torch


def float32_region(t: torch.Tensor) -> contextlib.AbstractContextManager:
    """Disable autocast for `t`'s device type; callers also cast their inputs with `.float()`."""
    return torch.autocast(device_type=t.device.type, enabled=False)


def as_labels(target: torch.Tensor) -> torch.Tensor:
    """A (N, 1, H, W) or (N, H, W) mask / label map -> (N, H, W) int64 labels."""
    if target.dim() == 4:
        if target.shape[1] != 1:
            raise ValueError(f"target must have one channel, got shape {tuple(target.shape)}")
        target = target[:, 0]
    if target.dim() != 3:
        raise ValueError(f"target must be (N, 1, H, W) or (N, H, W), got shape {tuple(target.shape)}")
    return target.round().long() if target.is_floating_point() else target.long()


def pixel_weight(weight: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    """W as (N, H, W) float32 for a (N, H, W) per-pixel loss; None means 1 everywhere."""
    if weight is None:
        return None
    if weight.dim() == 4:
        weight = weight[:, 0]
    if weight.shape != like.shape:
        raise ValueError(f"weight map shape {tuple(weight.shape)} does not match {tuple(like.shape)}")
    return weight.float()
