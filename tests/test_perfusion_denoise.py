"""The CTP denoising: the profile bilateral filter against its formula, on the head's box only, and in place;
the noise estimates it rests on."""
import numpy as np
import pytest
import torch

from isles_pipeline.perfusion.denoise import (
    PROFILE_BLOCK_FRAMES,
    masked_gaussian,
    profile_bilateral,
    profile_bilateral_inside,
)

PIXEL_MM = (0.9, 0.9)


def _frames(seed=0, count=10, size=14):
    rng = np.random.default_rng(seed)
    tissue = np.where(np.arange(size)[None, :] < size // 2, 30.0, 45.0) * np.ones((size, 1))
    bolus = np.linspace(0, 1, count)[:, None, None] * tissue[None]
    return torch.as_tensor(tissue[None] + bolus + rng.normal(0, 3.0, (count, size, size)), dtype=torch.float32)


def _by_the_formula(frames, noise_sd, radius=2, spatial_sigma_mm=1.5):
    """sum_n w f(n) / sum_n w over the (2r+1)^2 neighbours, w = exp(-d^2 / (2E) - |n - x|^2 / (2 s^2)), d^2 the
    summed squared difference of the block-mean profiles, E = 2 noise_sd^2 / block * (number of blocks)."""
    f = frames.double().numpy()
    count, height, width = f.shape
    usable = count - count % PROFILE_BLOCK_FRAMES
    profiles = f[:usable].reshape(-1, PROFILE_BLOCK_FRAMES, height, width).mean(axis=1)
    expected_noise = 2 * noise_sd**2 / PROFILE_BLOCK_FRAMES * profiles.shape[0]
    out = np.empty_like(f)
    for y in range(height):
        for x in range(width):
            total, weights = np.zeros(count), 0.0
            for dy in range(-radius, radius + 1):
                for dx in range(-radius, radius + 1):
                    ny, nx = y + dy, x + dx
                    spatial = ((dy * PIXEL_MM[0]) ** 2 + (dx * PIXEL_MM[1]) ** 2) / (2 * spatial_sigma_mm**2)
                    if not (0 <= ny < height and 0 <= nx < width) or spatial > 4.5:
                        continue
                    distance = ((profiles[:, y, x] - profiles[:, ny, nx]) ** 2).sum()
                    w = 1.0 if (dy, dx) == (0, 0) else np.exp(-distance / (2 * expected_noise) - spatial)
                    total += w * f[:, ny, nx]
                    weights += w
            out[:, y, x] = total / weights
    return out


def test_profile_bilateral_is_its_formula():
    frames = _frames()
    np.testing.assert_allclose(profile_bilateral(frames, 3.0, PIXEL_MM).numpy(), _by_the_formula(frames, 3.0),
                               rtol=1e-5, atol=1e-3)


def test_bilateral_inside_the_head_box_equals_the_whole_slice_there_and_leaves_the_rest():
    frames = _frames(1, size=24)
    region = torch.zeros(24, 24, dtype=torch.bool)
    region[6:15, 5:12] = True
    whole = profile_bilateral(frames, 3.0, PIXEL_MM)
    copy = frames.clone()
    inside = profile_bilateral_inside(copy, region, 3.0, PIXEL_MM, in_place=True)
    assert inside.data_ptr() == copy.data_ptr()
    torch.testing.assert_close(inside[:, region], whole[:, region])
    outside_box = torch.ones(24, 24, dtype=torch.bool)
    outside_box[4:17, 3:14] = False  # the region's box grown by the filter's 2-pixel radius
    torch.testing.assert_close(inside[:, outside_box], frames[:, outside_box])
    assert not torch.equal(inside[:, region], frames[:, region])
    untouched = frames.clone()
    profile_bilateral_inside(untouched, region, 3.0, PIXEL_MM)
    assert torch.equal(untouched, frames)


def test_masked_gaussian_in_place_equals_the_copy():
    curves = _frames(2, size=20)
    mask = torch.zeros(20, 20, dtype=torch.bool)
    mask[3:17, 4:15] = True
    copy = masked_gaussian(curves, mask, 4.0, PIXEL_MM)
    target = curves.clone()
    masked_gaussian(target, mask, 4.0, PIXEL_MM, in_place=True)
    torch.testing.assert_close(target, copy)
    torch.testing.assert_close(copy[:, ~mask], curves[:, ~mask])  # only the mask is smoothed
    assert copy[:, mask].std() < curves[:, mask].std()


@pytest.mark.parametrize("frames", [2, 3, 4, 10])
def test_the_baseline_noise_estimate_is_unbiased_for_few_frames(frames):
    """The median of few frames' SDs falls short of sigma (by 33 % with 2 frames, 11 % with 4): corrected."""
    from isles_pipeline.perfusion.denoise import estimate_noise_sd

    rng = np.random.default_rng(frames)
    baseline = rng.normal(30.0, 6.0, (frames, 4, 64, 64)).astype(np.float32)
    mask = np.ones((4, 64, 64), bool)
    assert estimate_noise_sd(baseline, mask) == pytest.approx(6.0, rel=0.03)
    assert np.median(baseline[:, mask].std(axis=0, ddof=1)) < 6.0 * (0.99 if frames < 10 else 1.0)  # uncorrected


def test_without_a_baseline_the_noise_comes_from_second_differences():
    """A bolus in every voxel (a scan started late): the second differences' spread still gives sigma."""
    from isles_pipeline.perfusion.denoise import estimate_noise_sd_from_differences
    from isles_pipeline.phantom.physiology import Bolus

    times = np.arange(40.0)
    curve = 30.0 + 0.06 * Bolus(0.5, 3.0, 1.5, 400.0, 12.0, 0.12)(times)  # 24 HU tissue peak at ~5 s
    rng = np.random.default_rng(5)
    frames = (curve[:, None, None, None] + rng.normal(0, 4.0, (40, 2, 32, 32))).astype(np.float32)
    assert estimate_noise_sd_from_differences(frames, np.ones((2, 32, 32), bool)) == pytest.approx(4.0, rel=0.05)
