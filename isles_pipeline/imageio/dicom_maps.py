"""Perfusion maps as DICOM Parametric Map objects (highdicom) referencing the source CTP series, for PACS.

A parametric map stores float values with their unit (UCUM) and its own plane positions, so each map is written
on the exact grid the importer read (`dicom_ctp`): after a gantry tilt that grid is the orthogonal one, and the
stated positions keep it right. One file per map; the values are the engine's, unscaled.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import highdicom as hd
import numpy as np
from pydicom.sr.coding import Code

from isles_pipeline.files import atomic_path
from isles_pipeline.imageio.dicom_geometry import Grid
from isles_pipeline.imageio.dicom_seg import source_header

UNITS = {  # map -> (UCUM code, meaning)
    "cbf": Code("mL/(100.g)/min", "UCUM", "milliliter per 100 gram per minute"),
    "cbv": Code("mL/(100.g)", "UCUM", "milliliter per 100 gram"),
    "mtt": Code("s", "UCUM", "second"),
    "tmax": Code("s", "UCUM", "second"),
    "ttp": Code("s", "UCUM", "second"),
}


def write_map_dicom(values: np.ndarray, name: str, source_files: Sequence[Path], grid: Grid, path: Path,
                    series_number: int = 9902) -> Path:
    """Write one (Z, Y, X) map (`name` in UNITS) on `grid` as a Parametric Map referencing `source_files`."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    sources = [source_header(p) for p in dict.fromkeys(Path(p) for p in source_files)]
    axes = np.array(grid.direction).reshape(3, 3)
    positions = [hd.PlanePositionSequence(hd.CoordinateSystemNames.PATIENT, grid.index_to_world((0, 0, z)))
                 for z in range(values.shape[0])]
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    mapping = hd.pm.RealWorldValueMapping(lut_label=name.upper(), lut_explanation=f"{name.upper()} (isles_pipeline)",
                                          unit=UNITS[name], value_range=(low, high), slope=1.0, intercept=0.0)
    parametric = hd.pm.ParametricMap(
        source_images=sources, pixel_array=values, series_instance_uid=hd.UID(), series_number=series_number,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="isles_pipeline",
        manufacturer_model_name="isles_pipeline", software_versions="isles_pipeline", device_serial_number="none",
        contains_recognizable_visual_features=False, real_world_value_mappings=[mapping],
        voi_lut_transformations=[hd.VOILUTTransformation(window_center=(low + high) / 2,
                                                         window_width=max(high - low, 1e-3))],
        pixel_measures=hd.PixelMeasuresSequence(pixel_spacing=(grid.spacing[1], grid.spacing[0]),
                                                slice_thickness=grid.spacing[2]),
        plane_orientation=hd.PlaneOrientationSequence(hd.CoordinateSystemNames.PATIENT,
                                                      list(axes[:, 0]) + list(axes[:, 1])),
        plane_positions=positions, content_label=name.upper(), series_description=f"{name.upper()} map")
    path = Path(path)
    with atomic_path(path) as temporary:
        parametric.save_as(temporary)
    return path


def write_maps_dicom(maps: dict, source_files: Sequence[Path], grid: Grid, folder: Path) -> list[Path]:
    """Every map of `maps` ({name: (Z, Y, X)}) as `<folder>/<name>.dcm`, one series number each."""
    return [write_map_dicom(values, name, source_files, grid, Path(folder) / f"{name}.dcm", 9902 + number)
            for number, (name, values) in enumerate(sorted(maps.items())) if name in UNITS]
