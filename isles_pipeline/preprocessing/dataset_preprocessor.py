"""Preprocess every training case of a raw dataset into the plans' data folder, resumably and in parallel."""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from isles_pipeline.parallel import map_cases
from isles_pipeline.preprocessing.case_preprocessor import preprocess_raw_case, preprocessing_hash
from isles_pipeline.preprocessing.storage import is_case_done, write_preprocessed_case
from isles_pipeline.raw_format import RawCase, find_raw_cases

logger = logging.getLogger(__name__)


@dataclass
class PreprocessingReport:
    processed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already done with the same preprocessing
    failed: dict[str, str] = field(default_factory=dict)  # case -> one-line reason
    warnings: dict[str, list[str]] = field(default_factory=dict)


def _preprocess_and_store(raw_case: RawCase, configuration: dict, output_folder: str) -> list[str]:
    result = preprocess_raw_case(raw_case, configuration)
    write_preprocessed_case(Path(output_folder), raw_case.name, result)
    return list(result.properties["warnings"])


def preprocess_dataset(raw_dataset_folder: Path, output_folder: Path, configuration: dict, num_processes: int = 1,
                       clean: bool = False, cases: Optional[Sequence[str]] = None) -> PreprocessingReport:
    """Preprocess the training cases (all, or `cases`) into `output_folder`. Cases already stored with the
    same preprocessing are skipped unless `clean` (which empties the folder first). Bad cases are listed in
    the report's `failed`; the others are done."""
    output_folder = Path(output_folder)
    if clean and output_folder.is_dir():
        shutil.rmtree(output_folder)
    output_folder.mkdir(parents=True, exist_ok=True)
    raw_cases = find_raw_cases(raw_dataset_folder, "Tr")
    if cases is not None:
        wanted = set(cases)
        raw_cases = [c for c in raw_cases if c.name in wanted]
    report = PreprocessingReport()
    digest = preprocessing_hash(configuration)
    jobs = []
    for raw_case in raw_cases:
        if is_case_done(output_folder, raw_case.name, digest):
            report.skipped.append(raw_case.name)
        else:
            jobs.append((raw_case.name, (raw_case, configuration, str(output_folder))))
    for case, warnings, error in map_cases(_preprocess_and_store, jobs, num_processes, "preprocessing"):
        if error is not None:
            report.failed[case] = error
            logger.error(error)
            continue
        report.processed.append(case)
        if warnings:
            report.warnings[case] = warnings
            for warning in warnings:
                logger.warning("%s: %s", case, warning)
    report.processed.sort()
    return report
