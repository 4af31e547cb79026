"""`run_demo`: the whole chain on a small generated phantom, the project's main job.

phantom (TRAINING with DWI, TESTING) -> raw dataset -> plans + preprocessing -> 4 folds trained briefly ->
post-processing chosen on the folds' validation -> fold-ensemble prediction of TESTING with overlays ->
evaluation against the phantom's DWI lesion, beside the perfusion-threshold baseline -> a summary.

The demo keeps all its data under its output folder: the three ISLES_* roots are pointed there while it runs
and restored afterwards. On a CPU it uses the small preset (`ISLESSmallPlanner`); on a GPU the seed's full
configuration (`ISLESPlanner`).
"""
from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import SimpleITK as sitk

from isles_pipeline.dataset_conversion.convert import convert_isles2018
from isles_pipeline.dataset_conversion.isles2018_layout import list_case_folders, read_case_layout
from isles_pipeline.dataset_conversion.nifti_io import read_image, write_image
from isles_pipeline.dataset_conversion.phantom import generate_phantom
from isles_pipeline.devices import resolve_device
from isles_pipeline.evaluation.evaluate import evaluate_folders
from isles_pipeline.evaluation.threshold_baseline import threshold_core
from isles_pipeline.inference.determine_postprocessing import determine_postprocessing
from isles_pipeline.inference.predict import PredictionOptions, predict_folder
from isles_pipeline.paths import data_roots_under
from isles_pipeline.planners.api import plan_and_preprocess
from isles_pipeline.files import atomic_write_json
from isles_pipeline.trainers.run import run_training

DATASET_ID = 18


@dataclass(frozen=True)
class DemoSettings:
    """How big the demo is. The defaults finish in a few minutes on a 2-core CPU."""

    training_cases: int = 12
    testing_cases: int = 4
    size: int = 128
    seed: int = 0
    folds: tuple[int, ...] = (0, 1, 2, 3)
    trainer: str = "ISLESChainTrainer_5epochs"
    num_processes: int = 2
    with_dwi: bool = True


def threshold_predictions(testing: Path, folder: Path) -> None:
    """The rCBF < 30 % in Tmax > 6 s baseline for every TESTING case, on the CT's grid."""
    for case_folder in list_case_folders(testing):
        case = read_case_layout(case_folder, require_label=False)
        cbf, tmax = (read_image(case.files[m]) for m in ("CT_CBF", "CT_Tmax"))
        core = threshold_core(sitk.GetArrayFromImage(cbf), sitk.GetArrayFromImage(tmax)).astype(np.uint8)
        image = sitk.GetImageFromArray(core)
        image.CopyInformation(read_image(case.files["CT"]))
        write_image(image, folder / f"{case_folder.name}.nii.gz")


def phantom_references(testing: Path, folder: Path) -> None:
    """The phantom's DWI lesion (what OT would be) of each TESTING case, named like the predictions."""
    folder.mkdir(parents=True, exist_ok=True)
    for case_folder in list_case_folders(testing):
        shutil.copyfile(testing / "phantom_truth" / case_folder.name / "lesion_dwi.nii.gz",
                        folder / f"{case_folder.name}.nii.gz")


def run_demo(output: Path, device: str = "auto", settings: DemoSettings = DemoSettings(),
             say: Callable[[str], None] = print) -> dict:
    """Run every stage; returns (and writes to `output/summary.json`) where everything is and the scores."""
    output = Path(output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    torch_device = resolve_device(device)
    on_gpu = torch_device.type == "cuda"
    planner, plans = ("ISLESPlanner", "ISLESPlans") if on_gpu else ("ISLESSmallPlanner", "ISLESSmallPlans")
    phantom = output / "phantom"
    training, testing = phantom / "TRAINING", phantom / "TESTING"
    timings: dict[str, float] = {}
    steps = 8

    def stage(number: int, text: str):
        say(f"[{number}/{steps}] {text}")
        return time.perf_counter()

    with data_roots_under(output):
        start = stage(1, f"phantom: {settings.training_cases} TRAINING and {settings.testing_cases} TESTING cases "
                         f"at {settings.size} x {settings.size}")
        generate_phantom(training, settings.training_cases, "TRAINING", settings.seed, settings.size,
                         settings.with_dwi, settings.num_processes)
        generate_phantom(testing, settings.testing_cases, "TESTING", settings.seed + 1, settings.size,
                         settings.with_dwi, settings.num_processes)
        timings["phantom_s"] = time.perf_counter() - start

        start = stage(2, "convert to the raw format")
        conversion = convert_isles2018(training, testing, DATASET_ID, "ISLES2018", settings.num_processes)
        if conversion.failures:
            raise RuntimeError("conversion failed: " + "; ".join(conversion.failures))
        timings["convert_s"] = time.perf_counter() - start

        start = stage(3, f"plan and preprocess ({planner})")
        plan_and_preprocess(DATASET_ID, planner, settings.num_processes, clean=True)
        timings["plan_and_preprocess_s"] = time.perf_counter() - start

        start = stage(4, f"train folds {', '.join(map(str, settings.folds))} ({settings.trainer}, {plans}, "
                         f"{torch_device.type})")
        for fold in settings.folds:
            say(f"      fold {fold}")
            run_training(DATASET_ID, fold, settings.trainer, plans, "2d", torch_device.type)
        timings["train_s"] = time.perf_counter() - start

        start = stage(5, "choose post-processing on the folds' validation predictions")
        postprocessing = determine_postprocessing(DATASET_ID, settings.trainer, plans)
        timings["postprocessing_s"] = time.perf_counter() - start

        start = stage(6, "predict TESTING with the fold ensemble (with overlays)")
        predictions = output / "predictions"
        report = predict_folder(testing, predictions, DATASET_ID, list(settings.folds), settings.trainer, plans,
                                device=torch_device.type, options=PredictionOptions(overlays=True))
        if report.failures:
            raise RuntimeError("prediction failed: " + "; ".join(report.failures.values()))
        timings["predict_s"] = time.perf_counter() - start

        start = stage(7, "evaluate against the phantom's DWI lesions, beside the threshold baseline")
        references = output / "references"
        phantom_references(testing, references)
        threshold_predictions(testing, output / "threshold_baseline")
        method = evaluate_folders(references, predictions, output / "evaluation_method.json")
        baseline = evaluate_folders(references, output / "threshold_baseline", output / "evaluation_threshold.json")
        timings["evaluate_s"] = time.perf_counter() - start

    stage(8, "summary")
    summary = {
        "device": torch_device.type,
        "settings": asdict(settings),
        "plans": plans,
        "model_folder": str(output / "ISLES_results" / "Dataset018_ISLES2018" / f"{settings.trainer}__{plans}__2d"),
        "predictions": str(predictions),
        "overlays": sorted(str(p) for p in (predictions / "overlays").glob("*.png")),
        "postprocessing": postprocessing,
        "method_per_case": {c["case"]: c["metrics"] for c in method["metric_per_case"]},
        "method_mean": method["mean"],
        "threshold_baseline_mean": baseline["mean"],
        "seconds": {k: round(v, 1) for k, v in timings.items()},
    }
    atomic_write_json(output / "summary.json", summary)
    _print_summary(summary, output, say)
    return summary


def _fmt(value: Optional[float]) -> str:
    return "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.3f}"


def _print_summary(summary: dict, output: Path, say: Callable[[str], None]) -> None:
    say("")
    say(f"{'':28s}{'Dice':>8s}{'HD95 mm':>10s}{'|dV| ml':>10s}")
    for name, mean in (("full method (fold ensemble)", summary["method_mean"]),
                       ("threshold baseline", summary["threshold_baseline_mean"])):
        say(f"{name:28s}{_fmt(mean.get('dice')):>8s}{_fmt(mean.get('hd95_mm')):>10s}"
            f"{_fmt(mean.get('abs_volume_diff_ml')):>10s}")
    say(f"(on {len(summary['method_per_case'])} phantom TESTING cases; a brief training, not the paper's schedule)")
    say(f"predictions: {summary['predictions']}   overlays: {len(summary['overlays'])} PNG in "
        f"{summary['predictions']}/overlays")
    say(f"model: {summary['model_folder']}")
    say(f"summary: {output / 'summary.json'}   time: {sum(summary['seconds'].values()):.0f} s")
