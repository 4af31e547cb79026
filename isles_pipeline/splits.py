"""Cross-validation splits by patient, in nnU-Net's `splits_final.json` format.

Here, beside `paths` and `files`, because planning writes the splits and training reads them: both floors use
this module without the planner reaching up into the trainers.

ISLES 2018 splits some patients into two slabs (cases A and B). Slabs of one patient share anatomy and
lesion, so a patient's cases always go to the same fold; otherwise validation would see half of a training
patient. Patients are shuffled with a fixed seed, then placed (those with most cases first) into the fold
with the fewest validation cases, which balances folds in cases, not only in patients.

The file is a list with one {"train": [...], "val": [...], "val_patients": {case: patient}} per fold. nnU-Net
reads "train" and "val" and ignores the extra key; "val_patients" keeps the case-to-patient map the splits
were made with, inside the file (each case once, in the fold that validates it), so no sidecar can drift.
The file is created once and then reused, so it can be edited by hand; but when it no longer keeps every
patient of the current dataset.json in one fold (e.g. after a re-conversion with a corrected --patients
table), it is refused with one line until it is rebuilt (`rebuild=True`, `--rebuild_splits`).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Mapping, Optional

import numpy as np

from isles_pipeline.files import atomic_write_json, read_json

SPLITS_FILE = "splits_final.json"
DEFAULT_SEED = 12345
logger = logging.getLogger(__name__)


class StaleSplitsError(ValueError):
    """splits_final.json puts the cases of one patient on both sides of a fold."""


def create_splits(case_to_patient: Mapping[str, str], num_folds: int = 4, seed: int = DEFAULT_SEED) -> list[dict]:
    """Folds of {"train", "val", "val_patients"} with every patient's cases in one fold."""
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
    return [{"train": [c for c in everything if c not in set(members)], "val": sorted(members),
             "val_patients": {c: str(case_to_patient[c]) for c in sorted(members)}} for members in val]


def load_splits(path: Path) -> list[dict]:
    splits = read_json(path)
    if not isinstance(splits, list) or not all(isinstance(s, dict) and {"train", "val"} <= set(s) for s in splits):
        raise ValueError(f"{path}: expected a list of {{'train': [...], 'val': [...]}}")
    return splits


def patient_split_across_folds(splits: list[dict], case_to_patient: Mapping[str, str]) -> Optional[str]:
    """None when no fold has cases of one patient both in "train" and in "val"; else what is wrong, in words."""
    for index, fold in enumerate(splits):
        val_patients: dict[str, str] = {}
        for case in fold["val"]:
            if case in case_to_patient:
                val_patients.setdefault(str(case_to_patient[case]), case)
        for case in fold["train"]:
            patient = str(case_to_patient.get(case, ""))
            if patient in val_patients:
                return (f"patient {patient} is split across folds: {val_patients[patient]} is validated in fold "
                        f"{index}, {case} trains it")
    return None


def existing_splits(preprocessed_dataset_folder: Path, case_to_patient: Mapping[str, str]) -> Optional[list[dict]]:
    """The dataset's splits_final.json if there is one; StaleSplitsError (one line) when it no longer keeps
    every patient of `case_to_patient` in one fold."""
    path = Path(preprocessed_dataset_folder) / SPLITS_FILE
    if not path.is_file():
        return None
    splits = load_splits(path)
    problem = patient_split_across_folds(splits, case_to_patient)
    if problem:
        raise StaleSplitsError(f"{path}: {problem} (the patients in dataset.json changed since the splits were "
                               "made); rebuild them with --rebuild_splits")
    return splits


def load_or_create_splits(preprocessed_dataset_folder: Path, case_to_patient: Mapping[str, str],
                          num_folds: int = 4, seed: int = DEFAULT_SEED, rebuild: bool = False) -> list[dict]:
    """The dataset's checked splits_final.json (see existing_splits), created from `case_to_patient` when it
    does not exist yet or when `rebuild`."""
    path = Path(preprocessed_dataset_folder) / SPLITS_FILE
    splits = None if rebuild else existing_splits(preprocessed_dataset_folder, case_to_patient)
    if splits is not None:
        listed = {c for fold in splits for c in fold["train"] + fold["val"]}
        if listed != set(case_to_patient):
            logger.warning("%s lists %d cases, the dataset has %d: using the file as it is (rebuild it with "
                           "--rebuild_splits)", path, len(listed), len(case_to_patient))
        return splits
    try:
        splits = create_splits(case_to_patient, num_folds, seed)
    except ValueError:
        if rebuild:
            path.unlink(missing_ok=True)  # splits asked to be rebuilt must not outlive a failed rebuild
        raise
    atomic_write_json(path, splits)
    return splits


def nnunet_splits(splits: list[dict], cases: Iterable[str]) -> list[dict]:
    """`splits` as stock nnU-Net's splits_final.json: only "train" and "val" per fold. Refused (ValueError, one
    line) unless every one of `cases` (the dataset's training identifiers) is validated in exactly one fold
    and each fold trains on all the others: a row scored on these folds must see every case once."""
    cases = sorted(cases)
    seen: dict[str, int] = {}
    for index, fold in enumerate(splits):
        for case in fold["val"]:
            if case in seen:
                raise ValueError(f"splits: case {case} is validated in folds {seen[case]} and {index}")
            seen[case] = index
    if sorted(seen) != cases:
        missing, unknown = sorted(set(cases) - set(seen)), sorted(set(seen) - set(cases))
        raise ValueError(f"splits do not validate each training case once: {len(missing)} never validated "
                         f"{missing[:3]}, {len(unknown)} not in the dataset {unknown[:3]}")
    exported = []
    for fold in splits:
        train = sorted(c for c in cases if c not in set(fold["val"]))
        if sorted(fold["train"]) != train:
            raise ValueError(f"splits: fold {len(exported)}'s train list is not every case outside its val list")
        exported.append({"train": train, "val": sorted(fold["val"])})
    return exported
