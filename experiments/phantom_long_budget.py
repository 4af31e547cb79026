"""The long-budget phantom benchmark: the methods at 5x the CPU preset's training length, where the 10-epoch
preset leaves them within noise, against stock nnU-Net given the same optimizer steps.

    bash scripts/nnunet_venv.sh                                     # once: nnU-Net's own venv
    OMP_NUM_THREADS=1 python -m experiments.phantom_long_budget -work long_budget_work -o long_budget.json
    ... --nnunet_same_time                                          # then also row (b), see below

Data: 60 TRAINING cases (seed 0) and 20 TESTING cases (seed 1) at 128 x 128 with their DWI truth, 4 folds
by patient (`phantom_protocol.prepare_phantom`). Rows, all on the same folds:
- the threshold baseline (rCBF < 30 % inside Tmax > 6 s), which trains nothing;
- the one-stage U-Net and the full chain on ISLESLongPlans: the CPU preset (64 x 64 slices, narrow widths)
  trained 50 epochs x 10 iterations x batch 5 = 500 optimizer steps per fold, 5x the preset's 100;
- the full chain on ISLESFullResolutionPlans: the data's own 128 x 128 slices, same widths, 200 steps, which
  cost about the time of the 500 half-resolution ones (a 128 x 128 step costs ~2.5x a 64 x 64 one);
- (a) stock nnU-Net v2 2d, same steps: nnU-Net's plans edited to batch 5 (its patch is the whole 128 x 128
  slice, like the full-resolution preset's), its default trainer run for 500 steps
  (nnUNetTrainer_ISLESBudget), cross-validated with its default test-time mirroring and without it;
- (b) with --nnunet_same_time: stock nnU-Net with its own plan (batch 27 here), stopped on wall clock
  (nnUNetTrainer_ISLESWallClock) when its training loop has run for the time our half-resolution chain's
  folds took: the chain trains two folds at once on one core each, nnU-Net one fold at a time on both cores,
  so each nnU-Net fold gets half the chain's mean fold time and the 4-fold runs take the same wall clock.
Printed for CV (out-of-fold predictions) and TESTING (each row's 4-fold ensemble): lesion cases and
lesion-free cases apart with 95 % bootstrap intervals, and paired differences against the one-stage U-Net, the
threshold, nnU-Net (a) and, with --nnunet_same_time, nnU-Net (b). No post-processing anywhere.

Resumable: the same command in the same -work folder redoes nothing that finished (phantom, preprocessing,
trained folds, nnU-Net's planning, folds and predictions). One torch thread per fold, `-np` folds at a time.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from experiments.cross_validation import gather_cross_validation, train_folds
from experiments.nnunet_row import TRAINER as BUDGET_TRAINER
from experiments.nnunet_row import budget_schedule
from experiments.nnunet_runner import NnUNetVariant, NnUNetWork, nnunet_venv, plan, run_variant
from experiments.phantom_protocol import (
    ONE_STAGE_ROW,
    THRESHOLD_ROW,
    add_comparisons,
    converted_name,
    predict_testing_job,
    prepare_phantom,
    score,
    training_slices_per_fold,
)
from experiments.phantom_results import results_table
from isles_pipeline.evaluation.evaluate import nifti_files_by_case
from isles_pipeline.evaluation.threshold_baseline import threshold_predictions
from isles_pipeline.files import atomic_write_json, read_json
from isles_pipeline.parallel import map_cases
from isles_pipeline.paths import data_roots_under
from isles_pipeline.phantom.study import PHANTOM_DATASET_ID
from isles_pipeline.planners.plans import load_plans

TRAINING_CASES, TESTING_CASES, SIZE = 60, 20, 128
LONG_PLANNER, FULL_PLANNER = "ISLESLongPlanner", "ISLESFullResolutionPlanner"
LONG_PLANS, FULL_PLANS = "ISLESLongPlans", "ISLESFullResolutionPlans"
CHAIN = "ISLESChainTrainer"
# (row name, trainer, plans)
OUR_ROWS = ((ONE_STAGE_ROW, ONE_STAGE_ROW, LONG_PLANS), (CHAIN, CHAIN, LONG_PLANS),
            (f"{CHAIN}, full resolution", CHAIN, FULL_PLANS))
NNUNET_SAME_STEPS = "nnU-Net 2d (a) same steps, batch 5"
NNUNET_SAME_TIME = "nnU-Net 2d (b) same time, own plan"
NO_MIRRORING = ", no test-time mirroring"
WALL_CLOCK_TRAINER = "nnUNetTrainer_ISLESWallClock"
WALL_CLOCK_ITERATIONS = 2  # its own batch's steps take seconds on a CPU: short epochs, so the poly decay has steps


def _our_rows(bench, splits, references, device, num_processes) -> tuple[dict, dict, dict]:
    """Train (resumably), validate and predict TESTING for OUR_ROWS; CV rows, TESTING rows, seconds."""
    work, raw = bench.work, bench.raw_dataset()
    folds = list(range(len(splits)))
    seconds: dict = {}
    for plans in (LONG_PLANS, FULL_PLANS):
        trainers = [trainer for _, trainer, row_plans in OUR_ROWS if row_plans == plans]
        for trainer, by_fold in train_folds(PHANTOM_DATASET_ID, trainers, folds, plans, splits, device,
                                            num_processes).items():
            seconds[(trainer, plans)] = by_fold
    jobs = [(name, (raw / "imagesTs", work / "testing" / _slug(name), trainer, plans, folds, device))
            for name, trainer, plans in OUR_ROWS]
    testing_seconds = {}
    for name, result, error in map_cases(predict_testing_job, jobs, num_processes, desc="TESTING"):
        if error:
            raise RuntimeError(error)
        testing_seconds[name] = round(result, 1)
    cv_rows, testing_rows, row_seconds = {}, {}, {}
    for name, trainer, plans in OUR_ROWS:
        gather_cross_validation(PHANTOM_DATASET_ID, trainer, plans, splits, folds, work / "cv" / _slug(name))
        cv_rows[name] = score(references["cv"], work / "cv" / _slug(name))
        testing_rows[name] = score(references["testing"], work / "testing" / _slug(name))
        trained = sum(s for s in seconds[(trainer, plans)].values() if s is not None)
        row_seconds[name] = {"folds": seconds[(trainer, plans)], "testing_prediction": testing_seconds[name],
                             "total": round(trained + testing_seconds[name], 1)}
    return cv_rows, testing_rows, row_seconds


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def _fold_seconds_record(work: Path, row_seconds: dict) -> dict:
    """Our rows' fold seconds, kept across reruns (a rerun skips finished folds and reports them as None)."""
    record_file = work / "fold_seconds.json"
    record = read_json(record_file) if record_file.is_file() else {}
    for name, entry in row_seconds.items():
        for fold, seconds in entry["folds"].items():
            if seconds is not None:
                record.setdefault(name, {})[str(fold)] = seconds
    atomic_write_json(record_file, record)
    return record


def _nnunet_rows(nnunet: NnUNetWork, splits: list[dict], variant: NnUNetVariant, name: str,
                 references: dict) -> tuple[dict, dict, dict]:
    folders = run_variant(nnunet, splits, variant)
    cv = {name: score(references["cv"], folders["cv"]),
          name + NO_MIRRORING: score(references["cv"], folders["cv_no_mirroring"])}
    testing = {name: score(references["testing"], folders["testing"]),
               name + NO_MIRRORING: score(references["testing"], folders["testing_no_mirroring"])}
    seconds = read_json(nnunet.work / variant.name / "row.json")["seconds"]
    return cv, testing, {**seconds, "total": round(sum(seconds.values()), 1)}


def run(work: Path, device: str = "cpu", num_processes: int = 2, same_time: bool = False,
        training_cases: int = TRAINING_CASES, testing_cases: int = TESTING_CASES) -> dict:
    start = time.perf_counter()
    bench = prepare_phantom(work, training_cases, testing_cases, SIZE, LONG_PLANNER, num_processes, [FULL_PLANNER])
    results: dict = {"cv": {"rows": {}}, "testing": {"rows": {}}, "seconds": {}}
    with data_roots_under(bench.work):
        splits, raw = bench.splits(), bench.raw_dataset()
        references = {"cv": {case: raw / "labelsTr" / f"{case}.nii.gz" for fold in splits for case in fold["val"]},
                      "testing": nifti_files_by_case(bench.testing_references)}
        threshold_predictions(bench.training, bench.work / "threshold" / "cv", converted_name("Tr"))
        threshold_predictions(bench.testing, bench.work / "threshold" / "testing", converted_name("Ts"))
        results["cv"]["rows"][THRESHOLD_ROW] = score(references["cv"], bench.work / "threshold" / "cv")
        results["testing"]["rows"][THRESHOLD_ROW] = score(references["testing"], bench.work / "threshold" / "testing")
        cv, testing, seconds = _our_rows(bench, splits, references, device, num_processes)
        results["cv"]["rows"].update(cv)
        results["testing"]["rows"].update(testing)
        results["seconds"].update(seconds)
        fold_seconds = _fold_seconds_record(bench.work, seconds)
        steps_budget = training_slices_per_fold(load_plans(PHANTOM_DATASET_ID, LONG_PLANS))
        steps_per_fold = {plans: training_slices_per_fold(load_plans(PHANTOM_DATASET_ID, plans)) // 5
                          for plans in (LONG_PLANS, FULL_PLANS)}
        nnunet = NnUNetWork(raw.resolve(), bench.work / "nnunet", nnunet_venv(), device, num_processes)
        plan(nnunet)
        schedule = budget_schedule(steps_budget, 5)
        variants = [(NNUNET_SAME_STEPS, NnUNetVariant("same_steps", BUDGET_TRAINER, schedule.environment(),
                                                      {"batch_size": 5}, mirroring_off=True))]
        if same_time:
            chain_fold = statistics.mean(fold_seconds[CHAIN].values())
            environment = {"ISLES_NNUNET_SECONDS": str(round(chain_fold / 2)),
                           "ISLES_NNUNET_ITERATIONS": str(WALL_CLOCK_ITERATIONS), "ISLES_NNUNET_VAL_ITERATIONS": "1"}
            variants.append((NNUNET_SAME_TIME, NnUNetVariant("same_time", WALL_CLOCK_TRAINER, environment,
                                                             mirroring_off=True)))
        for name, variant in variants:
            cv, testing, seconds = _nnunet_rows(nnunet, splits, variant, name, references)
            results["cv"]["rows"].update(cv)
            results["testing"]["rows"].update(testing)
            results["seconds"][name] = seconds
    comparisons = (ONE_STAGE_ROW, THRESHOLD_ROW, NNUNET_SAME_STEPS) + ((NNUNET_SAME_TIME,) if same_time else ())
    for part in ("cv", "testing"):
        add_comparisons(results[part], comparisons)
    results["settings"] = {**read_json(bench.work / "phantom_settings.json"), "plans": [LONG_PLANS, FULL_PLANS],
                           "steps_per_fold": steps_per_fold,
                           "nnunet_same_steps_schedule": dataclasses.asdict(schedule), "device": device,
                           "num_processes": num_processes, "postprocessing": "none"}
    results["wall_clock_seconds"] = round(time.perf_counter() - start, 1)  # this run (a resumed one: its part)
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-work", type=Path, default=Path("long_budget_work"))
    parser.add_argument("-o", type=Path, default=Path("long_budget.json"))
    parser.add_argument("-device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("-np", type=int, default=2, help="parallel processes: fold trainings, predictions")
    parser.add_argument("--nnunet_same_time", action="store_true",
                        help="also row (b): nnU-Net's own plan for the chain's wall clock")
    args = parser.parse_args(argv)
    try:
        results = run(args.work, args.device, args.np, args.nnunet_same_time)
    except (ValueError, RuntimeError) as error:  # NnUNetRowError is a RuntimeError: one line each
        print(f"error: {error}", file=sys.stderr)
        return 1
    atomic_write_json(args.o, results)
    print("\n".join(results_table(results)))
    print(f"This run: {results['wall_clock_seconds']:.0f} s, whole command (a resumed run counts only its own part)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
