"""In-plane resampling to the planned slice size, and back to a case's own grid.

The seed works on 256 x 256 slices whatever the pixel spacing (0.8 to 1 mm in ISLES 2018), so cases are
resampled by size, not by spacing: the field of view is kept (pixel edges aligned, skimage's convention) and
the pixel spacing changes. Slices are never resampled across z. `resampled_geometry` gives the grid of the
resampled case; `restore_original_geometry` and `to_original_image` undo it for a prediction (and a crop
to the CTP coverage, see coverage.py).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import SimpleITK as sitk
from skimage.transform import resize

from isles_pipeline.imageio.case_images import Geometry
from isles_pipeline.preprocessing.coverage import pad_to_original


def resample_in_plane(array: np.ndarray, shape_yx: Sequence[int], order: int = 1) -> np.ndarray:
    """float32 copy of `array` (..., Y, X) resized to (..., *shape_yx); Gaussian anti-aliasing when shrinking."""
    shape_yx = tuple(int(s) for s in shape_yx)
    if tuple(array.shape[-2:]) == shape_yx:
        return np.asarray(array, dtype=np.float32)
    shrinking = any(new < old for new, old in zip(shape_yx, array.shape[-2:]))
    return resize(np.asarray(array, dtype=np.float32), array.shape[:-2] + shape_yx, order=order, mode="edge",
                  anti_aliasing=shrinking and order > 0, preserve_range=True).astype(np.float32)


def resample_label(label: np.ndarray, shape_yx: Sequence[int]) -> np.ndarray:
    """uint8 {0, 1} label resized by linear interpolation of the mask and a 0.5 threshold (smoother borders
    than nearest neighbour; no anti-aliasing, which would erase lesions of a few pixels)."""
    if tuple(label.shape[-2:]) == tuple(shape_yx):
        return (np.asarray(label) > 0).astype(np.uint8)
    resized = resize((np.asarray(label) > 0).astype(np.float32), label.shape[:-2] + tuple(shape_yx), order=1,
                     mode="edge", anti_aliasing=False, preserve_range=True)
    return (resized >= 0.5).astype(np.uint8)


def resampled_geometry(geometry: Geometry, shape_yx: Sequence[int]) -> Geometry:
    """The grid of `geometry` resized in-plane to shape_yx with the field of view (pixel edges) kept."""
    new_x, new_y = int(shape_yx[1]), int(shape_yx[0])
    old = np.asarray(geometry.spacing, dtype=float)
    new = old.copy()
    new[0] *= geometry.size[0] / new_x
    new[1] *= geometry.size[1] / new_y
    direction = np.asarray(geometry.direction, dtype=float).reshape(3, 3)
    origin = np.asarray(geometry.origin, dtype=float) + direction @ ((new - old) / 2.0)
    return Geometry((new_x, new_y, geometry.size[2]), tuple(new.tolist()), tuple(origin.tolist()),
                    geometry.direction)


def restore_original_geometry(array: np.ndarray, properties: dict, order: int = 1) -> np.ndarray:
    """A preprocessed-grid array (..., Z, y, x), e.g. a probability map, on the case's original (Z, Y, X) grid.
    Use order=1 on probabilities and threshold afterwards; order=0 copies labels without interpolation."""
    shape = tuple(Geometry.from_json(properties["original_geometry"]).shape_zyx)
    array = np.asarray(array)
    if tuple(array.shape[-2:]) != shape[1:]:
        if order == 0:
            array = resize(array, array.shape[:-2] + shape[1:], order=0, mode="edge", anti_aliasing=False,
                           preserve_range=True).astype(array.dtype)
        else:
            array = resample_in_plane(array, shape[1:], order=order)
    if "crop_z" in properties:  # slices outside the CTP coverage were not preprocessed: background there
        array = pad_to_original(array, properties["crop_z"], shape[0])
    return array


def to_original_image(array: np.ndarray, properties: dict) -> sitk.Image:
    """A (Z, Y, X) array already on the original grid as a SimpleITK image with the case's spacing, origin
    and direction (ready to write next to the input)."""
    geometry = Geometry.from_json(properties["original_geometry"])
    if tuple(array.shape) != geometry.shape_zyx:
        raise ValueError(f"array shape {tuple(array.shape)} is not the original grid {geometry.shape_zyx}; "
                         "use restore_original_geometry first")
    return geometry.apply_to(sitk.GetImageFromArray(array))
