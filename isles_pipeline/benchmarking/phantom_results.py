"""Scores on a phantom testing set: the threshold baseline and trained Table-1 rows, fold 0, small preset.

    python -m isles_pipeline.benchmarking.phantom_results                       # every Table-1 row
    python -m isles_pipeline.benchmarking.phantom_results -tr ISLESChainTrainer_UNetCE ISLESChainTrainer

One phantom (TRAINING with DWI, TESTING), converted, planned and preprocessed once with `-pl`; then for each
trainer: fold 0 trained with the plans' schedule, TESTING predicted with that fold alone, evaluated against
the phantom's DWI lesions. The threshold baseline (rCBF < 30 % in Tmax > 6 s) is scored on the same cases.
Prints, with 95 % bootstrap intervals over cases: means of Dice, HD95 and |dV| over the cases with a reference
lesion; the false-positive volume on the lesion-free cases; and each row's paired difference against the
one-stage U-Net (the first Table-1 row) and against the threshold baseline. Writes everything, per-case
values included, to `-o`.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from isles_pipeline.dataset_conversion.convert import convert_isles2018
from isles_pipeline.dataset_conversion.phantom import generate_phantom
from isles_pipeline.evaluation.evaluate import evaluate_folders
from isles_pipeline.evaluation.summary import compare_methods
from isles_pipeline.evaluation.tables import comparison_table, summary_table
from isles_pipeline.evaluation.threshold_baseline import threshold_predictions
from isles_pipeline.files import atomic_write_json
from isles_pipeline.inference.predict import predict_folder
from isles_pipeline.paths import data_roots_under
from isles_pipeline.phantom_study import PHANTOM_DATASET_ID, phantom_references
from isles_pipeline.planners.api import plan_and_preprocess
from isles_pipeline.trainers.run import run_training
from isles_pipeline.trainers.variants import TABLE1

THRESHOLD_ROW = "threshold baseline (rCBF < 30 % in Tmax > 6 s)"
ONE_STAGE_ROW = TABLE1[0].__name__
PLANS = {"ISLESSmallPlanner": "ISLESSmallPlans", "ISLESPlanner": "ISLESPlans"}


def _row(summary: dict) -> dict:
    return {"num_cases": summary["num_cases"], "lesion_cases": summary["lesion_cases"],
            "lesion_free_cases": summary["lesion_free_cases"],
            "per_case": {row["case"]: row["metrics"] for row in summary["metric_per_case"]}}


def add_comparisons(results: dict) -> dict:
    """Paired differences of every row against the one-stage U-Net and the threshold baseline (those present)."""
    rows = results["rows"]
    results["comparisons"] = {
        against: {name: compare_methods(row["per_case"], rows[against]["per_case"])
                  for name, row in rows.items() if name != against}
        for against in (ONE_STAGE_ROW, THRESHOLD_ROW) if against in rows}
    return results


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
        convert_isles2018(training, None, PHANTOM_DATASET_ID, "ISLES2018", num_processes)
        plan_and_preprocess(PHANTOM_DATASET_ID, planner, num_processes, clean=True)
        references = work / "references"
        phantom_references(testing, references)
        threshold_predictions(testing, work / "threshold_baseline")
        results["rows"][THRESHOLD_ROW] = _row(evaluate_folders(references, work / "threshold_baseline"))
        for trainer in trainers:
            start = time.perf_counter()
            run_training(PHANTOM_DATASET_ID, 0, trainer, plans, "2d", device)
            predictions = work / "predictions" / trainer
            report = predict_folder(testing, predictions, PHANTOM_DATASET_ID, [0], trainer, plans, device=device)
            if report.failures:
                raise RuntimeError(f"{trainer}: prediction failed: {report.failures}")
            results["rows"][trainer] = dict(_row(evaluate_folders(references, predictions)),
                                            seconds=round(time.perf_counter() - start, 1))
    return add_comparisons(results)


def results_table(results: dict) -> list[str]:
    """The printed table: per-row summaries, then the paired differences against each reference row."""
    lines = summary_table(results["rows"])
    for against, comparisons in results["comparisons"].items():
        lines += [""] + comparison_table(comparisons, against)
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-tr", nargs="+", default=[trainer.__name__ for trainer in TABLE1],
                        help="trainers, one per row (default: every Table-1 row, one-stage U-Net first)")
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
    atomic_write_json(args.o, results)
    print("\n".join(results_table(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
