"""Where a trained model lives and which folds it has: `$ISLES_results/DatasetXXX_Name/<Trainer>__<Plans>__2d/`.

The trainer owns the contents (plans.json, dataset.json, fold_N/checkpoint_*.pth, fold_N/validation/); this
module only finds them, so the predictor and determine_postprocessing agree on one layout.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional, Sequence

from isles_pipeline.paths import find_dataset_folder, isles_preprocessed, isles_raw, isles_results

DEFAULT_TRAINER = "ISLESChainTrainer"  # the trainer's default (trainers.run.run_training)
DEFAULT_PLANS = "ISLESPlans"
DEFAULT_CONFIGURATION = "2d"
POSTPROCESSING_FILE = "postprocessing.json"
FOLD_FOLDER = re.compile(r"^fold_(\d+)$")


def model_folder_name(trainer: str, plans: str, configuration: str = DEFAULT_CONFIGURATION) -> str:
    return f"{trainer}__{plans}__{configuration}"


def results_dataset_folder(dataset_id: int) -> Path:
    """The dataset's folder under $ISLES_results (named like the preprocessed or raw dataset when none exists
    yet)."""
    try:
        return find_dataset_folder(isles_results(), dataset_id)
    except FileNotFoundError:
        pass
    for root in (isles_preprocessed(), isles_raw()):
        try:
            return isles_results() / find_dataset_folder(root, dataset_id).name
        except FileNotFoundError:
            continue
    raise FileNotFoundError(f"no dataset with id {int(dataset_id)} in {isles_results()}, {isles_preprocessed()} "
                            f"or {isles_raw()}")


def model_folder(dataset_id: int, trainer: str = DEFAULT_TRAINER, plans: str = DEFAULT_PLANS,
                 configuration: str = DEFAULT_CONFIGURATION, must_exist: bool = True) -> Path:
    """The model's folder, the one place its layout is decided: the trainer writes there (must_exist=False)
    and the predictor reads there; FileNotFoundError listing what exists when it must exist and does not."""
    if not must_exist:
        return results_dataset_folder(dataset_id) / model_folder_name(trainer, plans, configuration)
    dataset = find_dataset_folder(isles_results(), dataset_id)
    folder = dataset / model_folder_name(trainer, plans, configuration)
    if not folder.is_dir():
        available = sorted(p.name for p in dataset.iterdir() if p.is_dir() and p.name.count("__") == 2)
        raise FileNotFoundError(f"{folder}: no trained model for trainer {trainer}, plans {plans}, configuration "
                                f"{configuration}; available: {available or 'none'}")
    return folder


def available_folds(folder: Path, required_file: Optional[str] = None) -> list[int]:
    """Fold numbers with a fold_N folder (holding `required_file` when given), sorted."""
    folds = []
    for path in Path(folder).iterdir():
        match = FOLD_FOLDER.match(path.name)
        if match and path.is_dir() and (required_file is None or (path / required_file).exists()):
            folds.append(int(match.group(1)))
    return sorted(folds)


def resolve_folds(folder: Path, folds: Optional[Sequence[int]], checkpoint_name: str) -> list[int]:
    """The requested folds (each must have the checkpoint) or, when None, every fold that has it."""
    have = available_folds(folder, checkpoint_name)
    if folds is None:
        if not have:
            raise FileNotFoundError(f"{folder}: no fold_N/{checkpoint_name}; train a fold first")
        return have
    missing = [f for f in folds if f not in have]
    if missing:
        raise FileNotFoundError(f"{folder}: fold(s) {missing} have no {checkpoint_name} (available: {have})")
    return [int(f) for f in folds]
