"""Validation of a fold's cases at the end of training: every case predicted by `inference.Predictor` (the
trainer's network as a one-fold ensemble, no post-processing), so validation predictions are made exactly as
`isles_predict` makes them: same batching, same autocast (bf16 on CUDA), same resampling of the probabilities
to the original grid before the threshold. `isles_determine_postprocessing` chooses on these predictions and
`isles_predict` applies its choice to predictions made the same way.

Files in `validation/`: `<case>.nii.gz` (uint8 mask, written by `inference.writer` like isles_predict's),
with --npz `<case>.npz` holding `probabilities` (2, Z, Y, X) float16 on the original grid (background, core),
and summary.json: {"metric_per_case": [{"case", "dice", "hd95_mm", "abs_volume_diff_ml", ...}], "mean": {...},
"reference": where the reference labels came from, "threshold": ...}. Metrics and their empty-case rules are
`evaluation.metrics.case_metrics`'s (Dice 1 when reference and prediction are both empty).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from isles_pipeline.evaluation.metrics import case_metrics
from isles_pipeline.files import atomic_path, atomic_write_json
from isles_pipeline.imageio.nifti_io import read_array
from isles_pipeline.inference.predictor import Predictor
from isles_pipeline.inference.writer import write_mask
from isles_pipeline.preprocessing.resampling import restore_original_geometry
from isles_pipeline.preprocessing.storage import load_preprocessed_case


def reference_label(case: str, raw_labels: Optional[Path], stored: dict, file_ending: str) -> tuple[np.ndarray, str]:
    """The raw label file when the raw dataset is there, else the preprocessed label mapped back."""
    if raw_labels is not None and (raw_labels / f"{case}{file_ending}").is_file():
        return read_array(raw_labels / f"{case}{file_ending}")[0], "raw labelsTr"
    seg = restore_original_geometry(np.asarray(stored["seg"]), stored["properties"], order=0)
    return seg, "preprocessed labels mapped back"


def write_probabilities(core: np.ndarray, path: Path) -> None:
    """(background, core) float16 as one compressed .npz, atomically."""
    core = core.astype(np.float32)
    with atomic_path(path) as temporary:
        np.savez_compressed(temporary, probabilities=np.stack([1.0 - core, core]).astype(np.float16))


def validate_cases(predictor: Predictor, data_folder: Path, cases: Sequence[str], out_folder: Path,
                   save_probabilities: bool, raw_labels: Optional[Path], file_ending: str = ".nii.gz",
                   log: Callable = print) -> dict:
    """Predict, write and score every case; returns the summary (also written to summary.json)."""
    out_folder.mkdir(parents=True, exist_ok=True)
    per_case, sources = [], set()
    for case in cases:
        stored = load_preprocessed_case(data_folder, case)
        props = stored["properties"]
        prediction = predictor.predict(stored["data"], props)
        write_mask(prediction.mask, props, out_folder / f"{case}.nii.gz")
        if save_probabilities:
            write_probabilities(prediction.probabilities, out_folder / f"{case}.npz")
        reference, source = reference_label(case, raw_labels, stored, file_ending)
        sources.add(source)
        row = {"case": case, **case_metrics(reference, prediction.mask, prediction.spacing_zyx)}
        per_case.append(row)
        log(f"validation {case}: dice {row['dice']:.4f}")
    keys = [k for k in (per_case[0] if per_case else {}) if k != "case"]
    mean = {}
    for key in keys:
        values = [r[key] for r in per_case if np.isfinite(r[key])]
        mean[key] = float(np.mean(values)) if values else None
    summary = {"metric_per_case": per_case, "mean": mean, "threshold": predictor.threshold,
               "reference": sorted(sources), "metrics": "isles_pipeline.evaluation.metrics.case_metrics"}
    atomic_write_json(out_folder / "summary.json", summary)
    return summary
