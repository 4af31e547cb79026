"""Forward cost of the seed's full configuration at 256 x 256, counted on the meta device (nothing computed).

    python -m benchmarks.flops          # GFLOP per slice of each network and the chain

The GPU targets are stated against this count (compute floor = device FLOP/s / (3 x forward FLOPs) for
training slices/s), so documentation/results/flops.md quotes it from here.
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from isles_pipeline.networks import AttentionUNet, IntegratedChain, UNet


def full_networks() -> dict[str, tuple[nn.Module, int]]:
    """name -> (network of the seed's full configuration on the meta device, its input channels)."""
    with torch.device("meta"):
        return {
            "extractor": (UNet(11, 1, base_channels=32), 11),
            "generator": (UNet(7, 1, base_channels=64), 7),
            "segmentor": (AttentionUNet(1, 2, base_channels=64), 1),
        }


def forward_gflops(net: nn.Module, *inputs_channels: int, size: int = 256) -> float:
    """GFLOP of one forward pass of one slice (a multiply-add counts 2, as torch's counter does)."""
    inputs = [torch.empty(1, c, size, size, device="meta") for c in inputs_channels]
    with FlopCounterMode(display=False) as counter:
        net(*inputs)
    return counter.get_total_flops() / 1e9


def chain_gflops(size: int = 256) -> float:
    with torch.device("meta"):
        chain = IntegratedChain()
    return forward_gflops(chain, 11, 6, size=size)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-size", type=int, default=256)
    args = parser.parse_args(argv)
    for name, (net, channels) in full_networks().items():
        print(f"{name}: {forward_gflops(net, channels, size=args.size):.1f} GFLOP per slice")
    with torch.device("meta"):
        parameters = sum(p.numel() for p in IntegratedChain().parameters())
    print(f"full chain: {chain_gflops(args.size):.1f} GFLOP per slice, {parameters / 1e6:.1f} M parameters")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
