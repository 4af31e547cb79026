"""The stock nnU-Net v2 row of the phantom benchmark, budget-matched: nnunetv2's `2d` configuration with its own
plans, trained on our folds for as many 2D training slices as our rows see per fold, in its own virtualenv,
through nnU-Net's own commands (`experiments.nnunet_runner` runs them; the package never imports nnunetv2).

    bash scripts/nnunet_venv.sh                       # once: the nnU-Net venv (see that script for why)
    python -m experiments.nnunet_row RAW_DATASET_FOLDER -o WORK -budget 500 [-labels DIR]

The trainer (scripts/nnunet_trainers/nnUNetTrainer_ISLESBudget.py) is nnU-Net's default trainer with a
training length from `budget_schedule`: epochs x iterations x the plans' 2d batch size ~ the budget. Outputs:
WORK/budget/cv (nnU-Net's fold validation predictions), WORK/budget/testing (imagesTs, 4-fold ensemble), the
step times in WORK/budget/row.json; a rerun in the same WORK skips what is done (see nnunet_runner).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from experiments.nnunet_runner import (
    CONFIGURATION,
    NUM_FOLDS,
    NnUNetRowError,
    NnUNetVariant,
    NnUNetWork,
    dataset_id,
    install_nnunet,
    nnunet_venv,
    plan,
    run_variant,
)

TRAINER = "nnUNetTrainer_ISLESBudget"
VAL_ITERATIONS = 2  # nnU-Net's per-epoch validation only feeds its pseudo-Dice log; 50 (stock) would cost more
MIN_EPOCHS = 10  # poly learning-rate decay is stepped per epoch: a run needs several epochs to decay
MAX_ITERATIONS = 250  # nnU-Net's stock iterations per epoch


@dataclass(frozen=True)
class BudgetSchedule:
    epochs: int
    iterations: int
    batch_size: int
    val_iterations: int = VAL_ITERATIONS

    @property
    def slices(self) -> int:
        return self.epochs * self.iterations * self.batch_size

    def environment(self) -> dict[str, str]:
        """What nnUNetTrainer_ISLESBudget reads (nnU-Net's CLI builds the trainer, so no arguments reach it)."""
        return {"ISLES_NNUNET_EPOCHS": str(self.epochs), "ISLES_NNUNET_ITERATIONS": str(self.iterations),
                "ISLES_NNUNET_VAL_ITERATIONS": str(self.val_iterations), "ISLES_NNUNET_SLICES": str(self.slices)}


def budget_schedule(slices_budget: int, batch_size: int, min_epochs: int = MIN_EPOCHS,
                    max_iterations: int = MAX_ITERATIONS) -> BudgetSchedule:
    """Epochs and iterations per epoch whose product with nnU-Net's batch size is nearest `slices_budget`.

    nnU-Net's batch size is its planner's choice (kept: the row is stock), so the budget is met in whole
    iterations: at least `min_epochs` epochs (fewer only when there are fewer iterations than that), at most
    nnU-Net's 250 iterations per epoch, the iteration count rounded to the nearest whole number, and never
    below one iteration per epoch. The schedule's `slices` says what was actually trained."""
    if slices_budget < 1 or batch_size < 1:
        raise ValueError(f"budget {slices_budget} slices and batch size {batch_size} must both be positive")
    iterations_total = slices_budget / batch_size
    epochs = max(math.ceil(iterations_total / max_iterations), min(min_epochs, max(1, round(iterations_total))))
    iterations = max(1, round(iterations_total / epochs))
    return BudgetSchedule(epochs, iterations, batch_size)


def run_nnunet_row(raw_dataset_folder: Path, splits: list[dict], work: Path, slices_budget: int,
                   device: str = "cpu", num_processes: int = 2, venv: Optional[Path] = None) -> dict[str, Path]:
    """Plan (once), train and predict the budget-matched row; {"cv": folder with one <case>.nii.gz per training
    case, "testing": folder with one <case>.nii.gz per imagesTs case}."""
    nnunet = NnUNetWork(Path(raw_dataset_folder).resolve(), Path(work).resolve(), nnunet_venv(venv), device,
                        num_processes)
    dataset_id(nnunet.raw_dataset)
    plans = plan(nnunet)
    schedule = budget_schedule(slices_budget, int(plans["configurations"][CONFIGURATION]["batch_size"]))
    return run_variant(nnunet, splits, NnUNetVariant("budget", TRAINER, schedule.environment()))


def _default_splits(raw_dataset_folder: Path) -> list[dict]:
    """Our own folds by patient, from dataset.json (as `isles_plan_and_preprocess` would make them)."""
    from isles_pipeline.raw_format import find_raw_cases
    from isles_pipeline.splits import create_splits

    return create_splits({case.name: case.patient for case in find_raw_cases(raw_dataset_folder, "Tr")},
                         NUM_FOLDS)


def _print_scores(name: str, labels: Path, predictions: Path) -> None:
    from isles_pipeline.evaluation.evaluate import evaluate_folders
    from isles_pipeline.evaluation.tables import summary_table

    summary = evaluate_folders(labels, predictions, predictions.with_name(predictions.name + "_summary.json"))
    print(f"{name}: {predictions}")
    print("\n".join(summary_table({"nnU-Net 2d (stock, budget)": summary})))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.nnunet_row",
        description="Stock nnU-Net v2 (2d) on our folds and training budget, in its own venv "
                    "(scripts/nnunet_venv.sh); predictions in -o/cv and -o/testing.")
    parser.add_argument("raw_dataset_folder", type=Path, help="converted dataset, e.g. $ISLES_raw/Dataset018_ISLES2018")
    parser.add_argument("-o", dest="work", type=Path, required=True,
                        help="work folder (nnUNet_raw/_preprocessed/_results, logs, cv, testing)")
    parser.add_argument("-budget", type=int, required=True, help="2D training slices per fold")
    parser.add_argument("-splits", type=Path, help="our splits_final.json (default: made from dataset.json's "
                                                   "patients with the project's seed)")
    parser.add_argument("-device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("-np", dest="num_processes", type=int, default=2, help="worker processes")
    parser.add_argument("-labels", type=Path, help="reference masks of the imagesTs cases: print isles_evaluate's "
                                                   "summary of the testing predictions (and of cv vs labelsTr)")
    parser.add_argument("--install_nnunet", action="store_true", help="run scripts/nnunet_venv.sh first")
    args = parser.parse_args(argv)
    try:
        if args.install_nnunet:
            install_nnunet()
        if args.splits:
            from isles_pipeline.splits import load_splits
            splits = load_splits(args.splits)
        else:
            splits = _default_splits(args.raw_dataset_folder)
        start = time.perf_counter()
        folders = run_nnunet_row(args.raw_dataset_folder, splits, args.work, args.budget, args.device,
                                 args.num_processes)
        print(f"nnU-Net row done in {time.perf_counter() - start:.0f} s: cv {folders['cv']}, "
              f"testing {folders['testing']} (times in {Path(args.work) / 'row.json'})")
        if args.labels:
            _print_scores("cross-validation", args.raw_dataset_folder / "labelsTr", folders["cv"])
            _print_scores("testing", args.labels, folders["testing"])
    except (NnUNetRowError, ValueError, OSError) as error:
        print(f"nnunet_row: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
