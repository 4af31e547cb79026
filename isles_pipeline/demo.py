"""`run_demo`: the whole chain on a small generated phantom, the project's main job.

phantom (TRAINING with DWI, TESTING) -> raw dataset -> plans + preprocessing -> 4 folds trained briefly ->
post-processing chosen on the folds' validation -> fold-ensemble prediction of TESTING with overlays ->
evaluation against the phantom's DWI lesion, beside the perfusion-threshold baseline -> a summary: means
with 95 % bootstrap intervals over the cases with a lesion, false positives on the lesion-free cases, and the
paired difference full method minus threshold over the same cases (`evaluation.summary`); per-case values kept.

The demo keeps all its data under its output folder: the three ISLES_* roots are pointed there while it runs
and restored afterwards. On a CPU it uses the small preset (`ISLESSmallPlanner`); on a GPU the seed's full
configuration (`ISLESPlanner`).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from isles_pipeline.dataset_conversion.convert import convert_isles2018
from isles_pipeline.devices import resolve_device
from isles_pipeline.evaluation.evaluate import evaluate_folders
from isles_pipeline.evaluation.summary import compare_methods
from isles_pipeline.evaluation.tables import comparison_table, summary_table
from isles_pipeline.evaluation.threshold_baseline import threshold_predictions
from isles_pipeline.files import atomic_write_json
from isles_pipeline.inference.determine_postprocessing import determine_postprocessing
from isles_pipeline.inference.predict import PredictionOptions, predict_folder
from isles_pipeline.paths import data_roots_under, model_folder
from isles_pipeline.phantom import generate_phantom
from isles_pipeline.phantom.study import PHANTOM_DATASET_ID, phantom_references
from isles_pipeline.planners.api import plan_and_preprocess
from isles_pipeline.trainers.run import run_training

METHOD_ROW = "full method (fold ensemble)"
BASELINE_ROW = "threshold baseline"


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
        conversion = convert_isles2018(training, testing, PHANTOM_DATASET_ID, "ISLES2018",
                                       settings.num_processes)
        if conversion.failures:
            raise RuntimeError("conversion failed: " + "; ".join(conversion.failures))
        timings["convert_s"] = time.perf_counter() - start

        start = stage(3, f"plan and preprocess ({planner})")
        plan_and_preprocess(PHANTOM_DATASET_ID, planner, settings.num_processes, clean=True)
        timings["plan_and_preprocess_s"] = time.perf_counter() - start

        start = stage(4, f"train folds {', '.join(map(str, settings.folds))} ({settings.trainer}, {plans}, "
                         f"{torch_device.type})")
        for fold in settings.folds:
            say(f"      fold {fold}")
            run_training(PHANTOM_DATASET_ID, fold, settings.trainer, plans, "2d", torch_device.type)
        timings["train_s"] = time.perf_counter() - start
        trained = model_folder(PHANTOM_DATASET_ID, settings.trainer, plans)

        start = stage(5, "choose post-processing on the folds' validation predictions")
        postprocessing = determine_postprocessing(PHANTOM_DATASET_ID, settings.trainer, plans)
        timings["postprocessing_s"] = time.perf_counter() - start

        start = stage(6, "predict TESTING with the fold ensemble (with overlays)")
        predictions = output / "predictions"
        report = predict_folder(testing, predictions, PHANTOM_DATASET_ID, list(settings.folds), settings.trainer,
                                plans, device=torch_device.type, options=PredictionOptions(overlays=True))
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
        "model_folder": str(trained),
        "predictions": str(predictions),
        "overlays": sorted(str(p) for p in (predictions / "overlays").glob("*.png")),
        "postprocessing": postprocessing,
        "num_cases": method["num_cases"],
        "method_per_case": {c["case"]: c["metrics"] for c in method["metric_per_case"]},
        "threshold_baseline_per_case": {c["case"]: c["metrics"] for c in baseline["metric_per_case"]},
        "method": {key: method[key] for key in ("lesion_cases", "lesion_free_cases")},
        "threshold_baseline": {key: baseline[key] for key in ("lesion_cases", "lesion_free_cases")},
        "seconds": {k: round(v, 1) for k, v in timings.items()},
    }
    summary["method_minus_threshold_baseline"] = compare_methods(summary["method_per_case"],
                                                                 summary["threshold_baseline_per_case"])
    atomic_write_json(output / "summary.json", summary)
    _print_summary(summary, output, say)
    return summary


def _print_summary(summary: dict, output: Path, say: Callable[[str], None]) -> None:
    say("")
    for line in summary_table({METHOD_ROW: summary["method"], BASELINE_ROW: summary["threshold_baseline"]}):
        say(line)
    say("")
    for line in comparison_table({METHOD_ROW: summary["method_minus_threshold_baseline"]}, BASELINE_ROW):
        say(line)
    say(f"(on {summary['num_cases']} phantom TESTING cases; a brief training, not the paper's schedule)")
    say(f"predictions: {summary['predictions']}   overlays: {len(summary['overlays'])} PNG in "
        f"{summary['predictions']}/overlays")
    say(f"model: {summary['model_folder']}")
    say(f"summary: {output / 'summary.json'}   time: {sum(summary['seconds'].values()):.0f} s")
