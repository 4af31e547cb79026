"""Cross-validation of trainers on a preprocessed dataset: every (trainer, fold) trained in parallel processes,
finished folds skipped, and each fold's final-validation predictions gathered into one folder per trainer.

Why the fold's own validation predictions: they are what nnU-Net calls its cross-validation predictions
(`fold_N/validation/<case>.nii.gz`, on the original grid, no post-processing), made by the model that did not
train on the case, so gathering them gives exactly one out-of-fold prediction per training case.

Resuming: a (trainer, fold) is finished when its `checkpoint_final.pth` exists and its `validation/` folder holds
`<case>.nii.gz` for every validation case of the fold; it is then not trained again. Any other fold is trained
with `continue_training=True` (isles_train's `--c`): an interrupted fold resumes from its latest checkpoint, a
trained fold with an incomplete validation only redoes the validation.
"""
from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence

import torch

from isles_pipeline.files import atomic_path
from isles_pipeline.parallel import map_cases
from isles_pipeline.paths import model_folder
from isles_pipeline.trainers import checkpoint as ckpt
from isles_pipeline.trainers.run import run_training

CONFIGURATION = "2d"


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread for a job sharing the cores with others (two OpenMP pools on two cores spin-wait on
    each other); the caller's setting is restored."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def fold_folder(dataset_id: int, trainer: str, plans: str, fold: int) -> Path:
    return model_folder(dataset_id, trainer, plans, CONFIGURATION, must_exist=False) / f"fold_{fold}"


def fold_is_finished(folder: Path, validation_cases: Sequence[str]) -> bool:
    """checkpoint_final.pth and a validation prediction of every validation case (see the module docstring)."""
    return (folder / ckpt.FINAL).is_file() and all(
        (folder / "validation" / f"{case}.nii.gz").is_file() for case in validation_cases)


def train_fold_job(dataset_id: int, fold: int, trainer: str, plans: str, device: str) -> float:
    """Worker: train (or resume) and validate one fold on one torch thread; returns its seconds."""
    start = time.perf_counter()
    with one_torch_thread():
        run_training(dataset_id, fold, trainer, plans, CONFIGURATION, device, continue_training=True)
    return time.perf_counter() - start


def train_folds(dataset_id: int, trainers: Sequence[str], folds: Sequence[int], plans: str, splits: list[dict],
                device: str, num_processes: int) -> dict[str, dict[int, Optional[float]]]:
    """Train every unfinished (trainer, fold), `num_processes` at a time; {trainer: {fold: seconds, or None
    when it was already finished}}. RuntimeError listing every fold that failed (the others are kept)."""
    seconds: dict[str, dict[int, Optional[float]]] = {trainer: {} for trainer in trainers}
    jobs = []
    for trainer in trainers:
        for fold in folds:
            if fold_is_finished(fold_folder(dataset_id, trainer, plans, fold), splits[fold]["val"]):
                seconds[trainer][fold] = None
            else:
                jobs.append((f"{trainer} fold {fold}", (dataset_id, fold, trainer, plans, device)))
    failures = []
    for name, result, error in map_cases(train_fold_job, jobs, num_processes, desc="folds"):
        if error:
            failures.append(error)
        else:
            trainer, fold = name.rsplit(" fold ", 1)
            seconds[trainer][int(fold)] = round(result, 1)
    if failures:
        raise RuntimeError("training failed: " + "; ".join(failures))
    return {trainer: dict(sorted(by_fold.items())) for trainer, by_fold in seconds.items()}


def gather_cross_validation(dataset_id: int, trainer: str, plans: str, splits: list[dict], folds: Sequence[int],
                            folder: Path) -> dict[str, int]:
    """Copy each fold's validation predictions into `folder` (emptied first); returns {case: fold that
    predicted it}. A case validated by two folds (a hand-edited splits file) is a ValueError."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    source: dict[str, int] = {}
    for fold in folds:
        validation = fold_folder(dataset_id, trainer, plans, fold) / "validation"
        for case in splits[fold]["val"]:
            if case in source:
                raise ValueError(f"{case} is validated by folds {source[case]} and {fold}: a cross-validation "
                                 "needs each case in one fold's validation set")
            source[case] = fold
            with atomic_path(folder / f"{case}.nii.gz") as temporary:
                shutil.copyfile(validation / f"{case}.nii.gz", temporary)
    return dict(sorted(source.items()))
