"""The GPU augmentation (run here on the CPU, same code): known points land where the forward map says,
label and image stay aligned, zero strength is the identity, probabilities and seeds behave."""
from __future__ import annotations

import math

import pytest
import torch

from isles_pipeline.augmentation import (
    SpatialAugmentation,
    apply_warp,
    forward_points,
    identity_parameters,
    sampling_grid,
)

H = W = 96


def blob(x: float, y: float, sigma: float = 1.0) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    return torch.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))[None, None]


def centroid(image: torch.Tensor) -> tuple[float, float]:
    yy, xx = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    mass = image[0, 0].sum()
    return float((image[0, 0] * xx).sum() / mass), float((image[0, 0] * yy).sum() / mass)


def params(theta=0.0, scale=1.0, centre=(0.0, 0.0), k=0.0, mirror=1.0):
    p = identity_parameters(1)
    p.theta[:], p.scale[:], p.k[:], p.mirror[:] = theta, scale, k, mirror
    p.centre[:] = torch.tensor(centre)
    return p


def test_forward_map_of_known_points():
    c = (W - 1) / 2
    # 90 degrees counter-clockwise in (x, y): (c + 10, c) -> (c, c + 10)
    out = forward_points(params(theta=math.pi / 2), torch.tensor([[[c + 10, c]]]), H, W)
    assert out[0, 0].tolist() == pytest.approx([c, c + 10], abs=1e-4)
    # radial: a point at r = 0.5 half-widths moves to r (1 + k r^2)
    out = forward_points(params(k=0.1), torch.tensor([[[c + 24, c]]]), H, W)
    assert out[0, 0, 0].item() - c == pytest.approx(24 * (1 + 0.1 * 0.25), abs=1e-4)
    # crop of half the slice centred on the centre: distances from the centre double
    out = forward_points(params(scale=0.5), torch.tensor([[[c + 10, c - 5]]]), H, W)
    assert out[0, 0].tolist() == pytest.approx([c + 20, c - 10], abs=1e-4)


@pytest.mark.parametrize("warp", [dict(theta=0.4), dict(k=0.15), dict(k=-0.15), dict(scale=0.8, centre=(0.1, -0.15)),
                                  dict(theta=-0.3, scale=0.85, centre=(-0.1, 0.05), k=0.1, mirror=-1.0)])
def test_the_image_moves_where_the_point_map_says(warp):
    point = torch.tensor([60.0, 33.0])
    p = params(**warp)
    warped, _ = apply_warp(sampling_grid(p, H, W), blob(*point.tolist()))
    expected = forward_points(p, point[None, None], H, W)[0, 0]
    assert centroid(warped) == pytest.approx(expected.tolist(), abs=0.15)


def test_label_and_image_stay_aligned():
    yy, xx = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    label = (((xx - 55) ** 2 + (yy - 40) ** 2) < 15**2).float()[None, None].repeat(4, 1, 1, 1)
    image = torch.cat([label * 3.0 + 1.0, 1.0 - label], dim=1)  # two channels carrying the label
    aug = SpatialAugmentation(25.0, 1.0, [0.7, 0.9], 1.0, 0.15, 1.0, 0.5)
    warped, warped_label = aug.augment(image, label, torch.Generator().manual_seed(3))
    assert not torch.equal(warped_label, label)
    assert set(torch.unique(warped_label).tolist()) <= {0.0, 1.0}  # nearest neighbour: still a label
    inside = warped[:, 0:1] > 2.5
    confident = (warped[:, 0:1] > 3.5) | (warped[:, 0:1] < 1.5)
    assert torch.equal(inside[confident], warped_label.bool()[confident])
    assert (inside != warped_label.bool()).float().mean() < 0.01  # disagreement only on border pixels
    assert torch.allclose(warped[:, 0:1] + 3 * warped[:, 1:2], torch.full_like(warped[:, :1], 4.0), atol=1e-5)


def test_zero_strength_is_the_identity():
    generator = torch.Generator().manual_seed(11)
    image = torch.randn(3, 5, H, W, generator=generator)
    label = (torch.rand(3, 1, H, W, generator=generator) > 0.7).float()
    grid = sampling_grid(identity_parameters(3), H, W)
    warped, warped_label = apply_warp(grid, image, label)  # through grid_sample, no short cut
    # float32 grid coordinates land within ~1e-5 px of the pixel centres, and CPUs differ in how they round;
    # 1e-4 still fails for any real shift (0.01 px moves these values by ~1e-2)
    assert torch.allclose(warped, image, atol=1e-4)
    assert torch.equal(warped_label, label)
    off = SpatialAugmentation(15.0, 0.0, [0.8, 1.0], 0.0, 0.15, 0.0, 0.0)
    same, same_label = off.augment(image, label, torch.Generator().manual_seed(0))
    assert torch.equal(same, image) and torch.equal(same_label, label)
    zero = SpatialAugmentation(0.0, 1.0, [1.0, 1.0], 1.0, 0.0, 1.0, 0.0)  # always "on", at zero strength
    same, same_label = zero.augment(image, label, torch.Generator().manual_seed(0))
    assert torch.equal(same, image) and torch.equal(same_label, label)


def test_probabilities_and_seeds():
    aug = SpatialAugmentation(15.0, 0.5, [0.8, 1.0], 0.5, 0.15, 0.3, 0.0)
    p = aug.sample(4000, 64, 64, torch.Generator().manual_seed(1))
    assert (p.theta != 0).float().mean().item() == pytest.approx(0.5, abs=0.03)
    assert (p.scale != 1).float().mean().item() == pytest.approx(0.5, abs=0.03)
    assert (p.k != 0).float().mean().item() == pytest.approx(0.3, abs=0.03)
    assert p.theta.abs().max() <= math.radians(15) + 1e-6 and p.k.abs().max() <= 0.15 + 1e-6
    assert (p.scale >= 0.8).all() and (p.mirror == 1).all()
    assert (p.centre.abs() <= (1 - p.scale)[:, None] + 1e-6).all()  # the crop window stays inside the slice
    q = aug.sample(4000, 64, 64, torch.Generator().manual_seed(1))
    assert torch.equal(p.theta, q.theta) and torch.equal(p.centre, q.centre)


def test_from_plans_reads_the_planned_section():
    aug = SpatialAugmentation.from_plans({"rotation_degrees": 10, "p_rotation": 1.0, "crop_scale": [0.9, 1.0],
                                          "p_crop": 0.0, "radial_distortion": 0.1, "p_radial_distortion": 0.0,
                                          "p_mirror": 0.0})
    assert aug.rotation == pytest.approx(math.radians(10)) and aug.crop_scale == (0.9, 1.0)
