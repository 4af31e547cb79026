"""Smooth random fields: the one source of irregularity (boundaries, textures, correlated noise)."""
from __future__ import annotations

import numpy as np
import torch
from scipy import fft, ndimage

FFT_ABOVE_RADIUS = 12  # kernel radius (voxels) above which the Fourier route is the cheaper one


def white_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Independent standard normal float32 values, from torch's generator seeded by `rng`.

    torch's vectorised Box-Muller draws are about twice as fast as numpy's ziggurat, and the phantom draws
    one value per voxel and frame for the acquisition noise (its largest single cost after the vendors'
    deconvolution). Same seed, same values on a machine, whatever the process count (torch draws serially).
    The anatomy's and the lesion's smooth fields keep numpy's draws, so a seed still gives the heads and
    lesions it always did.
    """
    generator = torch.Generator().manual_seed(int(rng.integers(2**63)))
    return torch.empty(tuple(int(n) for n in shape), dtype=torch.float32).normal_(generator=generator).numpy()


def smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma_voxels) -> np.ndarray:
    """White noise blurred by a Gaussian and rescaled to zero mean, unit standard deviation (float32).

    The blur is scipy.ndimage.gaussian_filter's (sampled kernel truncated at 4 sigma, mode "wrap", i.e. a
    circular convolution). A wide one (the phantom's fields are 3 to 15 mm wide: up to 130 taps) is done in
    Fourier space with the same result up to float rounding, at a cost that does not grow with sigma.
    """
    field = rng.standard_normal(shape, dtype=np.float32)  # numpy's draws: the same heads and lesions as ever
    sigmas = np.broadcast_to(np.asarray(sigma_voxels, float), (len(shape),))
    if max(int(4.0 * s + 0.5) for s in sigmas) <= FFT_ABOVE_RADIUS:  # a short kernel is cheaper directly
        return _standardised(ndimage.gaussian_filter(field, tuple(sigmas), mode="wrap"))
    spectrum = fft.rfftn(field)
    for axis, (size, sigma) in enumerate(zip(shape, sigmas)):
        transfer = _wrapped_gaussian_transfer(size, sigma, real=axis == len(shape) - 1)
        spectrum *= transfer.reshape((-1,) + (1,) * (len(shape) - 1 - axis))
    return _standardised(fft.irfftn(spectrum, s=shape, axes=range(len(shape))).astype(np.float32, copy=False))


def _standardised(field: np.ndarray) -> np.ndarray:
    field -= field.mean()
    std = float(field.std())
    return field / (std if std > 0 else 1.0)


def _wrapped_gaussian_transfer(size: int, sigma: float, real: bool) -> np.ndarray:
    """DFT of ndimage's 1D Gaussian kernel (radius int(4 sigma + 0.5), normalised) wrapped onto `size`
    samples: the transfer function of its mode-"wrap" filter along an axis of that length."""
    radius = int(4.0 * sigma + 0.5)
    if sigma <= 0 or radius == 0:
        return np.ones(size // 2 + 1 if real else size, np.float32)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    wrapped = np.zeros(size)
    np.add.at(wrapped, offsets % size, kernel / kernel.sum())
    transfer = np.fft.rfft(wrapped) if real else np.fft.fft(wrapped)
    return transfer.real.astype(np.float32)  # the kernel is symmetric: its spectrum is real


def voxel_sigma(sigma_mm: float, spacing_zyx: tuple[float, float, float]) -> tuple[float, ...]:
    """A physical blur width expressed per axis in voxels (thick slices get little blur across z)."""
    return tuple(sigma_mm / s for s in spacing_zyx)
