"""Reading a case's images with SimpleITK, with the checks that turn bad input into one clear line.

A case is usable only when every 3D map and the 4D series share the CT's voxel grid: the pipeline works
slice by slice, so a map on another grid would silently pair wrong voxels.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import SimpleITK as sitk

from isles_pipeline.errors import CaseError
from isles_pipeline.imageio.frame_timing import check_ctp_timing
from isles_pipeline.imageio.nifti_scan import count_non_finite

# NIfTI stores geometry as float32; differences below these are rounding, not another grid.
SPACING_RTOL = 1e-3
ORIGIN_ATOL_MM = 1e-2
DIRECTION_ATOL = 1e-3


@dataclass(frozen=True)
class Geometry:
    """A 3D voxel grid in SimpleITK's (x, y, z) order."""

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]  # 9 numbers, row-major

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        return (self.size[2], self.size[1], self.size[0])

    @property
    def voxel_volume_ml(self) -> float:
        return float(np.prod(self.spacing)) / 1000.0

    def to_json(self) -> dict:
        return {k: list(v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, d: dict) -> "Geometry":
        return cls(tuple(int(v) for v in d["size"]), tuple(float(v) for v in d["spacing"]),
                   tuple(float(v) for v in d["origin"]), tuple(float(v) for v in d["direction"]))

    @classmethod
    def of(cls, image) -> "Geometry":
        """The spatial grid of a 3D image, or of a 4D series (its first three axes); an ImageFileReader that
        has read the header works too."""
        dim = image.GetDimension()
        direction = np.asarray(image.GetDirection(), dtype=float).reshape(dim, dim)[:3, :3]
        return cls(tuple(int(v) for v in image.GetSize()[:3]), tuple(float(v) for v in image.GetSpacing()[:3]),
                   tuple(float(v) for v in image.GetOrigin()[:3]), tuple(float(v) for v in direction.ravel()))

    def apply_to(self, image: sitk.Image) -> sitk.Image:
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image


def geometry_mismatch(reference: Geometry, other: Geometry) -> Optional[str]:
    """None when both describe the same grid, else a short description of the first difference."""
    if tuple(reference.size) != tuple(other.size):
        return f"size {tuple(other.size)} vs {tuple(reference.size)}"
    if not np.allclose(other.spacing, reference.spacing, rtol=SPACING_RTOL, atol=0):
        return f"spacing {_fmt(other.spacing)} vs {_fmt(reference.spacing)}"
    if not np.allclose(other.origin, reference.origin, rtol=0, atol=ORIGIN_ATOL_MM):
        return f"origin {_fmt(other.origin)} vs {_fmt(reference.origin)}"
    if not np.allclose(other.direction, reference.direction, rtol=0, atol=DIRECTION_ATOL):
        return "direction differs"
    return None


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def _read(path: Path, case: str, what: str) -> sitk.Image:
    path = Path(path)
    if not path.is_file():
        raise CaseError(case, f"{what} missing ({path.parent.name}/{path.name})")
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[-1] if str(error).strip() else "unreadable"
        raise CaseError(case, f"{what} unreadable ({path.name}): {first_line}") from None


def check_finite(array: np.ndarray, case: str, what: str, path: Optional[Path] = None) -> None:
    """CaseError when a float image has NaN or Inf, in memory or in the file's bytes (ITK reads them as 0)."""
    if not np.issubdtype(array.dtype, np.floating):
        return
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if not bad and path is not None:
        bad = count_non_finite(path)
    if bad:
        where = f" ({Path(path).name})" if path is not None else ""
        raise CaseError(case, f"NaN or infinite values in {what}{where}: {bad} voxel(s)")


def read_3d(path: Path, case: str, what: str, reference: Optional[Geometry] = None) -> tuple[np.ndarray, Geometry]:
    """(array in z, y, x order, its grid). Raises CaseError when missing, not 3D, off the reference grid
    or not finite."""
    image = _read(path, case, what)
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise CaseError(case, f"{what} is not a 3D scalar image ({Path(path).name}: "
                              f"{image.GetDimension()}D, {image.GetNumberOfComponentsPerPixel()} components)")
    geometry = Geometry.of(image)
    if reference is not None:
        problem = geometry_mismatch(reference, geometry)
        if problem:
            raise CaseError(case, f"{what} does not match the CT grid: {problem}")
    array = sitk.GetArrayFromImage(image)
    check_finite(array, case, what, path)
    return array, geometry


@dataclass
class CTPSeries:
    """A 4D CTP series. `frames` is a (T, Z, Y, X) view into `image`'s buffer (keep `image` alive)."""

    image: sitk.Image
    frames: np.ndarray
    frame_interval_s: float
    warnings: list[str]


def _frame_interval(image_or_reader, path: Path, case: str, dataset_interval_s: Optional[float],
                    warnings: list[str]) -> float:
    """The frame interval from the header's 4th spacing, else from dataset.json; never assumed."""
    dimension = image_or_reader.GetDimension()
    header_dt = float(image_or_reader.GetSpacing()[3]) if dimension == 4 else float("nan")
    dataset_dt = float(dataset_interval_s) if dataset_interval_s is not None else float("nan")
    frames = int(image_or_reader.GetSize()[3]) if dimension == 4 else 1
    for interval in (header_dt, dataset_dt):
        if math.isfinite(interval) and interval > 0 and frames > 1:
            check_ctp_timing(interval, interval * (frames - 1), f"{case} ({path.name})")
    if math.isfinite(header_dt) and header_dt > 0:
        if math.isfinite(dataset_dt) and dataset_dt > 0 and not math.isclose(header_dt, dataset_dt, rel_tol=0.01):
            warnings.append(f"frame interval {header_dt:g} s in the header, {dataset_dt:g} s in dataset.json: "
                            "using the header")
        return header_dt
    if math.isfinite(dataset_dt) and dataset_dt > 0:
        return dataset_dt
    if dimension == 3:
        return 1.0  # a single frame has no timing to get wrong
    raise CaseError(case, f"4D CTP series ({path.name}) has no valid frame interval in its header or dataset.json")


def _check_ctp(image_or_reader, path: Path, case: str, reference: Geometry) -> None:
    """Scalar, 3D or 4D, on the CT's grid (an Image or a reader that has read the header)."""
    components = (image_or_reader.GetNumberOfComponentsPerPixel() if isinstance(image_or_reader, sitk.Image)
                  else image_or_reader.GetNumberOfComponents())
    if components != 1 or image_or_reader.GetDimension() not in (3, 4):
        raise CaseError(case, f"4D CTP series ({path.name}) is not a scalar 3D/4D image")
    problem = geometry_mismatch(reference, Geometry.of(image_or_reader))
    if problem:
        raise CaseError(case, f"4D CTP series does not match the CT grid: {problem}")


def _missing_ctp(path: Path, case: str) -> None:
    if not path.is_file():
        raise CaseError(case, f"no 4D CTP series ({path.parent.name}/{path.name} missing)")


def read_ctp_header(path: Path, case: str, reference: Geometry,
                    dataset_interval_s: Optional[float] = None) -> tuple[int, float, list[str]]:
    """(number of frames, frame interval in s, warnings) from the header alone, with read_ctp's checks."""
    path = Path(path)
    _missing_ctp(path, case)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise CaseError(case, f"4D CTP series unreadable ({path.name})") from None
    _check_ctp(reader, path, case, reference)
    warnings: list[str] = []
    dt = _frame_interval(reader, path, case, dataset_interval_s, warnings)
    frames = int(reader.GetSize()[3]) if reader.GetDimension() == 4 else 1
    return frames, dt, warnings


def read_ctp(path: Path, case: str, reference: Geometry, dataset_interval_s: Optional[float] = None) -> CTPSeries:
    """The 4D series on the CT's grid, with its frame interval from the header (4th spacing) or, where the
    header has none, from dataset.json; never assumed. A 3D file is taken as a single frame. Its bytes are not
    scanned for NaN (that would double the slowest read of a case), so NaNs stored in a 4D NIfTI reach us
    as 0 through ITK 5's reader."""
    path = Path(path)
    _missing_ctp(path, case)
    image = _read(path, case, "4D CTP series")
    _check_ctp(image, path, case, reference)
    warnings: list[str] = []
    dt = _frame_interval(image, path, case, dataset_interval_s, warnings)
    frames = sitk.GetArrayViewFromImage(image)
    if frames.ndim == 3:
        frames = frames[None]
        warnings.append("the CTP series is 3D: taken as a single frame")
    return CTPSeries(image=image, frames=frames, frame_interval_s=dt, warnings=warnings)
