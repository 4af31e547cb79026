"""Feature networks A and B of the generator's perceptual-style loss (paper 2.2, 2.3): five 3x3 stride-2
convolutions with ReLU, then adaptive average pools to 7 x 1 and 1 x 7, flattened and concatenated. The two
pools keep a coarse row profile and a coarse column profile of the last feature map, i.e. where along each
axis the high-level content sits, at 14 * C numbers per image."""
from __future__ import annotations

import torch
from torch import nn

from isles_pipeline.networks.init import xavier_init


class FeatureNetwork(nn.Module):
    """(N, in_channels, H, W) -> (N, 14 * base_channels * 2**(n_convs - 1)) features.

    Args:
        in_channels: 1 for a DWI (real or generated).
        base_channels: width of the first convolution; each following one doubles it. The paper gives no
            widths; 16 (16 .. 256) is our full-configuration choice.
        n_convs: five in the seed.
        pool_size: 7 in the seed (pools of 7 x 1 and 1 x 7).
    """

    def __init__(self, in_channels: int = 1, base_channels: int = 16, n_convs: int = 5, pool_size: int = 7) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = in_channels
        for i in range(n_convs):
            width = int(base_channels) * 2**i
            layers += [nn.Conv2d(previous, width, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            previous = width
        self.body = nn.Sequential(*layers)
        self.pool_rows = nn.AdaptiveAvgPool2d((pool_size, 1))
        self.pool_cols = nn.AdaptiveAvgPool2d((1, pool_size))
        self.out_features = previous * 2 * pool_size
        xavier_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.body(x)
        return torch.cat([self.pool_rows(f).flatten(1), self.pool_cols(f).flatten(1)], dim=1)
