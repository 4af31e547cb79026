"""The generator's loss (paper Eq. 2): W-weighted L2 to the real DWI, plus an L2 distance between features
of the generated DWI (network A) and of the real DWI (network B), "similar to a perceptual loss".

Why A and B need a reason to exist. A and B are trained from scratch with the rest of the chain, and the
only thing the paper asks of them is F_A(DWI_g) ~ F_B(DWI_r). Both networks outputting the same constant
satisfies that exactly, so the feature term collapses to zero and teaches the generator nothing. Our fix
(switch `anti_collapse`, on by default): both networks must also predict the lesion from their features.
A shared linear head maps a feature vector to a 7 x 7 grid of logits, trained with BCE against the lesion
mask average-pooled to 7 x 7 (the fraction of lesion in each cell); A answers from the generated DWI, B from
the real one. A constant feature vector cannot locate lesions, so features must vary with the image. The
head's weight rows are unit-normalised, so features cannot shrink towards zero (which would also shrink the
matching loss) while a growing head keeps the prediction. The head's loss sees the generated DWI detached:
it trains A, B and the head, never the generator, whose objective stays the paper's. Off = the paper as
written. (The alternative, B pre-trained on real DWI and frozen, needs a pre-training stage we do not have.)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from isles_pipeline.losses.precision import as_labels, float32_region, pixel_weight
from isles_pipeline.networks.feature_net import FeatureNetwork
from isles_pipeline.networks.init import xavier_init


def weighted_mse(prediction: torch.Tensor, reference: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """mean over pixels of W * (DWI_g - DWI_r)^2; tensors (N, 1, H, W), W as them or None (= 1)."""
    with float32_region(prediction):
        sq = (prediction.float() - reference.float()).square()[:, 0]
        w = pixel_weight(weight, sq)
        return (sq if w is None else sq * w).mean()


class LesionHead(nn.Module):
    """Features -> grid x grid lesion logits, with unit-norm weight rows (see module doc)."""

    def __init__(self, in_features: int, grid: int = 7) -> None:
        super().__init__()
        self.grid = int(grid)
        self.linear = nn.Linear(in_features, self.grid * self.grid)
        xavier_init(self)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = F.linear(features, F.normalize(self.linear.weight, dim=1), self.linear.bias)
        return logits.view(-1, 1, self.grid, self.grid)


class FeatureMatchingLoss(nn.Module):
    """Networks A and B and the feature term; with `anti_collapse`, also their lesion-prediction term.

    Args:
        base_channels: width of A's and B's first convolution (see FeatureNetwork).
        anti_collapse: add the auxiliary lesion-prediction target (module doc); off = paper as written.
        pool_size: the 7 of the 7 x 1 / 1 x 7 pools, also the lesion grid.
    """

    def __init__(self, base_channels: int = 16, anti_collapse: bool = True, pool_size: int = 7) -> None:
        super().__init__()
        self.net_a = FeatureNetwork(1, base_channels, pool_size=pool_size)
        self.net_b = FeatureNetwork(1, base_channels, pool_size=pool_size)
        self.head = LesionHead(self.net_a.out_features, pool_size) if anti_collapse else None

    def forward(self, generated: torch.Tensor, real: torch.Tensor,
                target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Unscaled terms: "feature" = mean (F_A(DWI_g) - F_B(DWI_r))^2; "aux" = the heads' BCE (needs target)."""
        f_a = self.net_a(generated)
        f_b = self.net_b(real)
        with float32_region(f_a):
            terms = {"feature": (f_a.float() - f_b.float()).square().mean()}
        if self.head is not None:
            if target is None:
                raise ValueError("anti_collapse needs the lesion mask as target")
            terms["aux"] = self.auxiliary_loss(self.net_a(generated.detach()), f_b, target)
        return terms

    def auxiliary_loss(self, f_a: torch.Tensor, f_b: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """BCE of the shared head on A's and B's features against the lesion fraction per grid cell."""
        with float32_region(f_a):
            mask = as_labels(target).float().unsqueeze(1)
            grid = F.adaptive_avg_pool2d(mask, self.head.grid)
            loss_a = F.binary_cross_entropy_with_logits(self.head(f_a.float()), grid)
            loss_b = F.binary_cross_entropy_with_logits(self.head(f_b.float()), grid)
            return 0.5 * (loss_a + loss_b)
