"""The phantom benchmark: 4-fold cross-validation by patient on a TRAINING phantom and a TESTING phantom, every
Table-1 row and the threshold baseline (protocol: `phantom_protocol`).

CPU preset (the default; documentation/results/phantom-cross-validation.md):

    OMP_NUM_THREADS=1 python -m experiments.phantom_results -np 2 -o phantom_results.json

    94 TRAINING cases (seed 0) and 20 TESTING cases (seed 1) at 128 x 128, both with DWI truth;
    ISLESSmallPlanner (64 x 64 slices, narrow widths, 10 epochs x 10 iterations x batch 5 = 500 slices per
    fold); 4 folds of each of the 8 Table-1 rows, trained 2 at a time on one torch thread each.

    Time: one row-fold (training + validation), measured by `-n 24 -t 4 -folds 0 -np 2` on the 2-core dev
    machine shared with other jobs (load 5 to 9), 2026-11-29: 85 s for the one-stage U-Net to 239 s for _SN,
    1157 s for one fold of all 8 rows. So the preset's 32 row-folds, two at a time, take ~40 min, plus ~10 min
    of phantom, conversion and preprocessing and ~5 min of validation, TESTING prediction and scoring: ~55 min
    at that load, less on idle cores (estimate, not measured).

Subsets: `-tr ISLESChainTrainer_UNetCE ISLESChainTrainer` (rows), `-folds 0 1` (the CV then scores only the
cases those folds validate, and TESTING is predicted by the ensemble of those folds). `--nnunet` adds the
stock nnU-Net v2 2d row on the same splits with a matched budget of training slices
(`experiments.nnunet_row`, which needs its own nnU-Net environment).

Resumable: run the same command again with the same `-work` folder and nothing finished is redone. The phantom,
conversion and preprocessing are skipped when present (another -n, -t, -size or -pl in that folder is
refused); a (row, fold) is finished when `fold_N/checkpoint_final.pth` exists and `fold_N/validation/` holds a
prediction of every case the fold validates; such folds are not trained again, the others resume from their
latest checkpoint (isles_train's --c). TESTING predictions and all scores are remade each run.

Post-processing: none, for every row (nnU-Net's stock fold validation has none; the ensembles run with it
disabled). CV predictions are each fold's final-validation predictions (`fold_N/validation/<case>.nii.gz`,
original grid), gathered per row in `<work>/cv/<row>/` and scored against the raw dataset's labelsTr;
TESTING predictions are in `<work>/testing/<row>/`, scored against the phantom's DWI lesions
(`<work>/references_testing/`). Prints, for CV then TESTING: lesion cases (Dice, HD95, |dV|) and lesion-free
cases (false-positive volume) apart, with 95 % bootstrap intervals over cases, and every row's paired
difference against the one-stage U-Net (first Table-1 row) and the threshold. `-o` holds the settings, every
per-case value, which fold predicted each CV case, and per-row seconds (None for a fold skipped as finished).

GPU recipe (the paper's configuration; not run on this CPU machine): ISLESPlanner (256 x 256 slices, full
widths, the paper's schedule: 400 epochs, lr x 0.2 after 180 and 300; an epoch one pass over the fold's
training slices at batch 5) on a 256 x 256 phantom, one fold at a time on one GPU:

    python -m experiments.phantom_results -pl ISLESPlanner -size 256 -n 94 -t 20 \\
        -device cuda -np 1 -work phantom_results_gpu -o phantom_results_gpu.json [--nnunet]

(-np 2 puts two folds on the one GPU at once, which helps only when one fold leaves it idle.) Its size, an
estimate: the 94-case phantom has ~1,050 slices (268 in 24 cases), so a fold trains ~158 iterations x 400
epochs x 5 = ~316,000 slices; at an H100's eager rate for the full chain
(about 54 slices/s) ~1.6 h per fold,
~50 h for the 32 row-folds (the one-stage rows run faster). --nnunet gets the same slice budget.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from experiments.phantom_protocol import (
    NNUNET_ROW,
    ONE_STAGE_ROW,
    THRESHOLD_ROW,
    add_comparisons,
    prepare_phantom,
    run_protocol,
)
from isles_pipeline.evaluation.tables import comparison_table, summary_table
from isles_pipeline.files import atomic_write_json
from isles_pipeline.trainers.variants import TABLE1

__all__ = ["NNUNET_ROW", "ONE_STAGE_ROW", "THRESHOLD_ROW", "add_comparisons", "run", "results_table", "main"]
PARTS = (("cv", "Cross-validation (4 folds by patient, out-of-fold predictions) on the TRAINING phantom"),
         ("testing", "TESTING phantom, each row's fold ensemble"))


def run(work: Path, trainers: Sequence[str], training_cases: int, testing_cases: int, size: int, planner: str,
        device: str, num_processes: int, folds: Optional[Sequence[int]] = None, nnunet: bool = False) -> dict:
    bench = prepare_phantom(work, training_cases, testing_cases, size, planner, num_processes)
    return run_protocol(bench, trainers, folds, device, num_processes, nnunet)


def part_table(part: dict) -> list[str]:
    """Per-row summaries of one part (CV or TESTING), then the paired differences against each reference row."""
    lines = summary_table(part["rows"])
    for against, comparisons in part["comparisons"].items():
        lines += [""] + comparison_table(comparisons, against)
    return lines


def results_table(results: dict) -> list[str]:
    """The printed tables: CV, then TESTING (each part present), then the seconds per row."""
    lines: list[str] = []
    for key, title in PARTS:
        if key in results:
            lines += ([""] if lines else []) + [f"== {title} ==", ""] + part_table(results[key])
    if results.get("seconds"):
        lines += ["", "Seconds per row (fold trainings with their validation, summed, plus TESTING prediction; "
                      "skipped folds count 0):"]
        lines += [f"  {row}: {entry['total']}" for row, entry in results["seconds"].items()]
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-tr", nargs="+", default=[trainer.__name__ for trainer in TABLE1],
                        help="trainers, one per row (default: every Table-1 row, one-stage U-Net first)")
    parser.add_argument("-folds", nargs="+", type=int, default=None, help="folds to run (default: all 4)")
    parser.add_argument("-o", type=Path, default=Path("phantom_results.json"))
    parser.add_argument("-work", type=Path, default=Path("phantom_results_work"))
    parser.add_argument("-n", type=int, default=94, help="TRAINING cases (default 94)")
    parser.add_argument("-t", type=int, default=20, help="TESTING cases (default 20)")
    parser.add_argument("-size", type=int, default=128, help="phantom in-plane size (default 128)")
    parser.add_argument("-pl", default="ISLESSmallPlanner", choices=["ISLESSmallPlanner", "ISLESPlanner"])
    parser.add_argument("-device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("-np", type=int, default=2, help="parallel processes: fold trainings, predictions")
    parser.add_argument("--nnunet", action="store_true", help="add the stock nnU-Net v2 2d row (budget-matched)")
    args = parser.parse_args(argv)
    try:
        results = run(args.work, args.tr, args.n, args.t, args.size, args.pl, args.device, args.np, args.folds,
                      args.nnunet)
    except (ValueError, RuntimeError) as error:  # bad settings; folds or cases that failed (one line each)
        print(f"error: {error}", file=sys.stderr)
        return 1
    atomic_write_json(args.o, results)
    print("\n".join(results_table(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
