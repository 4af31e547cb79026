"""The stock nnU-Net v2 row of the phantom benchmark: nnunetv2's `2d` configuration trained on our folds with
our training budget, in its own virtualenv, through nnU-Net's own commands.

    bash scripts/nnunet_venv.sh                       # once: the nnU-Net venv (see that script for why)
    python -m experiments.nnunet_row RAW_DATASET_FOLDER -o WORK -budget 500 [-labels DIR]

Steps (each an nnU-Net command in a subprocess, its output kept in WORK/logs/<step>.log):
1. WORK/nnUNet_raw/DatasetXXX_Name links to our converted dataset (already nnU-Net's raw format; its
   dataset.json is used as it is: nnU-Net reads channel_names, labels, numTraining and file_ending and
   ignores our extra keys).
2. nnUNetv2_plan_and_preprocess -c 2d, with nnU-Net's dataset integrity check.
3. Our splits written as nnU-Net's splits_final.json (train/val only), so both benchmarks use the same folds.
4. nnUNetv2_train ID 2d FOLD -tr nnUNetTrainer_ISLESBudget for folds 0-3; the trainer
   (scripts/nnunet_trainers/, found by nnU-Net through nnUNet_extTrainer) is nnU-Net's default trainer with a
   training length from `budget_schedule`: epochs x iterations x the plans' 2d batch size ~ our rows' 2D
   training slices per fold. A fold whose checkpoint_final.pth and validation exist from the same splits and
   schedule is not trained again.
5. Fold validation predictions (nnU-Net's own, from the final checkpoints) gathered into WORK/cv; imagesTs
   predicted with the 4-fold ensemble (nnUNetv2_predict -f 0 1 2 3) into WORK/testing.
A rerun in the same WORK resumes: planning and the TESTING prediction, recorded in WORK/row.json only once they
succeeded, are not run again for the same dataset (the prediction only while no fold was retrained), so
`phantom_results --nnunet` can score a row this command already ran.
The package never imports nnunetv2: it is not a dependency of ours.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

from isles_pipeline.files import atomic_write_json, read_json
from isles_pipeline.splits import nnunet_splits

REPOSITORY = Path(__file__).resolve().parents[1]
VENV_SCRIPT = REPOSITORY / "scripts" / "nnunet_venv.sh"
TRAINER_FOLDER = REPOSITORY / "scripts" / "nnunet_trainers"
TRAINER = "nnUNetTrainer_ISLESBudget"
CONFIGURATION = "2d"
PLANS = "nnUNetPlans"
NUM_FOLDS = 4
DEFAULT_VENV = Path("/tmp/nnunetv2-2.8.1-isles")
VAL_ITERATIONS = 2  # nnU-Net's per-epoch validation only feeds its pseudo-Dice log; 50 (stock) would cost more
MIN_EPOCHS = 10  # poly learning-rate decay is stepped per epoch: a run needs several epochs to decay
MAX_ITERATIONS = 250  # nnU-Net's stock iterations per epoch
_DATASET_NAME = re.compile(r"Dataset(\d{3})_\S+")


class NnUNetRowError(RuntimeError):
    """One line: which step failed and where its log is."""


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


def dataset_id(raw_dataset_folder: Path) -> int:
    match = _DATASET_NAME.fullmatch(Path(raw_dataset_folder).name)
    if not match:
        raise NnUNetRowError(f"{raw_dataset_folder}: nnU-Net needs a folder named DatasetXXX_Name")
    return int(match.group(1))


def training_cases(raw_dataset_folder: Path) -> list[str]:
    """Training identifiers as nnU-Net sees them: labelsTr/<case><file_ending>."""
    dataset = read_json(Path(raw_dataset_folder) / "dataset.json")
    ending = dataset.get("file_ending", ".nii.gz")
    return sorted(p.name[:-len(ending)] for p in (Path(raw_dataset_folder) / "labelsTr").glob(f"*{ending}"))


def testing_cases(raw_dataset_folder: Path) -> list[str]:
    dataset = read_json(Path(raw_dataset_folder) / "dataset.json")
    suffix = "_0000" + dataset.get("file_ending", ".nii.gz")
    return sorted(p.name[:-len(suffix)] for p in (Path(raw_dataset_folder) / "imagesTs").glob(f"*{suffix}"))


def nnunet_venv(venv: Optional[Path] = None) -> Path:
    """The venv made by scripts/nnunet_venv.sh ($NNUNET_VENV or its default); one line when it is missing."""
    venv = Path(venv or os.environ.get("NNUNET_VENV") or DEFAULT_VENV)
    if not all((venv / "bin" / tool).is_file() for tool in ("nnUNetv2_plan_and_preprocess", "nnUNetv2_train",
                                                            "nnUNetv2_predict")):
        raise NnUNetRowError(f"no nnU-Net v2 virtualenv at {venv}: create it with `bash {VENV_SCRIPT}` "
                             "(NNUNET_VENV chooses where)")
    return venv


def install_nnunet(venv: Optional[Path] = None) -> Path:
    """Run scripts/nnunet_venv.sh (a no-op when the venv is ready)."""
    env = dict(os.environ)
    if venv is not None:
        env["NNUNET_VENV"] = str(venv)
    result = subprocess.run(["bash", str(VENV_SCRIPT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    if result.returncode != 0:
        raise NnUNetRowError(result.stderr.strip().splitlines()[-1] if result.stderr.strip()
                             else f"{VENV_SCRIPT} failed (exit {result.returncode})")
    return Path(result.stdout.strip().splitlines()[-1])


def _device_arguments(device: str) -> tuple[list[str], dict[str, str]]:
    """nnU-Net takes -device cpu|cuda and a GPU index only through CUDA_VISIBLE_DEVICES."""
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda"):
        raise NnUNetRowError(f"device {device!r}: nnU-Net runs on cpu or cuda[:N]")
    return ["-device", kind], ({"CUDA_VISIBLE_DEVICES": index} if index else {})


def _run_step(step: str, command: list[str], log_file: Path, env: dict[str, str]) -> float:
    """Run one nnU-Net command with its output in `log_file`; its wall time in seconds."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log_file, "w") as log:  # a live log of a child process, not a result file: written as it runs
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        code = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise NnUNetRowError(f"nnU-Net {step} failed (exit {code}); log: {log_file}")
    return time.perf_counter() - start


def _link_raw(raw_dataset_folder: Path, nnunet_raw: Path) -> None:
    link = nnunet_raw / raw_dataset_folder.name
    nnunet_raw.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and link.resolve() == raw_dataset_folder.resolve():
        return
    if link.is_symlink():
        link.unlink()
    elif link.exists():
        raise NnUNetRowError(f"{link} exists and is not a link to {raw_dataset_folder}")
    link.symlink_to(raw_dataset_folder.resolve(), target_is_directory=True)


def _gather(files: list[Path], destination: Path) -> Path:
    """Copy into a fresh `destination` (built beside it, then renamed: never half a folder)."""
    partial = destination.with_name(destination.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for file in files:
        shutil.copy2(file, partial / file.name)
    shutil.rmtree(destination, ignore_errors=True)
    partial.rename(destination)
    return destination


def run_nnunet_row(raw_dataset_folder: Path, splits: list[dict], work: Path, slices_budget: int,
                   device: str = "cpu", num_processes: int = 2, venv: Optional[Path] = None) -> dict[str, Path]:
    """Train, validate and predict the stock nnU-Net row (see the module docstring); returns {"cv": folder with
    one <case>.nii.gz per training case (nnU-Net's fold validation predictions), "testing": folder with one
    <case>.nii.gz per imagesTs case (4-fold ensemble)}. Timings and the schedule go to WORK/row.json."""
    raw_dataset_folder, work = Path(raw_dataset_folder).resolve(), Path(work).resolve()
    venv = nnunet_venv(venv)
    identifier = dataset_id(raw_dataset_folder)
    cases = training_cases(raw_dataset_folder)
    try:
        exported = nnunet_splits(splits, cases)
    except ValueError as error:
        raise NnUNetRowError(f"{raw_dataset_folder}: {error}") from None
    if len(exported) != NUM_FOLDS:
        raise NnUNetRowError(f"the nnU-Net row trains {NUM_FOLDS} folds; the splits have {len(exported)}")
    device_args, device_env = _device_arguments(device)
    roots = {"nnUNet_raw": work / "nnUNet_raw", "nnUNet_preprocessed": work / "nnUNet_preprocessed",
             "nnUNet_results": work / "nnUNet_results"}
    env = {**os.environ, **{k: str(v) for k, v in roots.items()}, **device_env,
           "nnUNet_extTrainer": str(TRAINER_FOLDER), "nnUNet_n_proc_DA": str(num_processes),
           "nnUNet_def_n_proc": str(num_processes)}
    logs = work / "logs"
    _link_raw(raw_dataset_folder, roots["nnUNet_raw"])
    bin_folder = venv / "bin"
    preprocessed = roots["nnUNet_preprocessed"] / raw_dataset_folder.name
    record_file = work / "row.json"
    previous = read_json(record_file) if record_file.is_file() else {}
    previous_seconds = previous.get("seconds", {}) if previous.get("dataset") == str(raw_dataset_folder) else {}
    # Each step's seconds are recorded only after it succeeded, so a recorded step of this dataset is done.
    if "plan_and_preprocess" in previous_seconds and (preprocessed / f"{PLANS}.json").is_file():
        plan_seconds = previous_seconds["plan_and_preprocess"]
    else:
        plan_seconds = _run_step(
            "plan_and_preprocess", [str(bin_folder / "nnUNetv2_plan_and_preprocess"), "-d", str(identifier),
                                    "-c", CONFIGURATION, "-np", str(num_processes), "-npfp", str(num_processes),
                                    "--verify_dataset_integrity"],
            logs / "plan_and_preprocess.log", env)
    atomic_write_json(preprocessed / "splits_final.json", exported)
    plans = read_json(preprocessed / f"{PLANS}.json")
    schedule = budget_schedule(slices_budget, int(plans["configurations"][CONFIGURATION]["batch_size"]))
    env.update(schedule.environment())
    results = roots["nnUNet_results"] / raw_dataset_folder.name / f"{TRAINER}__{PLANS}__{CONFIGURATION}"
    same_setup = previous.get("splits") == exported and previous.get("schedule") == asdict(schedule)
    record = {"dataset": str(raw_dataset_folder), "splits": exported, "schedule": asdict(schedule),
              "slices_budget": slices_budget, "slices_trained_per_fold": schedule.slices, "device": device,
              "seconds": dict(previous_seconds) if same_setup else {}}
    record["seconds"]["plan_and_preprocess"] = plan_seconds
    atomic_write_json(record_file, record)
    retrained = False
    validation_files: list[Path] = []
    for fold in range(NUM_FOLDS):
        fold_folder = results / f"fold_{fold}"
        done = same_setup and (fold_folder / "checkpoint_final.pth").is_file() and all(
            (fold_folder / "validation" / f"{case}.nii.gz").is_file() for case in exported[fold]["val"])
        if not done:
            retrained = True
            record["seconds"][f"train_fold_{fold}"] = _run_step(
                f"train fold {fold}", [str(bin_folder / "nnUNetv2_train"), str(identifier), CONFIGURATION,
                                       str(fold), "-tr", TRAINER, *device_args],
                logs / f"train_fold_{fold}.log", env)
            atomic_write_json(record_file, record)
        for case in exported[fold]["val"]:
            file = fold_folder / "validation" / f"{case}.nii.gz"
            if not file.is_file():
                raise NnUNetRowError(f"nnU-Net train fold {fold} wrote no validation prediction {file}; log: "
                                     f"{logs / f'train_fold_{fold}.log'}")
            validation_files.append(file)
    cv = _gather(validation_files, work / "cv")
    expected = testing_cases(raw_dataset_folder)
    if (same_setup and not retrained and "predict_testing" in previous_seconds
            and all((work / "testing" / f"{case}.nii.gz").is_file() for case in expected)):
        return {"cv": cv, "testing": work / "testing"}  # the same folds already predicted every TESTING case
    testing_raw = work / "testing_raw"
    shutil.rmtree(testing_raw, ignore_errors=True)
    record["seconds"]["predict_testing"] = _run_step(
        "predict", [str(bin_folder / "nnUNetv2_predict"), "-i", str(raw_dataset_folder / "imagesTs"),
                    "-o", str(testing_raw), "-d", str(identifier), "-c", CONFIGURATION, "-tr", TRAINER,
                    "-f", *map(str, range(NUM_FOLDS)), "-npp", str(num_processes), "-nps", str(num_processes),
                    "--disable_progress_bar", *device_args],
        logs / "predict_testing.log", env)
    atomic_write_json(record_file, record)
    missing = [case for case in expected if not (testing_raw / f"{case}.nii.gz").is_file()]
    if missing:
        raise NnUNetRowError(f"nnU-Net predict wrote no prediction for {missing[:3]} ({len(missing)} missing); "
                             f"log: {logs / 'predict_testing.log'}")
    testing = _gather(sorted(testing_raw.glob("*.nii.gz")), work / "testing")
    return {"cv": cv, "testing": testing}


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
