"""Scores on a phantom testing set: the threshold baseline and trained Table-1 rows, fold 0, small preset.

    python -m isles_pipeline.benchmarking.phantom_results -tr ISLESChainTrainer_UNetCE ISLESChainTrainer

One phantom (TRAINING with DWI, TESTING), converted, planned and preprocessed once with `-pl`; then for each
trainer: fold 0 trained with the plans' schedule, TESTING predicted with that fold alone, evaluated against
the phantom's DWI lesions. The threshold baseline (rCBF < 30 % in Tmax > 6 s) is scored on the same cases.
Prints a table (Dice, HD95, absolute volume difference) and writes everything to `-o`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from isles_pipeline.dataset_conversion.convert import convert_isles2018
from isles_pipeline.dataset_conversion.phantom import generate_phantom
from isles_pipeline.demo import DATASET_ID, phantom_references, threshold_predictions
from isles_pipeline.evaluation.evaluate import evaluate_folders
from isles_pipeline.inference.predict import predict_folder
from isles_pipeline.paths import data_roots_under
from isles_pipeline.planners.api import plan_and_preprocess
from isles_pipeline.files import atomic_write_json
from isles_pipeline.trainers.run import run_training

PLANS = {"ISLESSmallPlanner": "ISLESSmallPlans", "ISLESPlanner": "ISLESPlans"}


def run(work: Path, trainers: Sequence[str], training_cases: int, testing_cases: int, size: int,
        planner: str, device: str, num_processes: int) -> dict:
    work = Path(work).resolve()
    training, testing = work / "phantom" / "TRAINING", work / "phantom" / "TESTING"
    plans = PLANS[planner]
    results: dict = {"settings": {"training_cases": training_cases, "testing_cases": testing_cases, "size": size,
                                  "planner": planner, "fold": 0, "device": device}, "rows": {}}
    with data_roots_under(work):
        generate_phantom(training, training_cases, "TRAINING", 0, size, True, num_processes)
        generate_phantom(testing, testing_cases, "TESTING", 1, size, True, num_processes)
        convert_isles2018(training, None, DATASET_ID, "ISLES2018", num_processes)
        plan_and_preprocess(DATASET_ID, planner, num_processes, clean=True)
        references = work / "references"
        phantom_references(testing, references)
        threshold_predictions(testing, work / "threshold_baseline")
        results["rows"]["threshold baseline (rCBF < 30 % in Tmax > 6 s)"] = evaluate_folders(
            references, work / "threshold_baseline")["mean"]
        for trainer in trainers:
            start = time.perf_counter()
            run_training(DATASET_ID, 0, trainer, plans, "2d", device)
            predictions = work / "predictions" / trainer
            report = predict_folder(testing, predictions, DATASET_ID, [0], trainer, plans, device=device)
            if report.failures:
                raise RuntimeError(f"{trainer}: prediction failed: {report.failures}")
            mean = evaluate_folders(references, predictions)["mean"]
            results["rows"][trainer] = dict(mean, seconds=round(time.perf_counter() - start, 1))
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-tr", nargs="+", default=["ISLESChainTrainer_UNetCE", "ISLESChainTrainer"])
    parser.add_argument("-o", type=Path, default=Path("phantom_results.json"))
    parser.add_argument("-work", type=Path, default=Path("phantom_results_work"))
    parser.add_argument("-n", type=int, default=24, help="TRAINING cases (default 24)")
    parser.add_argument("-t", type=int, default=10, help="TESTING cases (default 10)")
    parser.add_argument("-size", type=int, default=128)
    parser.add_argument("-pl", default="ISLESSmallPlanner", choices=sorted(PLANS))
    parser.add_argument("-device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("-np", type=int, default=2)
    args = parser.parse_args(argv)
    results = run(args.work, args.tr, args.n, args.t, args.size, args.pl, args.device, args.np)
    atomic_write_json(args.o, json.loads(json.dumps(results, default=str)))
    print(f"{'':52s}{'Dice':>7s}{'HD95 mm':>9s}{'|dV| ml':>9s}")
    for name, mean in results["rows"].items():
        print(f"{name:52s}{mean['dice']:7.3f}{mean['hd95_mm']:9.2f}{mean['abs_volume_diff_ml']:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
