"""The three plan-and-preprocess steps as Python calls (the CLIs are thin layers over these).

    extract_fingerprint(18)                 -> $ISLES_preprocessed/Dataset018_*/dataset_fingerprint.json
    plan_experiment(18, "ISLESPlanner")     -> .../ISLESPlans.json
    preprocess(18, "ISLESPlans")            -> .../ISLESPlans_2d/<case>.npy ... and splits_final.json
    plan_and_preprocess(18)                 all three

Nothing is redone that exists: the fingerprint and the plans are reused (plans may carry hand edits), cases
already stored with the same preprocessing are skipped, splits are reused. `clean=True` re-extracts the
fingerprint, rewrites the plans from the planner and redoes every case; it never touches splits_final.json,
which `rebuild_splits=True` makes again (needed when dataset.json's patients no longer fit the old splits).
Bad cases do not stop the others: they are listed (fingerprint["failed_cases"], report.failed), and
plan_and_preprocess raises CaseFailures at the end when there were any.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from isles_pipeline.errors import CaseFailures
from isles_pipeline.files import atomic_write_json, read_json, write_json_if_changed
from isles_pipeline.paths import find_dataset_folder, isles_preprocessed, isles_raw
from isles_pipeline.planners.fingerprint import FINGERPRINT_FILE, compute_fingerprint
from isles_pipeline.planners.plans import get_configuration, load_plans, plans_file
from isles_pipeline.planners.registry import find_planner
from isles_pipeline.preprocessing.case_preprocessor import preprocessing_hash
from isles_pipeline.preprocessing.dataset_preprocessor import PreprocessingReport, preprocess_dataset
from isles_pipeline.preprocessing.integrity import IntegrityError, verify_dataset_integrity
from isles_pipeline.preprocessing.storage import is_case_done
from isles_pipeline.raw_format import find_raw_cases, load_dataset_json
from isles_pipeline.splits import StaleSplitsError, existing_splits, load_or_create_splits

logger = logging.getLogger(__name__)


def raw_dataset_folder(dataset_id: int) -> Path:
    return find_dataset_folder(isles_raw(), dataset_id)


def preprocessed_dataset_folder(dataset_id: int) -> Path:
    """$ISLES_preprocessed/<the raw dataset's folder name>."""
    return isles_preprocessed() / raw_dataset_folder(dataset_id).name


def extract_fingerprint(dataset_id: int, num_processes: int = 1, clean: bool = False,
                        verify_dataset_integrity_first: bool = False) -> dict:
    """The dataset's fingerprint, computed once and cached (recomputed when `clean`)."""
    raw = raw_dataset_folder(dataset_id)
    if verify_dataset_integrity_first:
        problems = verify_dataset_integrity(raw, num_processes)
        if problems:
            raise IntegrityError(problems)
    out = isles_preprocessed() / raw.name
    write_json_if_changed(out / "dataset.json", load_dataset_json(raw))
    path = out / FINGERPRINT_FILE
    if path.is_file() and not clean:
        return read_json(path)
    fingerprint = compute_fingerprint(raw, num_processes)
    atomic_write_json(path, fingerprint)
    return fingerprint


def plan_experiment(dataset_id: int, planner: str = "ISLESPlanner", clean: bool = False) -> Path:
    """Write the planner's plans next to the fingerprint; an existing plans file is kept unless `clean`."""
    folder = preprocessed_dataset_folder(dataset_id)
    planner_class = find_planner(planner)
    path = plans_file(folder, planner_class.plans_name)
    if path.is_file() and not clean:
        return path
    fingerprint_path = folder / FINGERPRINT_FILE
    if not fingerprint_path.is_file():
        raise FileNotFoundError(f"{fingerprint_path}: no fingerprint; run isles_extract_fingerprint first")
    plans = planner_class(read_json(fingerprint_path), read_json(folder / "dataset.json")).plan()
    atomic_write_json(path, plans)
    return path


def preprocess(dataset_id: int, plans_name: str = "ISLESPlans", configuration: str = "2d", num_processes: int = 1,
               clean: bool = False, rebuild_splits: bool = False) -> PreprocessingReport:
    """Preprocess the training cases as the plans say, then make (or reuse) the splits.

    Existing splits that put one patient's cases on both sides of a fold raise StaleSplitsError unless
    `rebuild_splits`, which makes them again from dataset.json's patients.
    """
    raw = raw_dataset_folder(dataset_id)
    folder = preprocessed_dataset_folder(dataset_id)
    config = get_configuration(load_plans(dataset_id, plans_name, folder), configuration)
    data_folder = folder / config["data_identifier"]
    cases = find_raw_cases(raw, "Tr")
    if not rebuild_splits:
        existing_splits(folder, {c.name: c.patient for c in cases})  # refuse stale splits before any work
    report = preprocess_dataset(raw, data_folder, config, num_processes, clean)
    digest = preprocessing_hash(config)
    done = {c.name: c.patient for c in cases if is_case_done(data_folder, c.name, digest)}
    try:
        load_or_create_splits(folder, done, config["num_folds"], rebuild=rebuild_splits)
    except StaleSplitsError:
        raise
    except ValueError as error:
        logger.warning("no splits_final.json: %s", error)
    return report


@dataclass
class PlanAndPreprocessResult:
    fingerprint: dict
    plans_path: Path
    report: PreprocessingReport
    failures: dict[str, str] = field(default_factory=dict)  # case -> one line, from any step


def plan_and_preprocess(dataset_id: int, planner: str = "ISLESPlanner", num_processes: int = 1, clean: bool = False,
                        verify_dataset_integrity_first: bool = False,
                        raise_on_failure: bool = True, rebuild_splits: bool = False) -> PlanAndPreprocessResult:
    """Fingerprint, plan and preprocess; CaseFailures at the end if any case failed (the rest are done)."""
    fingerprint = extract_fingerprint(dataset_id, num_processes, clean, verify_dataset_integrity_first)
    plans_path = plan_experiment(dataset_id, planner, clean)
    planner_class = find_planner(planner)
    report = preprocess(dataset_id, planner_class.plans_name, planner_class.configuration_name, num_processes, clean,
                        rebuild_splits)
    failures = {**fingerprint.get("failed_cases", {}), **report.failed}
    result = PlanAndPreprocessResult(fingerprint, plans_path, report, dict(sorted(failures.items())))
    if failures and raise_on_failure:
        raise CaseFailures("plan_and_preprocess", result.failures)
    return result
