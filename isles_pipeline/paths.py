"""Where the pipeline's three data roots live, nnU-Net style, and where a trained model lives in them.

`ISLES_raw`, `ISLES_preprocessed` and `ISLES_results` are read from the environment each time they are
asked for (no import-time side effects). When a variable is unset, the root defaults to
`./isles_data/<name>` under the current directory so that a newcomer's first run works without set-up.

A trained model: `$ISLES_results/DatasetXXX_Name/<Trainer>__<Plans>__<configuration>/`. The trainer owns its
contents (plans.json, dataset.json, fold_N/checkpoint_*.pth, fold_N/validation/); `model_folder` is the one
place its location is decided, so the trainer, the predictor and the demo agree.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

ROOT_VARIABLES = ("ISLES_raw", "ISLES_preprocessed", "ISLES_results")


def _root(variable: str) -> Path:
    value = os.environ.get(variable)
    if value:
        return Path(value).expanduser()
    return Path.cwd() / "isles_data" / variable


def isles_raw() -> Path:
    return _root("ISLES_raw")


def isles_preprocessed() -> Path:
    return _root("ISLES_preprocessed")


def isles_results() -> Path:
    return _root("ISLES_results")


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """nnU-Net's naming: Dataset018_ISLES2018."""
    if not 0 <= int(dataset_id) <= 999:
        raise ValueError(f"dataset id must be in 0..999, got {dataset_id}")
    return f"Dataset{int(dataset_id):03d}_{name}"


def find_dataset_folder(root: Path, dataset_id: int) -> Path:
    """The one folder `DatasetXXX_*` under `root` for this id; a clear error when there is none or several."""
    prefix = f"Dataset{int(dataset_id):03d}_"
    matches = sorted(p for p in Path(root).glob(prefix + "*") if p.is_dir()) if Path(root).is_dir() else []
    if not matches:
        raise FileNotFoundError(f"no dataset with id {int(dataset_id)} ({prefix}*) in {root}")
    if len(matches) > 1:
        raise FileExistsError(f"several datasets with id {int(dataset_id)} in {root}: {[m.name for m in matches]}")
    return matches[0]


@contextlib.contextmanager
def temporary_environment(values: dict[str, str]):
    """Set environment variables for the duration of a block, then restore what was there (or its absence)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def data_roots_under(folder: Path):
    """The three data roots pointed at `folder/<root name>` for a block (the demo, benchmarks)."""
    return temporary_environment({name: str(Path(folder) / name) for name in ROOT_VARIABLES})


DEFAULT_TRAINER = "ISLESChainTrainer"  # the trainer's default (trainers.run.run_training)
DEFAULT_PLANS = "ISLESPlans"
DEFAULT_CONFIGURATION = "2d"


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
