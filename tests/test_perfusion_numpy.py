"""The CPU engine's numpy kernels give the torch kernels' results (the GPU path), and the command's CPU path
does not import torch."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from isles_pipeline.perfusion import numpy_kernels
from isles_pipeline.perfusion.deconvolution import METHODS, Deconvolver
from isles_pipeline.perfusion.denoise import masked_gaussian, profile_bilateral, profile_bilateral_inside
from isles_pipeline.perfusion.maps import flow_and_tmax

PIXEL_MM = (0.9, 1.1)


def _frames(seed=0, count=22, height=30, width=27):
    rng = np.random.default_rng(seed)
    tissue = np.where(np.arange(width)[None, :] < width // 2, 30.0, 45.0) * np.ones((height, 1))
    bolus = np.linspace(0, 1, count)[:, None, None] * tissue[None]
    return (tissue[None] + bolus + rng.normal(0, 3.0, (count, height, width))).astype(np.float32)


# float32 sums of values near 30-90 HU, in another order in each kernel: 3e-5 HU apart here (4 ulp at 64);
# CPUs with other vector widths round differently, and a wrong weight or neighbour moves these values by >1e-2
FLOAT32_HU = 4e-4


def _curves(seed=0, voxels=3000):
    rng = np.random.default_rng(seed)
    t = np.arange(40.0)
    aif = 400 * np.exp(-((t - 10) / 3) ** 2)
    delay = rng.uniform(0, 5, voxels)
    curves = 20 * np.exp(-((t[:, None] - 14 - delay[None]) / 5) ** 2) + rng.normal(0, 1.5, (40, voxels))
    return aif, curves.astype(np.float32)


@pytest.mark.parametrize("noise_sd", [0.0, 3.0, 8.0])
def test_profile_bilateral_matches_torch(noise_sd):
    frames = _frames()
    expected = profile_bilateral(torch.from_numpy(frames), noise_sd, PIXEL_MM).numpy()
    np.testing.assert_allclose(numpy_kernels.profile_bilateral(frames, noise_sd, PIXEL_MM), expected, atol=FLOAT32_HU)


def test_profile_bilateral_inside_and_masked_gaussian_match_torch():
    frames = _frames(1)
    region = np.zeros(frames.shape[1:], bool)
    region[5:20, 4:18] = True
    expected = profile_bilateral_inside(torch.from_numpy(frames.copy()), region, 3.0, PIXEL_MM).numpy()
    np.testing.assert_allclose(numpy_kernels.profile_bilateral_inside(frames.copy(), region, 3.0, PIXEL_MM),
                               expected, atol=FLOAT32_HU)
    expected = masked_gaussian(torch.from_numpy(frames), torch.from_numpy(region), 2.5, PIXEL_MM).numpy()
    np.testing.assert_allclose(numpy_kernels.masked_gaussian(frames.copy(), region, 2.5, PIXEL_MM), expected,
                               atol=FLOAT32_HU)


@pytest.mark.parametrize("method", METHODS)
def test_deconvolution_and_maps_match_torch(method):
    aif, curves = _curves()
    reference = Deconvolver.for_aif(aif, 1.0, method).residues(curves)
    residues = numpy_kernels.NumpyDeconvolver.for_aif(aif, 1.0, method).residues(curves)
    scale = float(reference.abs().max())
    np.testing.assert_allclose(residues, reference.numpy(), atol=1e-4 * scale)
    cbf, tmax = flow_and_tmax(residues, 1.0, 40, definition="rise")
    expected_cbf, expected_tmax = flow_and_tmax(reference, 1.0, 40, definition="rise")
    np.testing.assert_allclose(cbf, expected_cbf, rtol=1e-3, atol=1e-3)
    assert np.mean(np.abs(tmax - expected_tmax) > 1e-2) < 0.002  # a near-tie of samples may flip one voxel


def test_perfusion_command_on_cpu_does_not_import_torch():
    code = ("import sys; from isles_pipeline.cli import perfusion_maps; from isles_pipeline.devices import device_name;"
            " device_name('cpu'); print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
