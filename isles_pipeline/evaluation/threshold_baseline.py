"""The conventional perfusion-threshold core: relative CBF < 30 % inside Tmax > 6 s.

This is the ISLES 2018 organisers' style of baseline (scored Dice 0.30 on the test set) and the rule most
commercial software uses (e.g. RAPID: rCBF < 30 % for the core, Tmax > 6 s for the hypoperfusion).
Relative CBF is taken against the mean CBF of perfused tissue that is not hypoperfused (Tmax <= 6 s), a
stand-in for the contralateral hemisphere that needs no knowledge of the lesion side.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import SimpleITK as sitk

from isles_pipeline.dataset_conversion.isles2018_layout import list_case_folders, read_case_layout
from isles_pipeline.imageio.nifti_io import read_image, write_image


def threshold_core(cbf: np.ndarray, tmax: np.ndarray, rcbf_threshold: float = 0.3,
                   tmax_threshold_s: float = 6.0) -> np.ndarray:
    """Boolean core mask of a case from its CBF and Tmax maps (any units of CBF; Tmax in seconds)."""
    cbf = np.asarray(cbf, np.float64)
    tmax = np.asarray(tmax, np.float64)
    if cbf.shape != tmax.shape:
        raise ValueError(f"CBF {cbf.shape} and Tmax {tmax.shape} differ in shape")
    tissue = cbf > 0
    reference_region = tissue & (tmax <= tmax_threshold_s)
    if not reference_region.any():
        return np.zeros(cbf.shape, bool)
    reference = float(cbf[reference_region].mean())
    return tissue & (cbf < rcbf_threshold * reference) & (tmax > tmax_threshold_s)


def threshold_predictions(testing: Path, folder: Path, name_of: Callable[[str], str] = str) -> None:
    """The baseline for every case of an ISLES 2018 layout folder, written on the CT's grid as
    `<folder>/<name_of(case)>.nii.gz` (the names `isles_evaluate` pairs with references; `name_of` maps a
    case folder name, e.g. to the converted identifier `train_007`)."""
    for case_folder in list_case_folders(testing):
        case = read_case_layout(case_folder, require_label=False)
        cbf, tmax = (read_image(case.files[m]) for m in ("CT_CBF", "CT_Tmax"))
        core = threshold_core(sitk.GetArrayFromImage(cbf), sitk.GetArrayFromImage(tmax)).astype(np.uint8)
        image = sitk.GetImageFromArray(core)
        image.CopyInformation(read_image(case.files["CT"]))
        write_image(image, folder / f"{name_of(case_folder.name)}.nii.gz")
