"""Spatial augmentation on the device: rotation, crop and radial distortion as one sampling grid per sample."""
from isles_pipeline.augmentation.grid import (
                                              WarpParameters,
                                              apply_warp,
                                              forward_points,
                                              identity_parameters,
                                              sampling_grid,
)
from isles_pipeline.augmentation.spatial import SpatialAugmentation

__all__ = ["SpatialAugmentation", "WarpParameters", "apply_warp", "forward_points", "identity_parameters",
           "sampling_grid"]
