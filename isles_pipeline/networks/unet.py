"""The seed's U-Net (paper 2.2), parametrised so that the extractor, generator and segmentor are all one
class with different arguments.

Contracting path: `depth` stages of two 3x3 conv + norm + ReLU, each followed by 2x2 max-pooling; channels
double from `base_channels` at every step (64 -> 1024 in the full configuration, with the bottleneck stage).
Expanding path: 2x2 transposed convolution halving the channels, concatenation with the skip, a stage of
two 3x3 convolutions. A 1x1 convolution gives the logits. Padding keeps sizes, so the input's height and
width must be divisible by 2**depth (16): anything else raises ValueError, and callers pad.
"""
from __future__ import annotations

import torch
from torch import nn

from isles_pipeline.networks.blocks import ConvStage
from isles_pipeline.networks.init import xavier_init
from isles_pipeline.networks.norms import make_input_norm


def check_divisible(x: torch.Tensor, factor: int, name: str = "input") -> None:
    """ValueError unless the last two dims of `x` are multiples of `factor` (padding is the caller's job)."""
    h, w = x.shape[-2:]
    if h % factor or w % factor:
        raise ValueError(f"{name} height and width must be divisible by {factor} (got {h} x {w}); pad the slices")


class UNet(nn.Module):
    """2D U-Net.

    Args:
        in_channels, out_channels: input channels and output logits.
        base_channels: width of the first stage (64 full, 32 for the seed's extractor).
        depth: number of down blocks (4 in the seed).
        norm: "batch", "switch", "instance" or "none" after every 3x3 convolution.
        se: squeeze-and-excitation block at the end of every stage (the attention U-Net).
        se_reduction: SE bottleneck ratio.
        input_bn: parameter-free BatchNorm on the input before the first convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, base_channels: int = 64, depth: int = 4,
                 norm: str = "batch", se: bool = False, se_reduction: int = 16, input_bn: bool = False) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.in_channels, self.out_channels, self.depth = int(in_channels), int(out_channels), int(depth)
        widths = [int(base_channels) * 2**i for i in range(depth + 1)]
        stage = dict(norm=norm, se=se, se_reduction=se_reduction)

        self.input_norm = make_input_norm(in_channels, input_bn)
        self.encoder = nn.ModuleList()
        previous = in_channels
        for width in widths[:-1]:
            self.encoder.append(ConvStage(previous, width, **stage))
            previous = width
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = ConvStage(widths[-2], widths[-1], **stage)
        self.upsample = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for deep, shallow in zip(widths[:0:-1], widths[-2::-1]):
            self.upsample.append(nn.ConvTranspose2d(deep, shallow, kernel_size=2, stride=2))
            self.decoder.append(ConvStage(2 * shallow, shallow, **stage))
        self.head = nn.Conv2d(widths[0], out_channels, kernel_size=1)
        xavier_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_divisible(x, 2**self.depth, type(self).__name__ + " input")
        x = self.input_norm(x)
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, stage, skip in zip(self.upsample, self.decoder, reversed(skips)):
            x = stage(torch.cat([up(x), skip], dim=1))
        return self.head(x)


class AttentionUNet(UNet):
    """The seed's segmentor (paper Fig. 2): the U-Net with an SE block in every stage and switchable norm.
    Defaults: pseudo-DWI in (1 channel), background/foreground logits out (2)."""

    def __init__(self, in_channels: int = 1, out_channels: int = 2, base_channels: int = 64, depth: int = 4,
                 norm: str = "switch", se: bool = True, se_reduction: int = 16, input_bn: bool = False) -> None:
        super().__init__(in_channels, out_channels, base_channels, depth, norm, se, se_reduction, input_bn)
