"""The seed's integrated chain: extractor -> generator (pseudo-DWI) -> segmentor (paper Fig. 1), with the
switches that turn it into every row of the paper's Table 1.

Inputs: `frames` (N, n_frames, H, W), the 11 temporally preprocessed CTP frames, and `maps` (N, n_maps, H, W),
in the seed's order CBF, CBV, MTT, Tmax, PWImax_o, PWImax_p (the chain does not care about the order, the
preprocessing fixes it). H and W must be divisible by 2**depth (16).

Wiring, by switch:
- use_extractor and use_generator (full method): generator(cat[extractor feature map, maps]) -> pseudo-DWI
  -> segmentor. The extractor's feature map is its single-channel output before the sigmoid (paper 2.3:
  "calculated before sigmoid activation"); `extractor_output="probability"` feeds the sigmoid instead.
- use_generator without extractor: the generator gets the maps only. We chose this over feeding a constant
  placeholder channel: it is the paper's "two-stage" row (G without E).
- no generator (one-stage rows): the segmentor works directly on [extractor feature map,] maps.
- excluded_maps: names of map channels the chain leaves out (`map_names` names the channels of `maps`; the
  trainer passes the plans' `map_channels`). The input keeps all n_maps channels (one preprocessed dataset
  serves every row); the excluded ones are dropped before the first network, whose first convolution has
  only the used channels. Table 1 follows paper section 3: the one-stage rows read CBF, CBV, MTT, Tmax
  (PWImax_o and PWImax_p excluded), the two-stage rows add PWImax_p (PWImax_o excluded), the three-stage
  rows read everything.
- input_bn: a parameter-free BatchNorm before the first convolution of every network that reads the data
  (extractor and generator; the segmentor only when there is no generator). The segmentor's pseudo-DWI
  input is produced by the chain and is not re-normalised.
- segmentor_norm "switch" | "batch", segmentor_se on/off: attention U-Net (SE + SN) or plain U-Net.
- norm: the norm of the extractor's and generator's stages ("batch" in the seed).

Table 1 (loss switches live in `isles_pipeline.losses.ChainLoss`):
  U-Net + CE             use_extractor=False, use_generator=False, segmentor_se=False, segmentor_norm="batch",
                         input_bn=False, excluded_maps=[PWImax_o, PWImax_p]; loss segmentor_dice=False,
                         weight_map=False
  + GD                   loss segmentor_dice=True
  AU-Net                 segmentor_se=True
  + G                    use_generator=True, excluded_maps=[PWImax_o]
  + SDF                  loss weight_map=True
  + SN                   segmentor_norm="switch"
  + E                    use_extractor=True, excluded_maps=[]
  + BN (full method)     input_bn=True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import nn

from isles_pipeline.networks.unet import UNet, check_divisible


@dataclass
class ChainOutput:
    """What the chain returns. Entries of switched-off networks are None."""

    extractor_logit: Optional[torch.Tensor]  # (N, 1, H, W), before sigmoid
    pseudo_dwi: Optional[torch.Tensor]  # (N, 1, H, W), the generator's output
    segmentor_logits: torch.Tensor  # (N, 2, H, W): background, core


def used_map_positions(n_maps: int, map_names: Optional[Sequence[str]], excluded: Sequence[str]) -> list[int]:
    """Positions (in `maps`) of the channels the chain reads: all but the `excluded` names."""
    excluded = list(excluded or ())
    if not excluded:
        return list(range(n_maps))
    if map_names is None:
        raise ValueError(f"excluded_maps {excluded} needs map_names (the names of the maps' channels)")
    names = list(map_names)
    if len(names) != n_maps:
        raise ValueError(f"map_names {names} has {len(names)} names for {n_maps} map channels")
    unknown = [name for name in excluded if name not in names]
    if unknown:
        raise ValueError(f"excluded_maps {unknown} are not among the map channels {names}")
    used = [i for i, name in enumerate(names) if name not in excluded]
    if not used:
        raise ValueError(f"excluded_maps {excluded} leave no map channel")
    return used


class IntegratedChain(nn.Module):
    """Extractor (U-Net, half width) -> generator (U-Net) -> segmentor (attention U-Net). See module doc."""

    def __init__(self, n_frames: int = 11, n_maps: int = 6, use_extractor: bool = True, use_generator: bool = True,
                 extractor_base: int = 32, generator_base: int = 64, segmentor_base: int = 64, depth: int = 4,
                 norm: str = "batch", segmentor_norm: str = "switch", segmentor_se: bool = True,
                 se_reduction: int = 16, input_bn: bool = True, extractor_output: str = "logit",
                 n_classes: int = 2, map_names: Optional[Sequence[str]] = None,
                 excluded_maps: Sequence[str] = ()) -> None:
        super().__init__()
        if extractor_output not in ("logit", "probability"):
            raise ValueError(f"extractor_output must be 'logit' or 'probability', got {extractor_output!r}")
        self.use_extractor, self.use_generator = bool(use_extractor), bool(use_generator)
        self.extractor_output = extractor_output
        self.depth = int(depth)
        self.n_frames, self.n_maps = int(n_frames), int(n_maps)
        self.used_maps = used_map_positions(self.n_maps, map_names, excluded_maps)
        data_channels = len(self.used_maps) + (1 if use_extractor else 0)

        self.extractor = (UNet(n_frames, 1, extractor_base, depth, norm, input_bn=input_bn)
                          if use_extractor else None)
        self.generator = (UNet(data_channels, 1, generator_base, depth, norm, input_bn=input_bn)
                          if use_generator else None)
        self.segmentor = UNet(1 if use_generator else data_channels, n_classes, segmentor_base, depth,
                              segmentor_norm, se=segmentor_se, se_reduction=se_reduction,
                              input_bn=input_bn and not use_generator)

    def forward(self, frames: Optional[torch.Tensor], maps: torch.Tensor) -> ChainOutput:
        check_divisible(maps, 2**self.depth, "maps")
        if maps.shape[1] != self.n_maps:
            raise ValueError(f"maps must have {self.n_maps} channels, got {maps.shape[1]}")
        extractor_logit = None
        if len(self.used_maps) < self.n_maps:
            maps = maps[:, self.used_maps]
        data = maps
        if self.extractor is not None:
            if frames is None:
                raise ValueError("the extractor is on, so the CTP frames are required")
            extractor_logit = self.extractor(frames)
            feature = extractor_logit if self.extractor_output == "logit" else torch.sigmoid(extractor_logit)
            data = torch.cat([feature, maps], dim=1)
        pseudo_dwi = None
        if self.generator is not None:
            pseudo_dwi = self.generator(data)
            data = pseudo_dwi
        return ChainOutput(extractor_logit, pseudo_dwi, self.segmentor(data))
