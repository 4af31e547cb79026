"""Evaluate a folder of predictions against a folder of references (nnU-Net's `evaluate_folder`, ISLES metrics).

Cases are paired by file name (`<case>.nii.gz` or `.nii`, suffix ignored). Every reference is scored: a
reference without a prediction as an empty prediction (flagged), so a method cannot improve its mean by
skipping hard cases; a prediction without a reference is listed, not scored. Geometry is read with the project's
NIfTI reader (ISLES identity-sform quirk resolved), and HD95 and volumes use the true spacing. A reference and
prediction on different grids is an error naming both files: metrics across grids would be meaningless.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Mapping, Optional

import numpy as np
import SimpleITK as sitk

from isles_pipeline.evaluation.metrics import METRIC_KEYS, case_metrics
from isles_pipeline.evaluation.summary import summarize_cases
from isles_pipeline.files import atomic_write_json, atomic_write_text
from isles_pipeline.imageio.case_images import Geometry, geometry_mismatch
from isles_pipeline.imageio.nifti_io import is_nifti, read_image, strip_nifti_suffix


class GeometryMismatchError(ValueError):
    """A prediction whose grid differs from its reference's."""


def nifti_files_by_case(folder: Path) -> dict[str, Path]:
    """{case name: file} of the NIfTI files directly in a folder (hidden and AppleDouble files skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    return {strip_nifti_suffix(p.name): p for p in sorted(folder.iterdir())
            if p.is_file() and is_nifti(p) and not p.name.startswith(".")}


def read_mask(path: Path) -> tuple[np.ndarray, Geometry]:
    """A label file as a boolean (z, y, x) array (foreground = any value > 0) and its grid."""
    image = read_image(path)
    if image.GetDimension() != 3:
        raise ValueError(f"{path}: a segmentation must be 3D, this is {image.GetDimension()}D")
    return sitk.GetArrayFromImage(image) > 0, Geometry.of(image)


class NothingToEvaluateError(ValueError):
    """No reference, or no prediction paired with any reference: a summary of nothing would look like a
    result."""


def evaluate_pair(reference_file: Path, prediction_file: Optional[Path]) -> dict:
    """Metrics of one case; GeometryMismatchError naming both files when their grids differ. A missing
    prediction (None) is scored as an empty one on the reference's grid: a case the method did not
    segment counts as a miss, it does not leave the mean."""
    reference, reference_grid = read_mask(reference_file)
    if prediction_file is None:
        prediction = np.zeros_like(reference)
    else:
        prediction, prediction_grid = read_mask(prediction_file)
        problem = geometry_mismatch(reference_grid, prediction_grid)
        if problem:
            raise GeometryMismatchError(f"prediction {prediction_file} and reference {reference_file} are on "
                                        f"different grids: {problem}")
    spacing_zyx = tuple(reversed(reference_grid.spacing))
    return case_metrics(reference, prediction, spacing_zyx)


def _json_number(value):
    """NaN is not JSON: written as null."""
    return None if isinstance(value, float) and math.isnan(value) else value


CONVENTIONS = (
    "Dice 1 when reference and prediction are both empty; HD95 0 when both are empty, null (NaN) when exactly "
    "one is, excluded from the mean (n_undefined counts them); a missing prediction is scored as an empty one "
    "(missing_prediction true); means over the cases with a reference lesion only, lesion-free cases reported "
    "by their false-positive volume; 95 % percentile-bootstrap intervals over cases (2000 resamples, seed 0); "
    "26-connectivity for lesions; spacing from the NIfTI header (ISLES identity-sform quirk resolved)")


def evaluate_pairs(pairs: Mapping[str, tuple[Path, Optional[Path]]], output_file: Optional[Path] = None,
                   write_csv: bool = False) -> dict:
    """Evaluate {case: (reference file, prediction file or None when missing)}; returns and optionally writes
    the summary {"num_cases", "num_missing_predictions", "lesion_cases", "lesion_free_cases"
    (`summary.summarize_cases`: means with 95 % bootstrap intervals over the cases with a reference lesion;
    count and false-positive volume of the others), "metric_per_case": [{"case", "reference_file",
    "prediction_file", "missing_prediction", "metrics"}], "conventions"}. With `write_csv`, `<output
    stem>.csv` holds one row per case beside the JSON. No pair at all is a NothingToEvaluateError."""
    if not pairs:
        raise NothingToEvaluateError("nothing to evaluate: no reference case")
    per_case = []
    for name in sorted(pairs):
        reference_file, prediction_file = pairs[name]
        per_case.append({"case": name, "reference_file": str(reference_file),
                         "prediction_file": None if prediction_file is None else str(prediction_file),
                         "missing_prediction": prediction_file is None,
                         "metrics": evaluate_pair(reference_file, prediction_file)})
    summary = {
        "num_cases": len(per_case),
        "num_missing_predictions": sum(row["missing_prediction"] for row in per_case),
        **summarize_cases({row["case"]: row["metrics"] for row in per_case}),
        "metric_per_case": [{**row, "metrics": {k: _json_number(v) for k, v in row["metrics"].items()}}
                            for row in per_case],
        "conventions": CONVENTIONS,
    }
    if output_file is not None:
        atomic_write_json(Path(output_file), summary)
        if write_csv:
            _write_csv(Path(output_file).with_suffix(".csv"), summary["metric_per_case"])
    return summary


def evaluate_folders(reference_folder: Path, prediction_folder: Path, output_file: Optional[Path] = None,
                     write_csv: bool = False) -> dict:
    """Evaluate every reference against its prediction (paired by file name) with `evaluate_pairs`. A reference
    without a prediction is scored as an empty prediction and listed in `missing_predictions`; a prediction
    without a reference is not scored, only listed in `predictions_without_reference`. No reference, or no
    prediction matching any reference (an empty folder, or names that do not pair), is a
    NothingToEvaluateError: such a summary would score nothing but look like a result."""
    references = nifti_files_by_case(reference_folder)
    predictions = nifti_files_by_case(prediction_folder)
    if not references:
        raise NothingToEvaluateError(f"{reference_folder}: no reference segmentation (.nii.gz or .nii)")
    if not set(references) & set(predictions):
        raise NothingToEvaluateError(
            f"{prediction_folder}: no prediction matches a reference in {reference_folder} ({len(predictions)} "
            f"prediction(s), {len(references)} reference(s); files are paired by name, e.g. "
            f"{next(iter(sorted(references)))}.nii.gz)")
    summary = evaluate_pairs({name: (references[name], predictions.get(name)) for name in sorted(references)})
    summary["missing_predictions"] = sorted(set(references) - set(predictions))
    summary["predictions_without_reference"] = sorted(set(predictions) - set(references))
    if output_file is not None:
        atomic_write_json(Path(output_file), summary)
        if write_csv:
            _write_csv(Path(output_file).with_suffix(".csv"), summary["metric_per_case"])
    return summary


def _write_csv(path: Path, per_case: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["case", *METRIC_KEYS, "missing_prediction"])
    for row in per_case:
        writer.writerow([row["case"], *("" if row["metrics"][key] is None else row["metrics"][key]
                                        for key in METRIC_KEYS), int(row["missing_prediction"])])
    atomic_write_text(path, buffer.getvalue())
