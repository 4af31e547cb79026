"""The SDF weight map W: 1 + alpha on the lesion, decaying over sigma_mm outside, exactly 1 without lesion."""
import numpy as np
import pytest

from isles_pipeline.preprocessing.weight_map import sdf_weight_map


def lesion_volume():
    label = np.zeros((3, 40, 40), np.uint8)
    label[1, 18:22, 18:22] = 1  # slice 1 only
    label[2, 5:8, 30:33] = 1
    return label


def test_exactly_one_on_slices_without_lesion_and_never_zero():
    weight = sdf_weight_map(lesion_volume(), (1.0, 1.0), alpha=4.0, sigma_mm=10.0)
    assert weight.dtype == np.float32 and weight.shape == (3, 40, 40)
    assert np.all(weight[0] == 1.0)
    assert weight.min() >= 1.0
    assert weight.max() == pytest.approx(5.0)


def test_lesion_gets_one_plus_alpha_and_surroundings_decay_with_distance():
    label = lesion_volume()
    weight = sdf_weight_map(label, (1.0, 1.0), alpha=4.0, sigma_mm=10.0)
    assert np.all(weight[1][label[1] > 0] == pytest.approx(5.0))
    # 5 pixels right of the lesion's last column (x = 21) at 1 mm: d = 5 mm
    assert weight[1, 20, 26] == pytest.approx(1 + 4 * np.exp(-0.5), rel=1e-5)
    profile = weight[1, 20, 21:]
    assert np.all(np.diff(profile) < 0)
    assert weight[1, 20, 21] > weight[1, 20, 30] > weight[1, 0, 0] > 1.0


def test_distances_are_in_millimetres():
    label = lesion_volume()
    fine = sdf_weight_map(label, (0.5, 0.5), alpha=4.0, sigma_mm=10.0)
    coarse = sdf_weight_map(label, (1.0, 1.0), alpha=4.0, sigma_mm=10.0)
    assert fine[1, 20, 26] == pytest.approx(1 + 4 * np.exp(-0.25), rel=1e-5)
    assert fine[1, 20, 26] > coarse[1, 20, 26]
    anisotropic = sdf_weight_map(label, (2.0, 1.0), alpha=4.0, sigma_mm=10.0)
    # 5 rows below the lesion at 2 mm per row is 10 mm; 5 columns right at 1 mm is 5 mm
    assert anisotropic[1, 26, 20] == pytest.approx(1 + 4 * np.exp(-1.0), rel=1e-5)
    assert anisotropic[1, 20, 26] == pytest.approx(1 + 4 * np.exp(-0.5), rel=1e-5)


def test_two_dimensional_input_and_empty_label():
    assert np.all(sdf_weight_map(np.zeros((8, 8)), (1.0, 1.0)) == 1.0)
    single = sdf_weight_map(lesion_volume()[1], (1.0, 1.0))
    assert single.shape == (40, 40) and single.max() == pytest.approx(5.0)
