"""Cross-validation splits by patient, in nnU-Net's `splits_final.json` format.

ISLES 2018 splits some patients into two slabs (cases A and B). Slabs of one patient share anatomy and
lesion, so a patient's cases always go to the same fold; otherwise validation would see half of a training
patient. Patients are shuffled with a fixed seed, then placed (those with most cases first) into the fold
with the fewest validation cases, which balances folds in cases, not only in patients.

The file is a list with one {"train": [...], "val": [...]} per fold. It is created once and then reused as
it is, so it can be edited by hand; delete it to have it made again.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

import numpy as np

from isles_pipeline.files import atomic_write_json, read_json

SPLITS_FILE = "splits_final.json"
DEFAULT_SEED = 12345
logger = logging.getLogger(__name__)


def create_splits(case_to_patient: Mapping[str, str], num_folds: int = 4, seed: int = DEFAULT_SEED) -> list[dict]:
    """Folds of {"train", "val"} case lists with every patient's cases in one fold."""
    by_patient: dict[str, list[str]] = {}
    for case in sorted(case_to_patient):
        by_patient.setdefault(str(case_to_patient[case]), []).append(case)
    if len(by_patient) < num_folds:
        raise ValueError(f"{num_folds} folds need at least {num_folds} patients; the dataset has {len(by_patient)}")
    patients = sorted(by_patient)
    order = [patients[i] for i in np.random.RandomState(seed).permutation(len(patients))]
    order.sort(key=lambda p: -len(by_patient[p]))  # stable: shuffled order kept among equal sizes
    val: list[list[str]] = [[] for _ in range(num_folds)]
    for patient in order:
        fold = min(range(num_folds), key=lambda k: (len(val[k]), k))
        val[fold].extend(by_patient[patient])
    everything = sorted(case_to_patient)
    return [{"train": [c for c in everything if c not in set(members)], "val": sorted(members)} for members in val]


def load_splits(path: Path) -> list[dict]:
    splits = read_json(path)
    if not isinstance(splits, list) or not all(isinstance(s, dict) and {"train", "val"} <= set(s) for s in splits):
        raise ValueError(f"{path}: expected a list of {{'train': [...], 'val': [...]}}")
    return splits


def load_or_create_splits(preprocessed_dataset_folder: Path, case_to_patient: Mapping[str, str],
                          num_folds: int = 4, seed: int = DEFAULT_SEED) -> list[dict]:
    """The dataset's splits_final.json, created from `case_to_patient` when it does not exist yet."""
    path = Path(preprocessed_dataset_folder) / SPLITS_FILE
    if path.is_file():
        splits = load_splits(path)
        listed = {c for fold in splits for c in fold["train"] + fold["val"]}
        if listed != set(case_to_patient):
            logger.warning("%s lists %d cases, the dataset has %d: using the file as it is (delete it to make "
                           "new splits)", path, len(listed), len(case_to_patient))
        return splits
    splits = create_splits(case_to_patient, num_folds, seed)
    atomic_write_json(path, splits)
    return splits
