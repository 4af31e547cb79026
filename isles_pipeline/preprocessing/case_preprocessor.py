"""One case from raw files to the arrays the trainer and the predictor read: the same function for both, so
training and inference see identical inputs.

Output, on the planned in-plane grid (Z slices kept):
- data (Z, C, H, W) float16, channels in configuration["input_channels"] order: the temporally preprocessed
  frames, then the maps (PWImax_o, PWImax_p, CBF, CBV, MTT, Tmax[, CT]), each normalised as planned;
- seg (Z, H, W) uint8 and weight (Z, H, W) float16 (the SDF map), where a label exists;
- dwi (Z, H, W) float16, where a DWI exists;
- properties: what maps a prediction back (original grid) and what the trainer samples by (lesion slices).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from isles_pipeline.errors import CaseError
from isles_pipeline.imageio.case_images import read_3d, read_ctp
from isles_pipeline.perfusion.bolus_timing import TemporalParameters
from isles_pipeline.preprocessing.coverage import coverage_of, crop_geometry
from isles_pipeline.preprocessing.head_mask import head_mask
from isles_pipeline.preprocessing.normalization import normalize
from isles_pipeline.preprocessing.resampling import resample_in_plane, resample_label, resampled_geometry
from isles_pipeline.preprocessing.temporal import preprocess_series
from isles_pipeline.preprocessing.weight_map import sdf_weight_map
from isles_pipeline.raw_format import COMPUTED_CHANNELS, RAW_CHANNELS, RawCase

# Bump when the code changes what it writes, so stored cases are redone.
PREPROCESSING_VERSION = 1
# The configuration keys this module reads; a change to any of them makes stored cases stale.
PREPROCESSING_KEYS = ("in_plane_size", "frame_channels", "map_channels", "normalization", "dwi_normalization",
                      "temporal", "head_mask", "weight_map")
# Read only where a planner writes them (absent keys leave the hash of existing plans unchanged).
OPTIONAL_PREPROCESSING_KEYS = ("ctp_coverage_crop",)


@dataclass
class PreprocessedCase:
    data: np.ndarray
    seg: Optional[np.ndarray]
    weight: Optional[np.ndarray]
    dwi: Optional[np.ndarray]
    properties: dict


def preprocessing_hash(configuration: dict) -> str:
    """Identifies the preprocessing a configuration asks for (PREPROCESSING_KEYS and the code version)."""
    relevant = {key: configuration.get(key) for key in PREPROCESSING_KEYS}
    relevant.update({key: configuration[key] for key in OPTIONAL_PREPROCESSING_KEYS if key in configuration})
    text = json.dumps([PREPROCESSING_VERSION, relevant], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_label(label: np.ndarray, case: str) -> np.ndarray:
    values = np.unique(label)
    if not set(values.tolist()) <= {0, 1}:
        raise CaseError(case, f"label values {values.tolist()[:6]} are not in {{0, 1}}")
    return label.astype(np.uint8)


def read_case_inputs(images: Mapping[str, Path], label: Optional[Path], dwi: Optional[Path], case: str,
                     map_names: Sequence[str] = RAW_CHANNELS[1:]):
    """The CT and the 3D maps `map_names` (by channel name: the vendor's CBF ... Tmax and/or the computed
    CBF_computed ...), the CT grid, the label and the DWI, all checked against the CT grid."""
    missing = [name for name in ("CT", *map_names) if name not in images]
    if missing:
        hint = (" (the plans use computed maps: convert the dataset with --compute_maps)"
                if set(missing) & set(COMPUTED_CHANNELS) else "")
        raise CaseError(case, f"no file given for channel(s) {missing}{hint}")
    ct, geometry = read_3d(images["CT"], case, "CT")
    maps = {"CT": ct}
    for name in map_names:
        maps[name] = read_3d(images[name], case, name, geometry)[0]
    seg = _check_label(read_3d(label, case, "label", geometry)[0], case) if label is not None else None
    dwi_array = read_3d(dwi, case, "DWI", geometry)[0] if dwi is not None else None
    return maps, geometry, seg, dwi_array


def planned_map_files(configuration: dict) -> list[str]:
    """The 3D map files (besides CT, always read for the head mask) the plans' map channels come from."""
    return [name for name in configuration["map_channels"] if name in RAW_CHANNELS[1:] + COMPUTED_CHANNELS]


def _stack_channels(sources: dict, configuration: dict, mask: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(Z, C, H, W) float16 of the planned channels, each normalised then resampled to the planned size."""
    channels = list(configuration["frame_channels"]) + list(configuration["map_channels"])
    size = tuple(int(s) for s in configuration["in_plane_size"])
    data = np.empty((mask.shape[0], len(channels)) + size, dtype=np.float16)
    for c, name in enumerate(channels):
        if name not in sources:
            raise ValueError(f"the plans ask for channel {name!r}, which preprocessing does not make")
        data[:, c] = resample_in_plane(normalize(sources[name], configuration["normalization"][name], mask), size)
    return data, channels


def preprocess_case(images: Mapping[str, Path], ctp: Path, configuration: dict, label: Optional[Path] = None,
                    dwi: Optional[Path] = None, case: str = "case",
                    case_info: Optional[dict] = None) -> PreprocessedCase:
    """Preprocess one case given its files (`images` maps CT and the planned maps, CBF, CBV, MTT, Tmax and/or
    CBF_computed ..., to paths; `case_info` is its dataset.json["cases"] entry, optional). Raises CaseError
    naming the case on bad input."""
    case_info = dict(case_info or {})
    maps, geometry, seg, dwi_array = read_case_inputs(images, label, dwi, case, planned_map_files(configuration))
    series = read_ctp(ctp, case, geometry, case_info.get("frame_interval_s"))
    frames, original_geometry, crop, outside = series.frames, geometry, None, {}
    if configuration.get("ctp_coverage_crop"):  # ISLES 2024: only the slices the CTP covers (coverage.py)
        first, last = coverage_of(frames, case, case_info.get("ctp_coverage_z"))
        if (first, last) != (0, geometry.size[2]):
            crop, frames, geometry = [first, last], frames[:, first:last], crop_geometry(geometry, first, last)
            maps = {name: array[first:last] for name, array in maps.items()}
            if seg is not None:
                outside = {"lesion_voxels_outside_coverage": int(seg.sum()) - int(seg[first:last].sum())}
                seg = seg[first:last]
            dwi_array = dwi_array[first:last] if dwi_array is not None else None
    mask = head_mask(maps["CT"], **configuration["head_mask"])
    params = TemporalParameters.from_config(configuration["temporal"])
    temporal = preprocess_series(frames, mask, series.frame_interval_s, params, case)
    timing = temporal.timing.to_json(params.num_frames)
    warnings = series.warnings + timing["warnings"]
    if outside.get("lesion_voxels_outside_coverage"):
        warnings.append(f"{outside['lesion_voxels_outside_coverage']} lesion voxel(s) outside the CTP coverage "
                        "(not trained on)")
    del series, frames  # releases the 4D buffer before the outputs are built

    sources = {name: temporal.frames[:, i] for i, name in enumerate(configuration["frame_channels"])}
    sources.update({"PWImax_o": temporal.pwimax_o, "PWImax_p": temporal.pwimax_p}, **maps)
    data, channels = _stack_channels(sources, configuration, mask)
    del sources, temporal, maps

    size = data.shape[-2:]
    target = resampled_geometry(geometry, size)
    weight, lesion = None, {}
    if seg is not None:
        lesion = {"lesion_voxels": int(seg.sum()), "lesion_volume_ml": float(seg.sum()) * geometry.voxel_volume_ml}
        seg = resample_label(seg, size)
        lesion["lesion_slices"] = [int(z) for z in np.flatnonzero(seg.any(axis=(1, 2)))]
        weight = sdf_weight_map(seg, (target.spacing[1], target.spacing[0]),
                                **configuration["weight_map"]).astype(np.float16)
    if dwi_array is not None:
        dwi_array = resample_in_plane(normalize(dwi_array, configuration["dwi_normalization"], mask), size)
        dwi_array = dwi_array.astype(np.float16)

    source_ids = case_info.get("source_ids", {})
    properties = {
        "case": case, "patient": str(case_info.get("patient") or case), "channels": channels,
        "original_geometry": original_geometry.to_json(), "preprocessed_geometry": target.to_json(),
        "original_shape_zyx": list(original_geometry.shape_zyx), "preprocessed_shape_zyx": list(target.shape_zyx),
        **({"crop_z": crop} if crop else {}), **outside,
        "resampled": tuple(geometry.shape_zyx[1:]) != tuple(size), "source_ids": source_ids,
        "ct_mtt_id": source_ids.get("CT_MTT"), "head_voxels": int(mask.sum()),
        "frame_interval_s": timing["frame_interval_s"], "temporal": timing, "warnings": warnings,
        "has_label": seg is not None, "has_dwi": dwi_array is not None, **lesion,
        "preprocessing_hash": preprocessing_hash(configuration),
    }
    return PreprocessedCase(data, seg, weight, dwi_array, properties)


def preprocess_raw_case(raw_case: RawCase, configuration: dict) -> PreprocessedCase:
    """`preprocess_case` on a case of a raw dataset folder (training or test split)."""
    return preprocess_case(raw_case.images, raw_case.ctp, configuration, raw_case.label, raw_case.dwi,
                           raw_case.name, raw_case.info)
