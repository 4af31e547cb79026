"""Squeeze-and-excitation channel attention (Hu et al. 2017, arXiv:1709.01507), the "attention" of the
segmentor's attention U-Net: global average pool -> FC -> ReLU -> FC -> sigmoid -> rescale channels."""
from __future__ import annotations

import torch
from torch import nn


class SqueezeExcitation(nn.Module):
    """Recalibrates channels by weights computed from their global averages.

    Args:
        channels: C of the (N, C, H, W) input.
        reduction: bottleneck ratio r of the paper (16); the hidden width is max(C // r, 1).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(int(channels) // int(reduction), 1)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        squeezed = x.mean(dim=(2, 3))
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(squeezed))))
        return x * gate.view(n, c, 1, 1).to(x.dtype)
