"""The U-Net's stage: two 3x3 convolutions, each followed by a norm and a ReLU, optionally an SE block."""
from __future__ import annotations

import torch
from torch import nn

from isles_pipeline.networks.norms import make_norm
from isles_pipeline.networks.squeeze_excitation import SqueezeExcitation


class ConvStage(nn.Module):
    """conv3x3 -> norm -> ReLU -> conv3x3 -> norm -> ReLU [-> SE].

    Padding 1 keeps the spatial size (the original U-Net crops; the seed works on whole 256 x 256 slices).
    Convolutions carry no bias when a norm follows, since the norm's shift would cancel it.
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str = "batch", se: bool = False,
                 se_reduction: int = 16) -> None:
        super().__init__()
        bias = norm == "none"
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)
        self.norm1 = make_norm(norm, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=bias)
        self.norm2 = make_norm(norm, out_channels)
        self.se = SqueezeExcitation(out_channels, se_reduction) if se else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.norm1(self.conv1(x)))
        x = torch.relu(self.norm2(self.conv2(x)))
        return self.se(x)
