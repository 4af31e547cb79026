"""Normalisation layers by name, so that the plans JSON can choose them with a plain string."""
from __future__ import annotations

from torch import nn

from isles_pipeline.networks.switch_norm import SwitchNorm2d

NORM_KINDS = ("batch", "switch", "instance", "none")


def make_norm(kind: str, channels: int) -> nn.Module:
    """`batch` (the seed's U-Nets), `switch` (its segmentor), `instance`, or `none` (identity)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "switch":
        return SwitchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; expected one of {NORM_KINDS}")


def make_input_norm(channels: int, enabled: bool) -> nn.Module:
    """The seed's input normalisation: a BatchNorm without learned parameters before the first convolution
    (paper 2.1 and the "BN" row of Table 1), so inputs get a batch mean and std rather than a fixed scale."""
    return nn.BatchNorm2d(channels, affine=False) if enabled else nn.Identity()
