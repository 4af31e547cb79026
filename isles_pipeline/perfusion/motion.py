"""Rigid in-plane motion correction of CTP frames, before anything else reads the series.

Each frame is registered to the first (pre-contrast) frame by ONE rigid 2D transform (rotation about the head's
centre plus translation), shared by all slices of that frame, then resampled onto the reference grid. Why
in-plane and shared: a CTP slab is 2 to 22 thick slices, far too few to recover out-of-plane motion, while a
patient's nod or turn moves every slice of a frame together. Why on bone: the skull is rigid, the strongest
edge in the image and does not enhance, whereas the bolus changes vessels and tissue by up to hundreds of HU
between frames; the registration therefore sees only voxels above `BONE_FLOOR_HU` (arterial peaks in CTP
stay below it), averaged over the slices. SimpleITK's registration framework does the optimisation (mean
squares, regular-step gradient descent, three resolution levels).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

BONE_FLOOR_HU = 600.0  # above arterial peaks (a few hundred HU), below cortical bone (> 1000 HU)
BONE_CEILING_HU = 1600.0


@dataclass(frozen=True)
class FrameMotion:
    """Per frame (T,): rotation in degrees and translation (x, y) in mm that map the reference onto the frame."""

    angle_deg: np.ndarray
    shift_mm: np.ndarray  # (T, 2): x, y

    @property
    def largest_displacement_mm(self) -> float:
        return float(np.abs(self.shift_mm).max()) if self.shift_mm.size else 0.0


def _bone_image(frame_zyx: np.ndarray, pixel_mm: tuple[float, float]) -> sitk.Image:
    bone = np.clip(np.asarray(frame_zyx, np.float32), BONE_FLOOR_HU, BONE_CEILING_HU) - BONE_FLOOR_HU
    image = sitk.GetImageFromArray(bone.mean(axis=0))
    image.SetSpacing((float(pixel_mm[1]), float(pixel_mm[0])))  # (x, y)
    return image


def _register(fixed: sitk.Image, moving: sitk.Image) -> sitk.Euler2DTransform:
    """The rigid transform mapping `fixed` onto `moving`; the identity when the optimiser's answer fits worse
    than no motion at all (a diverged run on a noisy frame must not move a still frame)."""
    identity = sitk.Euler2DTransform(sitk.CenteredTransformInitializer(
        fixed, moving, sitk.Euler2DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY))
    transform = sitk.Euler2DTransform(identity)
    method = _registration()
    method.SetInitialTransform(transform, inPlace=True)
    method.Execute(fixed, moving)
    found, still = _mean_squares(fixed, moving, transform), _mean_squares(fixed, moving, identity)
    return transform if found < still else identity


def _registration() -> sitk.ImageRegistrationMethod:
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMeanSquares()
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-3, numberOfIterations=200,
                                                    relaxationFactor=0.5)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([4, 2, 1])
    method.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
    return method


def _mean_squares(fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform) -> float:
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMeanSquares()
    method.SetInterpolator(sitk.sitkLinear)
    method.SetInitialTransform(transform)
    return float(method.MetricEvaluate(fixed, moving))


def estimate_motion(series_tzyx: np.ndarray, spacing_zyx) -> tuple[FrameMotion, list[sitk.Euler2DTransform]]:
    """Each frame's rigid transform against frame 0 (identity for frame 0)."""
    pixel_mm = (float(spacing_zyx[1]), float(spacing_zyx[2]))
    fixed = _bone_image(series_tzyx[0], pixel_mm)
    transforms = [sitk.Euler2DTransform()]
    transforms[0].SetCenter(fixed.TransformContinuousIndexToPhysicalPoint(
        [(n - 1) / 2.0 for n in fixed.GetSize()]))
    for t in range(1, series_tzyx.shape[0]):
        transforms.append(_register(fixed, _bone_image(series_tzyx[t], pixel_mm)))
    angles = np.degrees([tr.GetAngle() for tr in transforms])
    shifts = np.array([tr.GetTranslation() for tr in transforms], dtype=float)
    return FrameMotion(np.asarray(angles, float), shifts), transforms


def apply_motion(series_tzyx: np.ndarray, transforms: list[sitk.Euler2DTransform], spacing_zyx,
                 fill_hu: float | None = None) -> np.ndarray:
    """Every slice of frame t resampled through its transform onto the reference grid (linear interpolation;
    voxels moved in from outside the field of view get `fill_hu`, by default the series' minimum: air)."""
    fill = float(np.min(series_tzyx)) if fill_hu is None else float(fill_hu)
    corrected = np.empty(series_tzyx.shape, np.float32)
    spacing_xy = (float(spacing_zyx[2]), float(spacing_zyx[1]))
    for t, transform in enumerate(transforms):
        if t == 0 or (abs(transform.GetAngle()) < 1e-6 and np.allclose(transform.GetTranslation(), 0, atol=1e-4)):
            corrected[t] = series_tzyx[t]
            continue
        for z in range(series_tzyx.shape[1]):
            moving = sitk.GetImageFromArray(np.asarray(series_tzyx[t, z], np.float32))
            moving.SetSpacing(spacing_xy)
            corrected[t, z] = sitk.GetArrayFromImage(sitk.Resample(moving, moving, transform, sitk.sitkLinear, fill))
    return corrected


def correct_motion(series_tzyx: np.ndarray, spacing_zyx) -> tuple[np.ndarray, FrameMotion]:
    """The series with every frame brought back onto frame 0, and the motion that was removed."""
    motion, transforms = estimate_motion(series_tzyx, spacing_zyx)
    return apply_motion(series_tzyx, transforms, spacing_zyx), motion
