"""On-disk layout of preprocessed cases, written atomically and read back memory-mapped.

In `<preprocessed dataset>/<data_identifier>/` (data_identifier from the plans, e.g. ISLESPlans_2d):
    <case>.npy         float16 (Z, C, H, W)  input channels, order in the plans' input_channels
    <case>_seg.npy     uint8   (Z, H, W)     label {0, 1}             (cases with a label)
    <case>_weight.npy  float16 (Z, H, W)     SDF weight map W          (cases with a label)
    <case>_dwi.npy     float16 (Z, H, W)     normalised DWI target     (cases with a DWI)
    <case>.json        properties (original grid, timing, lesion slices, preprocessing_hash)
Plain .npy so `np.load(mmap_mode="r")` gives slices without reading the case. The properties file is
written last: its presence with the current preprocessing_hash means the case is complete.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from isles_pipeline.files import FileFormatError, atomic_path, atomic_write_json, read_json

ARRAY_SUFFIXES = {"data": ".npy", "seg": "_seg.npy", "weight": "_weight.npy", "dwi": "_dwi.npy"}


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            np.save(handle, np.ascontiguousarray(array), allow_pickle=False)


def case_paths(folder: Path, case: str) -> dict[str, Path]:
    paths = {key: Path(folder) / f"{case}{suffix}" for key, suffix in ARRAY_SUFFIXES.items()}
    paths["properties"] = Path(folder) / f"{case}.json"
    return paths


def write_preprocessed_case(folder: Path, case: str, result) -> None:
    """Store a PreprocessedCase; optional arrays it lacks are removed so none is left from an older run."""
    paths = case_paths(folder, case)
    Path(folder).mkdir(parents=True, exist_ok=True)
    paths["properties"].unlink(missing_ok=True)  # the case counts as incomplete until the end
    for key in ARRAY_SUFFIXES:
        array = getattr(result, key)
        if array is None:
            paths[key].unlink(missing_ok=True)
        else:
            _save_npy(paths[key], array)
    atomic_write_json(paths["properties"], result.properties)


def load_preprocessed_case(folder: Path, case: str, mmap: bool = True) -> dict[str, Any]:
    """{"data", "seg", "weight", "dwi", "properties"}; arrays memory-mapped read-only unless mmap=False,
    None where the case has none."""
    paths = case_paths(folder, case)
    out: dict[str, Any] = {"properties": read_json(paths["properties"])}
    for key in ARRAY_SUFFIXES:
        out[key] = np.load(paths[key], mmap_mode="r" if mmap else None) if paths[key].is_file() else None
    return out


def is_case_done(folder: Path, case: str, preprocessing_hash: str) -> bool:
    """True when the case was completely written by preprocessing with this hash."""
    paths = case_paths(folder, case)
    if not paths["properties"].is_file() or not paths["data"].is_file():
        return False
    try:
        properties = read_json(paths["properties"])
    except FileFormatError:
        return False
    return properties.get("preprocessing_hash") == preprocessing_hash


def preprocessed_case_names(folder: Path) -> list[str]:
    """Cases with a properties file in a data folder."""
    return sorted(p.stem for p in Path(folder).glob("*.json") if not p.name.startswith("."))
