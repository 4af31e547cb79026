"""`--verify_dataset_integrity`: check the whole raw dataset before anything is written, nnU-Net style.

Reads every training case's 3D images (grid, finiteness, label values) and its 4D header (grid, frame
interval); does not time the bolus (that needs the whole series and happens in preprocessing).
"""
from __future__ import annotations

from pathlib import Path

from isles_pipeline.imageio.case_images import read_ctp_header
from isles_pipeline.parallel import map_cases
from isles_pipeline.preprocessing.case_preprocessor import read_case_inputs
from isles_pipeline.raw_format import RawCase, channel_indices, find_raw_cases, load_dataset_json


class IntegrityError(ValueError):
    """The raw dataset has problems; `problems` holds one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("dataset integrity check failed:\n" + "\n".join(problems))
        self.problems = list(problems)


def check_case(raw_case: RawCase) -> None:
    """Raises CaseError for the first problem of a case."""
    _, geometry, _, _ = read_case_inputs(raw_case.images, raw_case.label, raw_case.dwi, raw_case.name)
    read_ctp_header(raw_case.ctp, raw_case.name, geometry, raw_case.info.get("frame_interval_s"))


def verify_dataset_integrity(raw_dataset_folder: Path, num_processes: int = 1) -> list[str]:
    """One line per problem (empty when the dataset is sound)."""
    try:
        dataset = load_dataset_json(raw_dataset_folder)
        channel_indices(dataset)
    except (OSError, ValueError) as error:
        return [str(error)]
    problems = []
    if sorted(int(v) for v in dataset["labels"].values()) != [0, 1]:
        problems.append(f"dataset.json labels {dataset['labels']}: expected background 0 and core 1")
    cases = find_raw_cases(raw_dataset_folder, "Tr", dataset)
    if int(dataset["numTraining"]) != len(cases):
        problems.append(f"dataset.json numTraining is {dataset['numTraining']} but {len(cases)} training cases exist")
    jobs = [(case.name, (case,)) for case in cases]
    problems += sorted(error for _, _, error in map_cases(check_case, jobs, num_processes, "verifying") if error)
    return problems
