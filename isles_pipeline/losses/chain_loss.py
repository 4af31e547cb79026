"""All loss terms of the chain at once (paper Eq. 1-3), as named float32 scalars and their total.

Returned terms are already multiplied by their lambda, so `total` is their plain sum:
    extractor          l1 * mean |sigmoid(e) - y|                       (extractor on)
    generator_pixel    l2 * mean(W * (DWI_g - DWI_r)^2)                 (generator on and a DWI given)
    generator_feature  l3 * mean (F_A(DWI_g) - F_B(DWI_r))^2            (idem)
    feature_aux        aux_weight * BCE of A's and B's lesion head      (idem, anti_collapse on)
    segmentor_ce       l4 * mean(W * CE)
    segmentor_dice     l4 * -log(generalised Dice)                      (segmentor_dice on)
Without a DWI target (the public ISLES 2018 has none) the generator terms are left out; the generator still
learns, end to end, through the segmentor's loss. The module owns networks A and B (and the lesion head):
give `ChainLoss.parameters()` to the optimiser with the chain's.
"""
from __future__ import annotations

import torch
from torch import nn

from isles_pipeline.losses.extractor import extractor_l1
from isles_pipeline.losses.generator import FeatureMatchingLoss, weighted_mse
from isles_pipeline.losses.segmentor import segmentor_terms
from isles_pipeline.networks.chain import ChainOutput


class ChainLoss(nn.Module):
    """Loss of `IntegratedChain`; switches for the Table-1 rows that change the loss.

    Args:
        lambda1..lambda4: the paper's weights (1.0, 0.002, 1.2, 1.0).
        segmentor_dice: add -log(GD) to the segmentor's CE ("+ GD" in Table 1).
        weight_map: use W in the CE and the generator's L2 ("+ SDF"); off ignores the W given.
        feature_base_channels: width of networks A and B.
        anti_collapse: A and B also predict the lesion (see losses.generator); aux_weight scales that term.
    """

    def __init__(self, lambda1: float = 1.0, lambda2: float = 0.002, lambda3: float = 1.2, lambda4: float = 1.0,
                 segmentor_dice: bool = True, weight_map: bool = True, feature_base_channels: int = 16,
                 anti_collapse: bool = True, aux_weight: float = 1.0) -> None:
        super().__init__()
        self.lambdas = (float(lambda1), float(lambda2), float(lambda3), float(lambda4))
        self.segmentor_dice = bool(segmentor_dice)
        self.weight_map = bool(weight_map)
        self.aux_weight = float(aux_weight)
        self.features = FeatureMatchingLoss(feature_base_channels, anti_collapse)

    def forward(self, output: ChainOutput, target: torch.Tensor, weight: torch.Tensor | None = None,
                dwi: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """target: lesion mask (N, 1, H, W); weight: W (N, 1, H, W) or None; dwi: real DWI (N, 1, H, W) or None."""
        l1, l2, l3, l4 = self.lambdas
        w = weight if self.weight_map else None
        terms: dict[str, torch.Tensor] = {}
        if output.extractor_logit is not None:
            terms["extractor"] = l1 * extractor_l1(output.extractor_logit, target)
        if output.pseudo_dwi is not None and dwi is not None:
            terms["generator_pixel"] = l2 * weighted_mse(output.pseudo_dwi, dwi, w)
            feature = self.features(output.pseudo_dwi, dwi, target)
            terms["generator_feature"] = l3 * feature["feature"]
            if "aux" in feature:
                terms["feature_aux"] = self.aux_weight * feature["aux"]
        seg = segmentor_terms(output.segmentor_logits, target, w, dice=self.segmentor_dice)
        terms["segmentor_ce"] = l4 * seg["ce"]
        if "dice" in seg:
            terms["segmentor_dice"] = l4 * seg["dice"]
        terms["total"] = torch.stack(list(terms.values())).sum()
        return terms
