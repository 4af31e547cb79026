"""What the scanner adds to the physics: noise, head motion, beam hardening, and the frame timing.

- Noise: Gaussian, correlated in-plane like a reconstruction kernel, its level set by the tube current and
  slice thickness (`centres.frame_noise_hu`).
- Head motion: some patients move during a few consecutive frames (in-plane shifts of 1 to 4 mm; a motion
  between slabs along z is not modelled).
- Beam hardening: brain near the inner table reads a few HU high (cupping; Barrett & Keat, RadioGraphics
  2004), more where the skull is thick.
- Timing: ISLES 2018 4D files have pixdim[4] = 1 s; a non-uniform protocol's frames are resampled to 1 s by
  linear interpolation before writing (the true times stay in the truth).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from isles_pipeline.phantom.fields import white_noise

NOISE_CORRELATION_PX = 0.8
BEAM_HARDENING_HU = 5.0
BEAM_HARDENING_MM = 4.0


@dataclass(frozen=True)
class Motion:
    """A motion episode: frames [first, first + length) displaced by (dy, dx) mm."""

    first: int
    length: int
    shift_mm: tuple[float, float]

    @staticmethod
    def draw(rng: np.random.Generator, num_frames: int) -> "Motion | None":
        if rng.random() >= 0.25:
            return None
        length = int(rng.integers(1, 6))
        magnitude = float(rng.uniform(1.0, 4.0))
        angle = float(rng.uniform(0, 2 * np.pi))
        return Motion(int(rng.integers(3, max(4, num_frames - length))), length,
                      (magnitude * np.sin(angle), magnitude * np.cos(angle)))


def correlated_noise(rng, shape) -> np.ndarray:
    """Unit-variance noise correlated in-plane like a CT reconstruction kernel (Gaussian, 0.8 px).

    The variance lost by the blur is restored with the kernel's exact norm, not the sample's std, so every
    slice of a case has the same noise level.
    """
    sigma = (0,) * (len(shape) - 2) + (NOISE_CORRELATION_PX, NOISE_CORRELATION_PX)
    impulse = np.zeros((33, 33))
    impulse[16, 16] = 1
    norm = float(np.sqrt((ndimage.gaussian_filter(impulse, NOISE_CORRELATION_PX, truncate=2.5) ** 2).sum()))
    white = white_noise(rng, shape)
    noise = ndimage.gaussian_filter(white, sigma, truncate=2.5, output=white)
    noise /= norm
    return noise


def beam_hardening(skull_distance_mm: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """HU added to the brain near the skull (the same in every frame)."""
    return np.where(inside, BEAM_HARDENING_HU * np.exp(-skull_distance_mm / BEAM_HARDENING_MM), 0).astype(np.float32)


def move(frames: np.ndarray, motion: Motion | None, pixel_mm: float, fill: float) -> None:
    """Displace the frames of the motion episode in place; frames is (T, Y, X) of one slice."""
    if motion is None:
        return
    shift = (motion.shift_mm[0] / pixel_mm, motion.shift_mm[1] / pixel_mm)
    for t in range(motion.first, min(motion.first + motion.length, len(frames))):
        frames[t] = ndimage.shift(frames[t], shift, order=1, mode="constant", cval=fill)


def resample_to_seconds(series: np.ndarray, times_s: np.ndarray) -> np.ndarray:
    """Frames at 0, 1, 2 ... s (up to the last acquisition time) by linear interpolation in time."""
    grid = np.arange(0.0, float(times_s[-1]) + 1e-6, 1.0)
    if len(grid) == len(times_s) and np.allclose(grid, times_s):
        return series
    upper = np.clip(np.searchsorted(times_s, grid, side="right"), 1, len(times_s) - 1)
    lower = upper - 1
    weight = ((grid - times_s[lower]) / (times_s[upper] - times_s[lower])).astype(np.float32)
    out = np.empty((len(grid),) + series.shape[1:], np.float32)
    for i, (lo, hi, w) in enumerate(zip(lower, upper, weight)):
        np.multiply(series[lo], 1 - w, out=out[i])
        out[i] += w * series[hi]
    return np.round(out, out=out)
