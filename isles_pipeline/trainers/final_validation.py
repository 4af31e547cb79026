"""Validation of a fold's cases at the end of training: whole cases predicted slice by slice, mapped back to
each case's original geometry with the properties the preprocessor stored, written as NIfTI (SimpleITK),
optionally with probabilities (.npz), and summarised in validation/summary.json.

Files in `validation/`: `<case>.nii.gz` (uint8 mask), with --npz `<case>.npz` holding `probabilities`
(2, Z, Y, X) float16 on the original grid (background, core), and summary.json:
{"metric_per_case": [{"case", "dice", "hd95_mm", "abs_volume_diff_ml", ...}], "mean": {...},
 "reference": where the reference labels came from, "threshold": ...}.
Metrics: `isles_pipeline.evaluation.metrics.case_metrics` when that module exists, else the small Dice /
volume fallback below (HD95 left out).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import SimpleITK as sitk
import torch

from isles_pipeline.dataset_conversion.nifti_io import write_image
from isles_pipeline.files import atomic_path, atomic_write_json
from isles_pipeline.preprocessing.resampling import restore_original_geometry, to_original_image
from isles_pipeline.preprocessing.storage import load_preprocessed_case


def _fallback_metrics(reference: np.ndarray, prediction: np.ndarray, spacing_zyx) -> dict:
    """Dice and volumes only (used while evaluation.metrics is not available)."""
    ref, pred = reference > 0, prediction > 0
    voxel_ml = float(np.prod(spacing_zyx)) / 1000.0
    denominator = ref.sum() + pred.sum()
    dice = float(2.0 * (ref & pred).sum() / denominator) if denominator else float("nan")
    return {"dice": dice, "reference_volume_ml": float(ref.sum()) * voxel_ml,
            "predicted_volume_ml": float(pred.sum()) * voxel_ml,
            "abs_volume_diff_ml": abs(float(ref.sum()) - float(pred.sum())) * voxel_ml}


def _finite_or_none(value):
    """JSON has no NaN: undefined metrics (e.g. HD95 with an empty mask) become null."""
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def metrics_function() -> Callable:
    try:
        from isles_pipeline.evaluation.metrics import case_metrics
    except ImportError:
        return _fallback_metrics
    return case_metrics


@torch.no_grad()
def predict_case_probabilities(predict_logits: Callable, inputs: np.ndarray, batch_size: int,
                               device: torch.device) -> np.ndarray:
    """(2, Z, H, W) float32 softmax of the segmentor for a (Z, C, H, W) preprocessed case."""
    out = []
    for start in range(0, inputs.shape[0], batch_size):
        chunk = torch.from_numpy(np.asarray(inputs[start:start + batch_size], dtype=np.float32)).to(device)
        out.append(torch.softmax(predict_logits(chunk).float(), dim=1).cpu())
    return torch.cat(out).permute(1, 0, 2, 3).numpy()


def reference_label(case: str, raw_labels: Optional[Path], stored: dict, file_ending: str) -> tuple[np.ndarray, str]:
    """The raw label file when the raw dataset is there, else the preprocessed label mapped back."""
    if raw_labels is not None and (raw_labels / f"{case}{file_ending}").is_file():
        return sitk.GetArrayFromImage(sitk.ReadImage(str(raw_labels / f"{case}{file_ending}"))), "raw labelsTr"
    seg = restore_original_geometry(np.asarray(stored["seg"]), stored["properties"], order=0)
    return seg, "preprocessed labels mapped back"


def validate_cases(predict_logits: Callable, data_folder: Path, cases: Sequence[str], out_folder: Path,
                   batch_size: int, device: torch.device, threshold: float, save_probabilities: bool,
                   raw_labels: Optional[Path], file_ending: str = ".nii.gz", log: Callable = print) -> dict:
    """Predict, write and score every case; returns the summary (also written to summary.json)."""
    out_folder.mkdir(parents=True, exist_ok=True)
    metrics = metrics_function()
    per_case, sources = [], set()
    for case in cases:
        stored = load_preprocessed_case(data_folder, case)
        props = stored["properties"]
        probabilities = predict_case_probabilities(predict_logits, stored["data"], batch_size, device)
        original = restore_original_geometry(probabilities, props, order=1).astype(np.float32)
        mask = (original[1] >= threshold).astype(np.uint8)
        write_image(to_original_image(mask, props), out_folder / f"{case}.nii.gz")
        if save_probabilities:
            with atomic_path(out_folder / f"{case}.npz") as temporary:
                np.savez_compressed(temporary, probabilities=original.astype(np.float16))
        reference, source = reference_label(case, raw_labels, stored, file_ending)
        sources.add(source)
        spacing = props["original_geometry"]["spacing"][::-1]
        row = {"case": case, **{k: _finite_or_none(v) for k, v in metrics(reference, mask, tuple(spacing)).items()}}
        per_case.append(row)
        log(f"validation {case}: dice {row.get('dice', float('nan')):.4f}")
    keys = [k for k in (per_case[0] if per_case else {}) if k != "case"]
    mean = {}
    for key in keys:
        values = [r[key] for r in per_case if isinstance(r.get(key), (int, float)) and np.isfinite(r[key])]
        mean[key] = float(np.mean(values)) if values else None
    summary = {"metric_per_case": per_case, "mean": mean, "threshold": threshold, "reference": sorted(sources),
               "metrics": getattr(metrics, "__module__", "") + "." + getattr(metrics, "__name__", "")}
    atomic_write_json(out_folder / "summary.json", summary)
    return summary
