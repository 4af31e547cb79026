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

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

ARRAY_SUFFIXES = {"data": ".npy", "seg": "_seg.npy", "weight": "_weight.npy", "dwi": "_dwi.npy"}


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write JSON to a temporary name in the same folder, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def write_json_if_changed(path: Path, obj: Any) -> bool:
    """Write only when the content differs (keeps mtimes of unchanged files); True if written."""
    path = Path(path)
    if path.is_file():
        try:
            with open(path) as f:
                if json.load(f) == json.loads(json.dumps(obj)):
                    return False
        except json.JSONDecodeError:
            pass
    atomic_write_json(path, obj)
    return True


def load_json(path: Path) -> Any:
    with open(path) as f:
        return json.load(f)


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    path = Path(path)
    tmp = _temporary(path)
    with open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)
    os.replace(tmp, path)


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
            atomic_save_npy(paths[key], array)
    atomic_write_json(paths["properties"], result.properties)


def load_preprocessed_case(folder: Path, case: str, mmap: bool = True) -> dict[str, Any]:
    """{"data", "seg", "weight", "dwi", "properties"}; arrays memory-mapped read-only unless mmap=False,
    None where the case has none."""
    paths = case_paths(folder, case)
    out: dict[str, Any] = {"properties": load_json(paths["properties"])}
    for key in ARRAY_SUFFIXES:
        out[key] = np.load(paths[key], mmap_mode="r" if mmap else None) if paths[key].is_file() else None
    return out


def is_case_done(folder: Path, case: str, preprocessing_hash: str) -> bool:
    """True when the case was completely written by preprocessing with this hash."""
    paths = case_paths(folder, case)
    if not paths["properties"].is_file() or not paths["data"].is_file():
        return False
    try:
        properties = load_json(paths["properties"])
    except (json.JSONDecodeError, OSError):
        return False
    return properties.get("preprocessing_hash") == preprocessing_hash


def preprocessed_case_names(folder: Path) -> list[str]:
    """Cases with a properties file in a data folder."""
    return sorted(p.stem for p in Path(folder).glob("*.json") if not p.name.startswith("."))
