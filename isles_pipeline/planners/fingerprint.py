"""Dataset fingerprint: what the planner needs to know about the raw training data, computed once.

Per case: grid (shape, spacing), frame count and interval (from the 4D header), lesion volume and connected
components in ml (components as `evaluation.metrics.component_structure` defines them for the plans'
`postprocessing.connectivity`; the fingerprint comes before any plans, so it uses the planner's default,
FULL_CONNECTIVITY = 26 neighbours, and records it as `lesion.connectivity`), and up to `num_samples` random
intensity samples per channel inside the head mask with bone left out (CT below the head mask's soft-tissue
limit, 100 HU): with the skull in, the percentiles and std of CT and PWImax_o would be set by bone at
> 1000 HU and squeeze brain tissue, the part that matters, into a sliver of the normalised range. Pooled
over cases: nnU-Net-style intensity statistics per channel (mean, std, median, min, max, percentiles 0.5
and 99.5, and mean/std after clipping to them). The CTP-derived channels (the resampled frames pooled,
PWImax_o, PWImax_p) need the 4D series read and timed, the slow part of a case, so their statistics come
from at most MAX_CTP_CASES cases spread over the sorted case list. The computed maps of the converter's
`--compute_maps` (mapsComputedTr, channels CBF_computed ...) are sampled too where a case has them, and each
case records `has_computed_maps`, so a planner can offer them as channels (`map_source`).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np

from isles_pipeline.components import FULL_CONNECTIVITY, label_components
from isles_pipeline.imageio.case_images import read_ctp, read_ctp_header
from isles_pipeline.parallel import map_cases
from isles_pipeline.perfusion.bolus_timing import TemporalParameters
from isles_pipeline.preprocessing.case_preprocessor import read_case_inputs
from isles_pipeline.preprocessing.coverage import crop_geometry
from isles_pipeline.preprocessing.head_mask import DEFAULT_CLIP_MAX, head_mask
from isles_pipeline.preprocessing.normalization import intensity_statistics
from isles_pipeline.preprocessing.temporal import preprocess_series
from isles_pipeline.raw_format import COMPUTED_CHANNELS, RAW_CHANNELS, RawCase, find_raw_cases, load_dataset_json

FINGERPRINT_FILE = "dataset_fingerprint.json"
NUM_SAMPLES = 10_000
MAX_CTP_CASES = 8
logger = logging.getLogger(__name__)


def _sample(array: np.ndarray, mask: np.ndarray, rng: np.random.Generator, num_samples: int) -> np.ndarray:
    values = array[mask] if array.ndim == mask.ndim else array[:, mask].ravel()
    if values.size > num_samples:
        values = values[rng.choice(values.size, num_samples, replace=False)]
    return values.astype(np.float32)


def case_fingerprint(raw_case: RawCase, seed: int, with_ctp_statistics: bool, temporal: dict,
                     num_samples: int = NUM_SAMPLES, connectivity: int = FULL_CONNECTIVITY) -> dict:
    """One case's entry of the fingerprint, plus its intensity samples under "samples"."""
    computed = [name for name in COMPUTED_CHANNELS if name in raw_case.images and raw_case.images[name].is_file()]
    maps, geometry, seg, dwi = read_case_inputs(raw_case.images, raw_case.label, raw_case.dwi, raw_case.name,
                                                RAW_CHANNELS[1:] + tuple(computed))
    full_geometry, coverage = geometry, raw_case.info.get("ctp_coverage_z")  # ISLES 2024: covered slices only
    if coverage is not None:
        first, last = int(coverage[0]), int(coverage[1])
        maps, geometry = {k: v[first:last] for k, v in maps.items()}, crop_geometry(geometry, first, last)
        seg, dwi = (a[first:last] if a is not None else None for a in (seg, dwi))
    mask = head_mask(maps["CT"], DEFAULT_CLIP_MAX)
    tissue = mask & (maps["CT"] < DEFAULT_CLIP_MAX)
    tissue = tissue if tissue.any() else mask
    rng = np.random.default_rng(seed)
    samples = {name: _sample(array, tissue, rng, num_samples) for name, array in maps.items()}
    if dwi is not None:
        samples["DWI"] = _sample(dwi, tissue, rng, num_samples)
    dataset_dt = raw_case.info.get("frame_interval_s")
    if with_ctp_statistics:
        series = read_ctp(raw_case.ctp, raw_case.name, full_geometry, dataset_dt)
        frames, dt = series.frames.shape[0], series.frame_interval_s
        params = TemporalParameters.from_config(temporal)
        covered = series.frames[:, first:last] if coverage is not None else series.frames
        result = preprocess_series(covered, mask, dt, params, raw_case.name)
        samples["frames"] = _sample(result.frames.transpose(1, 0, 2, 3), tissue, rng, num_samples)
        samples["PWImax_o"] = _sample(result.pwimax_o, tissue, rng, num_samples)
        samples["PWImax_p"] = _sample(result.pwimax_p, tissue, rng, num_samples)
    else:
        frames, dt, _ = read_ctp_header(raw_case.ctp, raw_case.name, full_geometry, dataset_dt)
    entry = {"shape_zyx": list(geometry.shape_zyx), "spacing_zyx": list(geometry.spacing[::-1]),
             "num_frames": int(frames), "frame_interval_s": float(dt), "patient": raw_case.patient,
             "has_dwi": dwi is not None,
             "has_computed_maps": len(computed) == len(COMPUTED_CHANNELS), "head_voxels": int(mask.sum()),
             "samples": samples}
    if seg is not None:
        components, _ = label_components(seg > 0, connectivity)
        sizes = np.bincount(components.ravel())[1:] * geometry.voxel_volume_ml
        entry.update({"lesion_volume_ml": float(sizes.sum()), "lesion_components_ml": sorted(sizes.tolist()),
                      "slices_with_lesion": int((seg > 0).any(axis=(1, 2)).sum())})
    return entry


def _summary(values) -> dict:
    values = np.asarray(list(values), dtype=float)
    if values.size == 0:
        return {"count": 0}
    return {"count": int(values.size), "min": float(values.min()), "percentile_25": float(np.percentile(values, 25)),
            "median": float(np.median(values)), "mean": float(values.mean()),
            "percentile_75": float(np.percentile(values, 75)), "max": float(values.max())}


def ctp_statistics_cases(names: list[str], max_cases: int = MAX_CTP_CASES) -> list[str]:
    """At most max_cases names, evenly spread over the sorted list (deterministic)."""
    names = sorted(names)
    if len(names) <= max_cases:
        return names
    return [names[int(i)] for i in np.linspace(0, len(names) - 1, max_cases).round()]


def _aggregate(dataset_name: str, cases: dict[str, dict], failed: dict[str, str], ctp_cases: list[str],
               temporal: dict, connectivity: int = FULL_CONNECTIVITY) -> dict:
    pooled: dict[str, list[np.ndarray]] = {}
    for entry in cases.values():
        for name, values in entry.pop("samples").items():
            pooled.setdefault(name, []).append(values)
    in_plane: dict[str, int] = {}
    for entry in cases.values():
        key = "x".join(str(s) for s in entry["shape_zyx"][1:])
        in_plane[key] = in_plane.get(key, 0) + 1
    labelled = [e for e in cases.values() if "lesion_volume_ml" in e]
    return {
        "dataset_name": dataset_name, "num_cases": len(cases), "failed_cases": failed,
        "shapes": [e["shape_zyx"] for e in cases.values()], "spacings": [e["spacing_zyx"] for e in cases.values()],
        "in_plane_shapes": in_plane, "total_slices": int(sum(e["shape_zyx"][0] for e in cases.values())),
        "num_frames": _summary(e["num_frames"] for e in cases.values()),
        "frame_interval_s": _summary(e["frame_interval_s"] for e in cases.values()),
        "foreground_intensity_properties_per_channel": {
            name: intensity_statistics(np.concatenate(chunks)) for name, chunks in sorted(pooled.items())},
        "ctp_statistics_cases": ctp_cases, "temporal_parameters": temporal,
        "lesion": {"connectivity": connectivity, "volume_ml": _summary(e["lesion_volume_ml"] for e in labelled),
                   "component_volume_ml": _summary(v for e in labelled for v in e["lesion_components_ml"]),
                   "cases_without_lesion": sum(1 for e in labelled if e["lesion_volume_ml"] == 0),
                   "slices_with_lesion": int(sum(e["slices_with_lesion"] for e in labelled))},
        "cases": cases,
    }


def compute_fingerprint(raw_dataset_folder: Path, num_processes: int = 1,
                        temporal: Optional[dict] = None, connectivity: int = FULL_CONNECTIVITY) -> dict:
    """The fingerprint of a raw dataset's training cases; bad cases are listed under "failed_cases".
    `connectivity`: of the lesion components (1, 2 or 3, as the plans' postprocessing.connectivity)."""
    dataset = load_dataset_json(raw_dataset_folder)
    raw_cases = find_raw_cases(raw_dataset_folder, "Tr", dataset)
    temporal = TemporalParameters.from_config(temporal or {}).to_config()
    with_ctp = set(ctp_statistics_cases([c.name for c in raw_cases]))
    jobs = [(c.name, (c, i, c.name in with_ctp, temporal, NUM_SAMPLES, connectivity)) for i, c in enumerate(raw_cases)]
    cases: dict[str, dict] = {}
    failed: dict[str, str] = {}
    for case, entry, error in map_cases(case_fingerprint, jobs, num_processes, "fingerprint"):
        if error is None:
            cases[case] = entry
        else:
            failed[case] = error
            logger.error(error)
    cases = dict(sorted(cases.items()))
    if not cases:
        failed_note = f" ({len(failed)} failed)" if failed else ""
        raise ValueError(f"{raw_dataset_folder}: no usable training case{failed_note}")
    return _aggregate(Path(raw_dataset_folder).name, cases, dict(sorted(failed.items())),
                      sorted(c for c in with_ctp if c in cases), temporal, connectivity)
