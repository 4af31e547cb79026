"""The training augmentation of the seed (paper 2.4) with the plans' parameters: random rotation, random crop
(resized back) and radial distortion, each with its probability, composed into one grid per sample and
applied by one batched grid_sample to the inputs, DWI and W (bilinear) and one to the label (nearest).

Parameters are drawn on the CPU from a `torch.Generator` the caller owns, so a run is repeatable and its
state can be checkpointed; the warp itself runs on whatever device the batch is on (the same code on CPU).
"""
from __future__ import annotations

import math
from typing import Mapping, Optional

import torch

from isles_pipeline.augmentation.grid import WarpParameters, apply_warp, sampling_grid

PLANS_KEYS = ("rotation_degrees", "p_rotation", "crop_scale", "p_crop", "radial_distortion",
              "p_radial_distortion", "p_mirror")


class SpatialAugmentation:
    """`augment(images, labels, generator)`; constructed from plans["configurations"]["2d"]["augmentation"]."""

    def __init__(self, rotation_degrees: float, p_rotation: float, crop_scale, p_crop: float,
                 radial_distortion: float, p_radial_distortion: float, p_mirror: float = 0.0) -> None:
        self.rotation = math.radians(float(rotation_degrees))
        self.p_rotation = float(p_rotation)
        self.crop_scale = (float(crop_scale[0]), float(crop_scale[1]))
        if not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {crop_scale}")
        self.p_crop = float(p_crop)
        self.radial = float(radial_distortion)
        self.p_radial = float(p_radial_distortion)
        self.p_mirror = float(p_mirror)

    @classmethod
    def from_plans(cls, augmentation: Mapping) -> "SpatialAugmentation":
        return cls(**{key: augmentation[key] for key in PLANS_KEYS})

    def sample(self, n: int, height: int, width: int, generator: torch.Generator) -> WarpParameters:
        """Draw (CPU) parameters for n samples: every random number is drawn whether or not its transform is
        applied, so the stream of numbers does not depend on the outcomes."""
        u = torch.rand(n, 9, generator=generator, dtype=torch.float64)
        on = lambda column, p: u[:, column] < p  # noqa: E731
        theta = torch.where(on(0, self.p_rotation), (2 * u[:, 1] - 1) * self.rotation, torch.zeros(n, dtype=u.dtype))
        low, high = self.crop_scale
        scale = torch.where(on(2, self.p_crop), low + (high - low) * u[:, 3], torch.ones(n, dtype=u.dtype))
        extent = torch.tensor([width, height], dtype=u.dtype) / min(height, width)
        centre = (2 * u[:, 4:6] - 1) * (1 - scale)[:, None] * extent
        k = torch.where(on(6, self.p_radial), (2 * u[:, 7] - 1) * self.radial, torch.zeros(n, dtype=u.dtype))
        mirror = torch.where(on(8, self.p_mirror), -torch.ones(n, dtype=u.dtype), torch.ones(n, dtype=u.dtype))
        return WarpParameters(theta.float(), scale.float(), centre.float(), k.float(), mirror.float())

    def augment(self, images: torch.Tensor, labels: Optional[torch.Tensor], generator: torch.Generator,
                params: Optional[WarpParameters] = None) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """images (N, C, H, W) float (inputs, DWI and W stacked as channels), labels (N, 1, H, W)."""
        n, _, height, width = images.shape
        params = params if params is not None else self.sample(n, height, width, generator)
        keep = params.is_identity()
        if bool(keep.all()):
            return images, labels
        grid = sampling_grid(params.to(images.device), height, width, images.device)
        return apply_warp(grid, images, labels, keep)
