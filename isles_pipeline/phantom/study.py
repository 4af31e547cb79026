"""The phantom as a test set, shared by the demo and the phantom benchmark: the dataset id its TRAINING
cases are converted to, and its reference lesions laid out as `isles_evaluate` pairs them."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from isles_pipeline.dataset_conversion.isles2018_layout import list_case_folders

PHANTOM_DATASET_ID = 18


def phantom_references(testing: Path, folder: Path, name_of: Callable[[str], str] = str) -> None:
    """The phantom's DWI lesion (what OT would be) of each TESTING case, named like the predictions:
    `name_of(case folder name)`, e.g. the converted identifier `test_007` for `case_7`."""
    folder.mkdir(parents=True, exist_ok=True)
    for case_folder in list_case_folders(testing):
        shutil.copyfile(testing / "phantom_truth" / case_folder.name / "lesion_dwi.nii.gz",
                        folder / f"{name_of(case_folder.name)}.nii.gz")
