"""The seed's losses: hand-computed generalised Dice, perfect-beats-wrong for every term, float32 under
autocast, the chain's loss without a DWI, and A/B feature networks that do not collapse."""
from __future__ import annotations

import math

import pytest
import torch

from isles_pipeline.losses import (
    ChainLoss,
    FeatureMatchingLoss,
    class_weights,
    extractor_l1,
    generalized_dice,
    log_generalized_dice_loss,
    weighted_cross_entropy,
    weighted_mse,
)
from isles_pipeline.networks import ChainOutput, IntegratedChain, preset

pytestmark = pytest.mark.usefixtures("single_torch_thread")

def logits_for(p_foreground: list[float], shape=(1, 2, 2)) -> torch.Tensor:
    """Two-class logits whose softmax gives exactly these foreground probabilities."""
    p = torch.tensor(p_foreground, dtype=torch.float32).view(shape)
    return torch.stack([torch.log(1 - p), torch.log(p)], dim=1)


def mask(values: list[int], shape=(1, 1, 2, 2)) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).view(shape)


def perfect_and_wrong_logits(target: torch.Tensor, margin: float = 12.0):
    y = target[:, 0]
    perfect = torch.stack([margin * (1 - 2 * y), margin * (2 * y - 1)], dim=1)
    return perfect, -perfect


# ---------------------------------------------------------------- generalised Dice

def test_generalized_dice_by_hand():
    # one lesion pixel of four; p_fg = .8 .1 .2 .4 -> w_fg = 1, w_bg = 1/9
    # I_fg = .8, I_bg = .9 + .8 + .6 = 2.3; U_fg = 1.5 + 1 = 2.5, U_bg = 2.5 + 3 = 5.5
    # GD = 2 (.8 + 2.3/9) / (2.5 + 5.5/9) = 19/28
    gd = generalized_dice(logits_for([0.8, 0.1, 0.2, 0.4]), mask([1, 0, 0, 0]))
    assert gd.dtype == torch.float32
    assert gd.item() == pytest.approx(19 / 28, rel=1e-5)


def test_generalized_dice_with_an_absent_class_by_hand():
    # all background; the absent foreground gets the background's weight (1/16): equal weights.
    # I_bg = .9 + .8 + .7 + .6 = 3; U_bg = 3 + 4 = 7; I_fg = 0, U_fg = 1 -> GD = 6 / 8
    gd = generalized_dice(logits_for([0.1, 0.2, 0.3, 0.4]), mask([0, 0, 0, 0]))
    assert gd.item() == pytest.approx(0.75, rel=1e-5)
    # the same with the roles swapped: an all-lesion batch
    gd = generalized_dice(logits_for([0.9, 0.8, 0.7, 0.6]), mask([1, 1, 1, 1]))
    assert gd.item() == pytest.approx(0.75, rel=1e-5)


def test_class_weights():
    torch.testing.assert_close(class_weights(torch.tensor([2.0, 4.0])), torch.tensor([0.8, 0.2]))
    torch.testing.assert_close(class_weights(torch.tensor([0.0, 4.0])), torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(class_weights(torch.tensor([0.0, 0.0])), torch.tensor([0.5, 0.5]))


def test_generalized_dice_is_finite_on_large_all_background_batches_and_complete_misses():
    target = torch.zeros(5, 1, 256, 256)
    perfect, wrong = perfect_and_wrong_logits(target, margin=30.0)
    for logits in (perfect, wrong):
        logits = logits.clone().requires_grad_(True)
        loss = log_generalized_dice_loss(logits, target)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert log_generalized_dice_loss(perfect, target).item() == pytest.approx(0.0, abs=1e-5)
    # one lesion pixel in 327,680: weights 1 and 1/(327679^2) must not underflow into 0/0
    target[2, 0, 100, 100] = 1
    perfect, wrong = perfect_and_wrong_logits(target, margin=30.0)
    assert log_generalized_dice_loss(perfect, target).item() == pytest.approx(0.0, abs=1e-4)
    assert 5.0 < log_generalized_dice_loss(wrong, target).item() < 50.0


def test_losses_are_float32_under_bf16_autocast():
    target = (torch.rand(2, 1, 16, 16) > 0.7).float()
    logits = torch.randn(2, 2, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        lb = logits.bfloat16()
        values = [generalized_dice(lb, target), weighted_cross_entropy(lb, target),
                  extractor_l1(lb[:, :1], target), weighted_mse(lb[:, :1], logits[:, 1:])]
    assert all(v.dtype == torch.float32 for v in values)
    torch.testing.assert_close(values[0], generalized_dice(logits, target), rtol=1e-2, atol=1e-2)


# ---------------------------------------------------------------- perfect beats wrong, term by term

def test_every_term_prefers_the_perfect_prediction():
    torch.manual_seed(0)
    target = (torch.rand(2, 1, 32, 32) > 0.8).float()
    weight = 1.0 + 4.0 * target
    perfect, wrong = perfect_and_wrong_logits(target)
    assert extractor_l1(perfect[:, 1:], target) < extractor_l1(wrong[:, 1:], target)
    assert weighted_cross_entropy(perfect, target, weight) < weighted_cross_entropy(wrong, target, weight)
    assert log_generalized_dice_loss(perfect, target) < log_generalized_dice_loss(wrong, target)
    dwi = torch.randn(2, 1, 32, 32)
    assert weighted_mse(dwi, dwi, weight) == 0 < weighted_mse(dwi + 1, dwi, weight)

    features = FeatureMatchingLoss(base_channels=4, anti_collapse=False)
    features.net_a.load_state_dict(features.net_b.state_dict())  # identical A and B: a perfect DWI matches exactly
    assert features(dwi, dwi)["feature"] == 0 < features(torch.randn(2, 1, 32, 32), dwi)["feature"]


def test_weight_map_scales_the_cross_entropy_and_none_means_one():
    logits, target = torch.randn(2, 2, 8, 8), (torch.rand(2, 1, 8, 8) > 0.5).float()
    plain = weighted_cross_entropy(logits, target)
    torch.testing.assert_close(weighted_cross_entropy(logits, target, torch.ones(2, 1, 8, 8)), plain)
    torch.testing.assert_close(weighted_cross_entropy(logits, target, torch.full((2, 1, 8, 8), 3.0)), 3 * plain)
    with pytest.raises(ValueError):
        weighted_cross_entropy(logits, target, torch.ones(2, 1, 4, 4))


# ---------------------------------------------------------------- the chain's loss

def small_chain_batch(**switches):
    torch.manual_seed(0)
    chain = IntegratedChain(**preset("small")["chain"], **switches)
    frames, maps = torch.randn(2, 11, 32, 32), torch.randn(2, 6, 32, 32)
    target = torch.zeros(2, 1, 32, 32)
    target[:, :, 8:16, 10:20] = 1
    return chain, frames, maps, target, 1.0 + target


def test_chain_loss_terms_with_and_without_dwi():
    chain, frames, maps, target, weight = small_chain_batch()
    loss = ChainLoss(feature_base_channels=4)
    out = chain(frames, maps)
    with_dwi = loss(out, target, weight, dwi=torch.randn(2, 1, 32, 32))
    assert set(with_dwi) == {"extractor", "generator_pixel", "generator_feature", "feature_aux", "segmentor_ce",
                             "segmentor_dice", "total"}
    assert all(v.dtype == torch.float32 and v.dim() == 0 and torch.isfinite(v) for v in with_dwi.values())
    torch.testing.assert_close(with_dwi["total"], sum(v for k, v in with_dwi.items() if k != "total"))

    without = loss(out, target, weight, dwi=None)
    assert set(without) == {"extractor", "segmentor_ce", "segmentor_dice", "total"}
    without["total"].backward()  # no DWI: the generator still learns through the segmentor
    assert chain.generator.encoder[0].conv1.weight.grad.abs().sum() > 0
    assert chain.extractor.encoder[0].conv1.weight.grad.abs().sum() > 0


def test_chain_loss_switches_and_lambdas():
    chain, frames, maps, target, weight = small_chain_batch(use_extractor=False, use_generator=False)
    out = chain(None, maps)
    terms = ChainLoss(segmentor_dice=False, weight_map=False, feature_base_channels=4)(out, target, weight)
    assert set(terms) == {"segmentor_ce", "total"}
    torch.testing.assert_close(terms["segmentor_ce"], weighted_cross_entropy(out.segmentor_logits, target))
    doubled = ChainLoss(lambda4=2.0, feature_base_channels=4)(out, target, weight)
    torch.testing.assert_close(doubled["segmentor_ce"],
                               2 * weighted_cross_entropy(out.segmentor_logits, target, weight))


def test_chain_loss_of_a_perfect_output_is_lower():
    torch.manual_seed(0)
    _, _, _, target, weight = small_chain_batch()
    dwi = 0.2 + target + 0.05 * torch.randn(2, 1, 32, 32)
    perfect, wrong = perfect_and_wrong_logits(target)
    loss = ChainLoss(feature_base_channels=4)
    loss.features.net_a.load_state_dict(loss.features.net_b.state_dict())
    good = loss(ChainOutput(perfect[:, 1:], dwi, perfect), target, weight, dwi)
    bad = loss(ChainOutput(wrong[:, 1:], 1 - dwi, wrong), target, weight, dwi)
    for name in ("extractor", "generator_pixel", "generator_feature", "segmentor_ce", "segmentor_dice", "total"):
        assert good[name] < bad[name], name


# ---------------------------------------------------------------- A and B do not collapse

def blobs(n: int, generator: torch.Generator, size: int = 32):
    """Phantom-like DWI slices: 0 to 2 bright discs (the lesion) on a grey background with noise."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    masks = torch.zeros(n, 1, size, size)
    for i in range(n):
        for _ in range(int(torch.randint(0, 3, (1,), generator=generator))):
            cy, cx = torch.randint(6, size - 6, (2,), generator=generator).tolist()
            radius = float(torch.randint(2, 6, (1,), generator=generator))
            masks[i, 0][((yy - cy) ** 2 + (xx - cx) ** 2) <= radius**2] = 1
    return 0.3 + masks + 0.1 * torch.randn(n, 1, size, size, generator=generator), masks


def train_feature_nets(anti_collapse: bool, steps: int = 200):
    """Only A, B (and the head) learn; the 'generated' DWI is the real one plus noise, as from a poor generator."""
    torch.manual_seed(0)
    data = torch.Generator().manual_seed(1)
    loss = FeatureMatchingLoss(base_channels=4, anti_collapse=anti_collapse)
    optimiser = torch.optim.RMSprop(loss.parameters(), lr=2e-3)
    for _ in range(steps):
        real, lesion = blobs(8, data)
        terms = loss(real + 0.2 * torch.randn(real.shape, generator=data), real, lesion)
        total = 1.2 * terms["feature"] + terms.get("aux", 0.0)
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
    return loss


def feature_variance(loss: FeatureMatchingLoss, images: torch.Tensor) -> float:
    """Variance across samples of B's features, averaged over features: 0 for a collapsed network."""
    with torch.no_grad():
        return loss.net_b(images).var(dim=0).mean().item()


def test_feature_networks_do_not_collapse_with_the_auxiliary_target_and_do_without():
    images, lesions = blobs(32, torch.Generator().manual_seed(99))
    kept = train_feature_nets(anti_collapse=True)
    collapsed = train_feature_nets(anti_collapse=False)
    threshold = 1e-5  # Xavier-initialised networks start near 2e-5; trained with the target, near 1e-3
    assert feature_variance(kept, images) > threshold
    assert feature_variance(collapsed, images) < threshold * 1e-2
    # and the features carry the lesion: the head does better on the true masks than on shuffled ones
    with torch.no_grad():
        f_b = kept.net_b(images)
        right = kept.auxiliary_loss(kept.net_a(images), f_b, lesions)
        shuffled = kept.auxiliary_loss(kept.net_a(images), f_b, lesions.roll(1, dims=0))
    assert right < shuffled
    assert math.isfinite(right.item())
