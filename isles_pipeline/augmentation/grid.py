"""One sampling grid per sample for rotation + crop + radial distortion (+ optional mirror), and its batched
application with `grid_sample`.

Coordinates: pixel units from the slice centre, (x, y); radial distances are measured in units of half the
slice's smaller side (r = 1 at the half width, the planner's convention). A point of the input slice at p
moves to the output slice at

    p1 = (p - t) / s          crop: a window of relative side s centred at t, resized back to the slice
    p2 = R(theta) M p1        mirror M (x -> -x or identity), then rotation by theta (counter-clockwise
                              in (x, y) = (column, row) coordinates)
    out = p2 (1 + k |p2|^2)   radial distortion: k > 0 pincushion, k < 0 barrel

`grid_sample` needs the opposite direction (where in the input each output pixel comes from), so the grid
inverts these steps; the radial step is inverted with a few Newton iterations (the map is monotone for
3 |k| r^2 < 1, which holds for the planned |k| <= 0.15 at every pixel of the slice; with barrel distortion
the output's corners have no source and get the border padding).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

NEWTON_STEPS = 6


@dataclass
class WarpParameters:
    """Per-sample warp parameters, each a (N,) tensor (centre as (N, 2) in half-side units)."""

    theta: torch.Tensor  # rotation, radians
    scale: torch.Tensor  # crop side relative to the slice, in (0, 1]
    centre: torch.Tensor  # crop centre in half-side units (x, y)
    k: torch.Tensor  # radial distortion coefficient
    mirror: torch.Tensor  # 1.0 or -1.0 (x axis)

    def to(self, device) -> "WarpParameters":
        return WarpParameters(*(getattr(self, f).to(device) for f in ("theta", "scale", "centre", "k", "mirror")))

    def is_identity(self) -> torch.Tensor:
        """(N,) bool: samples that are not warped at all."""
        return ((self.theta == 0) & (self.scale == 1) & (self.centre == 0).all(dim=1) & (self.k == 0)
                & (self.mirror == 1))


def identity_parameters(n: int) -> WarpParameters:
    return WarpParameters(torch.zeros(n), torch.ones(n), torch.zeros(n, 2), torch.zeros(n), torch.ones(n))


def _half_side(height: int, width: int) -> float:
    return min(height, width) / 2.0


def forward_points(params: WarpParameters, points: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Where input points (N, P, 2) in pixel (x, y) coordinates (0 at the first pixel's centre) land in the
    output slice: the forward map of the module doc. For tests and for moving landmarks."""
    half = _half_side(height, width)
    centre_px = torch.tensor([(width - 1) / 2.0, (height - 1) / 2.0], dtype=points.dtype, device=points.device)
    p = (points - centre_px) / half
    p = (p - params.centre[:, None, :]) / params.scale[:, None, None]
    p = p * torch.stack([params.mirror, torch.ones_like(params.mirror)], dim=1)[:, None, :]
    cos, sin = torch.cos(params.theta)[:, None], torch.sin(params.theta)[:, None]
    p = torch.stack([cos * p[..., 0] - sin * p[..., 1], sin * p[..., 0] + cos * p[..., 1]], dim=-1)
    p = p * (1 + params.k[:, None, None] * (p**2).sum(-1, keepdim=True))
    return p * half + centre_px


def sampling_grid(params: WarpParameters, height: int, width: int, device=None) -> torch.Tensor:
    """(N, H, W, 2) grid for grid_sample(align_corners=False): for each output pixel, its source location."""
    device = device or params.theta.device
    n = params.theta.shape[0]
    half = _half_side(height, width)
    ys = (torch.arange(height, device=device, dtype=torch.float32) - (height - 1) / 2.0) / half
    xs = (torch.arange(width, device=device, dtype=torch.float32) - (width - 1) / 2.0) / half
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    out = torch.stack([gx, gy], dim=-1).expand(n, height, width, 2)
    # invert the radial step: find q with q (1 + k |q|^2) = out (q parallel to out, so solve for the radius)
    # (barrel, k < 0: r (1 + k r^2) peaks at r* = 1 / sqrt(3 |k|); output radii beyond that peak have no
    # source, i.e. lie outside the distorted slice, and are sent far outside to get the padding)
    k = params.k.to(device).float()[:, None, None]
    r_star = torch.where(k < 0, 1.0 / torch.sqrt(3 * k.abs().clamp_min(1e-12)), torch.full_like(k, math.inf))
    rho = out.norm(dim=-1)
    r = torch.minimum(rho, r_star)
    for _ in range(NEWTON_STEPS):
        r = torch.minimum(r - (r * (1 + k * r * r) - rho) / (1 + 3 * k * r * r).clamp_min(1e-6), r_star)
    outside = rho > r_star * (1 + k * r_star * r_star) * (1 - 1e-6)
    r = torch.where(outside, torch.full_like(r, 1e3), r)
    ratio = torch.where(rho > 0, r / rho.clamp_min(1e-12), torch.ones_like(rho))
    q = out * ratio[..., None]
    # inverse rotation, then mirror
    theta = params.theta.to(device).float()[:, None, None]
    cos, sin = torch.cos(theta), torch.sin(theta)
    qx = (cos * q[..., 0] + sin * q[..., 1]) * params.mirror.to(device).float()[:, None, None]
    qy = -sin * q[..., 0] + cos * q[..., 1]
    # inverse crop
    scale = params.scale.to(device).float()[:, None, None]
    centre = params.centre.to(device).float()
    px = qx * scale + centre[:, 0, None, None]
    py = qy * scale + centre[:, 1, None, None]
    # half-side units -> grid_sample's normalised units (-1 .. 1 across the pixel edges)
    return torch.stack([px * half / (width / 2.0), py * half / (height / 2.0)], dim=-1)


def apply_warp(grid: torch.Tensor, images: torch.Tensor, labels: torch.Tensor | None = None,
               keep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Warp float `images` (N, C, H, W) bilinearly and `labels` (N, L, H, W) with nearest neighbour, with one
    grid per sample. Samples where `keep` (N,) is True are returned untouched (an exact identity). Border
    padding, so W never becomes 0 and the maps keep their background value."""
    warped = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    warped_labels = None
    if labels is not None:
        warped_labels = F.grid_sample(labels.float(), grid, mode="nearest", padding_mode="border",
                                      align_corners=False)
    if keep is not None and bool(keep.any()):
        keep = keep.to(images.device)[:, None, None, None]
        warped = torch.where(keep, images.float(), warped)
        if labels is not None:
            warped_labels = torch.where(keep, labels.float(), warped_labels)
    return warped.to(images.dtype), (warped_labels.to(labels.dtype) if labels is not None else None)
