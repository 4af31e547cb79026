"""`predict_folder`: every case of an input folder through a trained model's fold ensemble, written in the
input's geometry, with a table of core volumes. The Python API behind `isles_predict`.

Preprocessing of the next case runs in a background thread while the current one is inferred and written
(NumPy, SciPy and ITK release the GIL for their heavy loops). A failing case is reported and skipped; the
others are written; `PredictionReport.failures` lists them (the CLI exits non-zero).
"""
from __future__ import annotations

import contextlib
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from isles_pipeline.evaluation.overlay import save_overlay
from isles_pipeline.files import atomic_path, atomic_write_json
from isles_pipeline.inference.case_inputs import InputCase, PreparedCase, find_input_cases, prepare_case
from isles_pipeline.inference.dicom_cases import SEG_SUFFIX, write_study_seg
from isles_pipeline.inference.predictor import DEFAULT_CHECKPOINT, CasePrediction, Predictor
from isles_pipeline.inference.writer import (
    OVERLAYS_FOLDER,
    PROBABILITIES_FOLDER,
    PSEUDO_DWI_FOLDER,
    VOLUMES_CSV,
    output_name,
    write_array,
    write_mask,
    write_volumes_csv,
)
from isles_pipeline.paths import DEFAULT_CONFIGURATION, DEFAULT_PLANS, DEFAULT_TRAINER, model_folder
from isles_pipeline.preprocessing.resampling import restore_original_geometry

logger = logging.getLogger(__name__)
OVERLAY_MAP_PREFERENCE = ("Tmax", "CBF", "MTT", "CBV")


@dataclass
class PredictionOptions:
    save_probabilities: bool = False
    save_pseudo_dwi: bool = False
    smir_names: bool = False
    smir_name: str = "isles_pipeline"
    overlays: bool = False
    dicom_seg: bool = False  # DICOM input: also <case>_core_seg.dcm, a SEG on the source CTP slices


@dataclass
class PredictionReport:
    written: dict[str, dict] = field(default_factory=dict)  # case -> {"file", "core_volume_ml", ...}
    failures: dict[str, str] = field(default_factory=dict)  # case -> one line
    seconds: dict[str, float] = field(default_factory=lambda: {"preprocessing": 0.0, "network": 0.0,
                                                                "writing": 0.0})


def _one_line(case: str, error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if text.startswith(case) else f"{case}: {text}"


def _overlay_map(prepared: PreparedCase, configuration: dict) -> tuple[str, np.ndarray]:
    channels = list(configuration["input_channels"])
    name = next((n for n in OVERLAY_MAP_PREFERENCE if n in channels), configuration["map_channels"][0])
    data = np.asarray(prepared.preprocessed.data[:, channels.index(name)], np.float32)
    return name, restore_original_geometry(data, prepared.properties, order=1)


def write_case(prepared: PreparedCase, prediction: CasePrediction, output_folder: Path,
               options: PredictionOptions, configuration: dict) -> dict:
    """Write the mask and the optional outputs of one case; returns its row of the volume table.

    All outputs of the case are written to temporaries first and renamed into place together only when every
    one is complete: a failed case leaves no temporary, and an earlier prediction of the case stays as it was.
    """
    output_folder = Path(output_folder)
    name = output_name(prepared.name, options.smir_names, prepared.ct_mtt_id, options.smir_name)
    with contextlib.ExitStack() as outputs:
        write_mask(prediction.mask, prepared.properties, outputs.enter_context(atomic_path(output_folder / name)))
        if options.save_probabilities:
            write_array(prediction.probabilities, prepared.properties, outputs.enter_context(
                atomic_path(output_folder / PROBABILITIES_FOLDER / f"{prepared.name}.nii.gz")))
        if options.save_pseudo_dwi and prediction.pseudo_dwi is not None:
            write_array(prediction.pseudo_dwi, prepared.properties, outputs.enter_context(
                atomic_path(output_folder / PSEUDO_DWI_FOLDER / f"{prepared.name}.nii.gz")))
        if options.overlays:
            map_name, input_map = _overlay_map(prepared, configuration)
            save_overlay(outputs.enter_context(atomic_path(output_folder / OVERLAYS_FOLDER / f"{prepared.name}.png")),
                         input_map, prediction.mask, prediction.pseudo_dwi, prepared.truth,
                         input_name=map_name, title=f"{prepared.name}: core {prediction.volume_ml:.2f} ml")
        if options.dicom_seg and prepared.dicom is not None:
            write_study_seg(prediction.mask, prepared.properties, prepared.dicom,
                            outputs.enter_context(atomic_path(output_folder / f"{prepared.name}{SEG_SUFFIX}")))
    return {"case": prepared.name, "file": name, "core_volume_ml": round(prediction.volume_ml, 4),
            "lesion_count": prediction.lesion_count, "ct_mtt_id": prepared.ct_mtt_id}


def predict_cases(predictor: Predictor, cases: Sequence[InputCase], output_folder: Path,
                  options: Optional[PredictionOptions] = None,
                  prepare: Callable[[InputCase, dict], PreparedCase] = prepare_case) -> PredictionReport:
    """Predict the cases in order, preparing case i + 1 in the background while case i is inferred."""
    options = options or PredictionOptions()
    report = PredictionReport()
    output_folder = Path(output_folder)
    output_folder.mkdir(parents=True, exist_ok=True)
    configuration = predictor.configuration

    def timed_prepare(case: InputCase) -> tuple[PreparedCase, float]:
        start = time.perf_counter()
        return prepare(case, configuration), time.perf_counter() - start

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="isles_prepare") as pool:
        pending: Optional[Future] = pool.submit(timed_prepare, cases[0]) if cases else None
        for index, case in enumerate(cases):
            current = pending
            pending = pool.submit(timed_prepare, cases[index + 1]) if index + 1 < len(cases) else None
            try:
                prepared, prepare_seconds = current.result()
                report.seconds["preprocessing"] += prepare_seconds
                start = time.perf_counter()
                prediction = predictor.predict(prepared.preprocessed.data, prepared.properties)
                report.seconds["network"] += time.perf_counter() - start
                start = time.perf_counter()
                row = write_case(prepared, prediction, output_folder, options, configuration)
                report.seconds["writing"] += time.perf_counter() - start
                report.written[case.name] = row
                logger.info("%s: core %.2f ml in %d lesion(s) -> %s", case.name, row["core_volume_ml"],
                            row["lesion_count"], row["file"])
            except Exception as error:  # one bad case must not stop the batch
                report.failures[case.name] = _one_line(case.name, error)
                logger.error("%s", report.failures[case.name])
    return report


def _write_tables(report: PredictionReport, output_folder: Path, predictor: Predictor, options: PredictionOptions,
                  model: Path) -> None:
    rows = [report.written[c] for c in sorted(report.written)]
    write_volumes_csv(rows, Path(output_folder) / VOLUMES_CSV)
    atomic_write_json(Path(output_folder) / "predictions.json", {
        "model_folder": str(model), "folds": predictor.ensemble.folds, **predictor.ensemble.identity,
        "threshold": predictor.threshold, "postprocessing": predictor.postprocessing,
        "device": str(predictor.ensemble.device), "smir_names": options.smir_names,
        "cases": rows, "failures": report.failures,
        "seconds": {key: round(value, 3) for key, value in report.seconds.items()},
    })


def predict_folder(input_folder: Path, output_folder: Path, dataset_id: int = 18,
                   folds: Optional[Sequence[int]] = None, trainer: str = DEFAULT_TRAINER, plans: str = DEFAULT_PLANS,
                   configuration: str = DEFAULT_CONFIGURATION, checkpoint_name: str = DEFAULT_CHECKPOINT,
                   device: str = "auto", disable_postprocessing: bool = False,
                   options: Optional[PredictionOptions] = None, folder: Optional[Path] = None,
                   batch_size: int = 8, acceleration: Optional[dict] = None) -> PredictionReport:
    """Predict every case of `input_folder` (ISLES 2018 layout or raw images folder) into `output_folder`.

    The model is `$ISLES_results/DatasetXXX/<trainer>__<plans>__<configuration>` unless `folder` is given.
    Writes `<case>.nii.gz` (or SMIR names), `volumes.csv` and `predictions.json`; returns the report.
    """
    options = options or PredictionOptions()
    model = Path(folder) if folder is not None else model_folder(dataset_id, trainer, plans, configuration)
    predictor = Predictor.from_model_folder(model, folds, checkpoint_name, device, disable_postprocessing,
                                            batch_size, acceleration)
    for note in predictor.ensemble.networks[predictor.ensemble.folds[0]].acceleration.notes:
        logger.info(note)
    cases = find_input_cases(input_folder)
    logger.info("%d case(s), folds %s of %s, post-processing %s", len(cases), predictor.ensemble.folds,
                model.name, predictor.postprocessing or "none")
    report = predict_cases(predictor, cases, output_folder, options)
    _write_tables(report, output_folder, predictor, options, model)
    return report
