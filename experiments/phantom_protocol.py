"""The phantom benchmark protocol (Python API of `phantom_results`): 4-fold cross-validation by patient on a
TRAINING phantom, and a TESTING phantom predicted by each row's fold ensemble.

1. `prepare_phantom`: a TRAINING phantom (seed 0) and a TESTING phantom (seed 1), both with their DWI truth,
   converted together (TRAINING -> imagesTr/labelsTr `train_NNN`, TESTING -> imagesTs `test_NNN`), planned,
   preprocessed; splits_final.json as planning writes it (`isles_pipeline.splits`: a patient's slabs never
   split). TESTING references: the phantom's DWI lesion, named like the predictions (`test_NNN.nii.gz`). Every
   step is skipped when its output is there, so a rerun in the same work folder starts training at once; a
   work folder made with other data settings is refused.
2. `run_protocol`: every (row, fold) trained in parallel and resumable (`cross_validation`); CV predictions
   = each fold's final-validation predictions gathered, scored against labelsTr; TESTING predicted from
   imagesTs by the ensemble of the folds run; the threshold baseline on the same TRAINING cases and on TESTING.
   No post-processing anywhere (nnU-Net's stock validation has none; the ensembles run with it disabled).
   Scoring is `evaluation.evaluate.evaluate_pairs` for every row, so lesion and lesion-free cases come apart
   with bootstrap intervals (`evaluation.summary`), and paired differences against the one-stage U-Net and
   the threshold are `summary.compare_methods`, separately for CV and TESTING.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

from experiments.cross_validation import gather_cross_validation, one_torch_thread, train_folds
from isles_pipeline.dataset_conversion.convert import convert_isles2018, raw_case_name
from isles_pipeline.dataset_conversion.isles2018_layout import list_case_folders
from isles_pipeline.evaluation.evaluate import evaluate_pairs, nifti_files_by_case
from isles_pipeline.evaluation.summary import compare_methods
from isles_pipeline.evaluation.threshold_baseline import threshold_predictions
from isles_pipeline.files import atomic_write_json, read_json
from isles_pipeline.inference.predict import predict_folder
from isles_pipeline.parallel import map_cases
from isles_pipeline.paths import data_roots_under, find_dataset_folder, isles_preprocessed, isles_raw
from isles_pipeline.phantom import generate_phantom
from isles_pipeline.phantom.study import PHANTOM_DATASET_ID, phantom_references
from isles_pipeline.planners.api import plan_and_preprocess
from isles_pipeline.planners.plans import get_configuration, load_plans
from isles_pipeline.planners.registry import find_planner
from isles_pipeline.splits import SPLITS_FILE, load_splits
from isles_pipeline.trainers.variants import TABLE1

THRESHOLD_ROW = "threshold baseline (rCBF < 30 % in Tmax > 6 s)"
ONE_STAGE_ROW = TABLE1[0].__name__
NNUNET_ROW = "stock nnU-Net v2 2d (budget-matched)"
POSTPROCESSING = "none (fold validation and ensembles alike)"


@dataclass(frozen=True)
class PhantomBenchmark:
    """A prepared work folder: data roots under `work`, the phantom folders and the TESTING references."""

    work: Path
    plans: str

    @property
    def training(self) -> Path:
        return self.work / "phantom" / "TRAINING"

    @property
    def testing(self) -> Path:
        return self.work / "phantom" / "TESTING"

    @property
    def testing_references(self) -> Path:
        return self.work / "references_testing"

    def raw_dataset(self) -> Path:
        return find_dataset_folder(isles_raw(), PHANTOM_DATASET_ID)

    def splits(self) -> list[dict]:
        return load_splits(find_dataset_folder(isles_preprocessed(), PHANTOM_DATASET_ID) / SPLITS_FILE)


def converted_name(split: str):
    """case folder name -> the converter's identifier (`case_7` -> `train_007` for "Tr", `test_007` for "Ts")."""
    return lambda folder_name: raw_case_name(split, int(folder_name.split("_")[1]))


def prepare_phantom(work: Path, training_cases: int, testing_cases: int, size: int, planner: str,
                    num_processes: int, other_planners: Sequence[str] = ()) -> PhantomBenchmark:
    """Step 1 of the module docstring; ValueError when `work` holds a phantom made with other settings.
    `other_planners` are planned and preprocessed too (each its own plans, the same data and splits); the
    returned benchmark's `plans` are `planner`'s."""
    work = Path(work).resolve()
    settings = {"training_cases": training_cases, "testing_cases": testing_cases, "size": size, "planner": planner,
                "training_seed": 0, "testing_seed": 1, "with_dwi": True}
    record = work / "phantom_settings.json"
    if record.is_file() and read_json(record) != settings:
        raise ValueError(f"{record}: this work folder holds a phantom made with {read_json(record)}; use another "
                         "-work folder or delete it")
    if not record.is_file() and work.is_dir() and any(work.iterdir()):
        raise ValueError(f"{work}: not empty and not a work folder of this protocol (no phantom_settings.json); "
                         "use a new -work folder")
    atomic_write_json(record, settings)  # first: an interrupted preparation resumes with the same settings
    bench = PhantomBenchmark(work, find_planner(planner).plans_name)
    with data_roots_under(work):
        for folder, count, split, seed in ((bench.training, training_cases, "TRAINING", 0),
                                           (bench.testing, testing_cases, "TESTING", 1)):
            if len(list_case_folders(folder) if folder.is_dir() else []) != count:
                generate_phantom(folder, count, split, seed, size, True, num_processes)
        if not (isles_raw().is_dir() and any(isles_raw().glob(f"Dataset{PHANTOM_DATASET_ID:03d}_*/dataset.json"))):
            result = convert_isles2018(bench.training, bench.testing, PHANTOM_DATASET_ID, "ISLES2018", num_processes)
            if result.failures:
                raise RuntimeError("conversion failed: " + "; ".join(result.failures))
        for name in (planner, *other_planners):
            plan_and_preprocess(PHANTOM_DATASET_ID, name, num_processes)
        phantom_references(bench.testing, bench.testing_references, converted_name("Ts"))
    return bench


def training_slices_per_fold(plans: Mapping, configuration: str = "2d") -> int:
    """Slices one fold of our rows trains on: epochs x iterations per epoch x batch size of the plans (the
    Table-1 rows keep the plans' schedule), the budget a compared method gets."""
    config = get_configuration(dict(plans), configuration)
    return int(config["num_epochs"]) * int(config["iterations_per_epoch"]) * int(config["batch_size"])


def score(references: Mapping[str, Path], predictions: Path) -> dict:
    """One results row: the project's evaluation of every reference against `<case>.nii.gz` in `predictions`
    (a missing one scored as empty and counted), plus every per-case value."""
    files = nifti_files_by_case(predictions)
    summary = evaluate_pairs({case: (reference, files.get(case)) for case, reference in sorted(references.items())})
    return {"num_cases": summary["num_cases"], "num_missing_predictions": summary["num_missing_predictions"],
            "lesion_cases": summary["lesion_cases"], "lesion_free_cases": summary["lesion_free_cases"],
            "per_case": {row["case"]: row["metrics"] for row in summary["metric_per_case"]}}


def add_comparisons(part: dict, references: Sequence[str] = (ONE_STAGE_ROW, THRESHOLD_ROW)) -> dict:
    """Paired differences of every row of `part["rows"]` against each reference row (default: the one-stage
    U-Net and the threshold baseline; those present), in `part["comparisons"]`."""
    rows = part["rows"]
    part["comparisons"] = {
        against: {name: compare_methods(row["per_case"], rows[against]["per_case"])
                  for name, row in rows.items() if name != against}
        for against in references if against in rows}
    return part


def predict_testing_job(images: Path, output: Path, trainer: str, plans: str, folds: Sequence[int],
                        device: str) -> float:
    """Worker: the TESTING images through one row's fold ensemble, no post-processing; returns its seconds."""
    start = time.perf_counter()
    with one_torch_thread():
        report = predict_folder(images, output, PHANTOM_DATASET_ID, list(folds), trainer, plans, device=device,
                                disable_postprocessing=True)
    if report.failures:
        raise RuntimeError(f"prediction failed: {report.failures}")
    return time.perf_counter() - start


def _nnunet_row(bench: PhantomBenchmark, splits: list[dict], device: str, num_processes: int) -> tuple[dict, float]:
    from experiments.nnunet_row import run_nnunet_row  # its own environment; only when asked

    budget = training_slices_per_fold(load_plans(PHANTOM_DATASET_ID, bench.plans))
    start = time.perf_counter()
    folders = run_nnunet_row(bench.raw_dataset(), splits, bench.work / "nnunet", budget, device, num_processes)
    return folders, time.perf_counter() - start


def run_protocol(bench: PhantomBenchmark, trainers: Sequence[str], folds: Optional[Sequence[int]] = None,
                 device: str = "cpu", num_processes: int = 2, nnunet: bool = False) -> dict:
    """Step 2 of the module docstring; returns {"settings", "cv": {"rows", "comparisons", "cv_source"},
    "testing": {"rows", "comparisons"}, "seconds": {row: {"folds": {fold: s or None when skipped},
    "testing_prediction": s, "total": s}}}."""
    work = bench.work
    with data_roots_under(work):
        splits = bench.splits()
        folds = list(range(len(splits))) if folds is None else sorted(set(int(f) for f in folds))
        bad = [f for f in folds if not 0 <= f < len(splits)]
        if bad:
            raise ValueError(f"folds {bad} out of range: the splits have folds 0..{len(splits) - 1}")
        raw = bench.raw_dataset()
        cv_cases = sorted(case for fold in folds for case in splits[fold]["val"])
        cv_references = {case: raw / "labelsTr" / f"{case}.nii.gz" for case in cv_cases}
        testing_references = nifti_files_by_case(bench.testing_references)
        results: dict = {
            "settings": {**read_json(work / "phantom_settings.json"), "plans": bench.plans, "folds": folds,
                         "rows": list(trainers), "device": device, "num_processes": num_processes,
                         "postprocessing": POSTPROCESSING,
                         "training_slices_per_fold": training_slices_per_fold(load_plans(PHANTOM_DATASET_ID,
                                                                                         bench.plans))},
            "cv": {"rows": {}, "cv_source": {}}, "testing": {"rows": {}}, "seconds": {}}
        threshold_predictions(bench.training, work / "threshold" / "cv", converted_name("Tr"))
        threshold_predictions(bench.testing, work / "threshold" / "testing", converted_name("Ts"))
        results["cv"]["rows"][THRESHOLD_ROW] = score(cv_references, work / "threshold" / "cv")
        results["testing"]["rows"][THRESHOLD_ROW] = score(testing_references, work / "threshold" / "testing")

        fold_seconds = train_folds(PHANTOM_DATASET_ID, trainers, folds, bench.plans, splits, device, num_processes)
        jobs = [(trainer, (raw / "imagesTs", work / "testing" / trainer, trainer, bench.plans, folds, device))
                for trainer in trainers]
        testing_seconds = {}
        for trainer, seconds, error in map_cases(predict_testing_job, jobs, num_processes, desc="TESTING"):
            if error:
                raise RuntimeError(error)
            testing_seconds[trainer] = seconds
        for trainer in trainers:
            source = gather_cross_validation(PHANTOM_DATASET_ID, trainer, bench.plans, splits, folds,
                                             work / "cv" / trainer)
            results["cv"]["cv_source"][trainer] = source
            results["cv"]["rows"][trainer] = score(cv_references, work / "cv" / trainer)
            results["testing"]["rows"][trainer] = score(testing_references, work / "testing" / trainer)
            trained = [s for s in fold_seconds[trainer].values() if s is not None]
            results["seconds"][trainer] = {"folds": fold_seconds[trainer],
                                           "testing_prediction": round(testing_seconds[trainer], 1),
                                           "total": round(sum(trained) + testing_seconds[trainer], 1)}
        if nnunet:
            folders, seconds = _nnunet_row(bench, splits, device, num_processes)
            results["cv"]["rows"][NNUNET_ROW] = score(cv_references, Path(folders["cv"]))
            results["testing"]["rows"][NNUNET_ROW] = score(testing_references, Path(folders["testing"]))
            results["seconds"][NNUNET_ROW] = {"total": round(seconds, 1)}
    add_comparisons(results["cv"])
    add_comparisons(results["testing"])
    return results
