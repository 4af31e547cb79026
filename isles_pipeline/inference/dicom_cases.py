"""DICOM studies as prediction cases: a folder holding one study's export, or a folder of studies.

Studies are told apart by StudyInstanceUID (not by folder: one study's series often sit in several folders);
a study is named after the top-level subfolder holding all its files, else `study_<n>` in scan order, and a
folder of one study after the folder itself. Of several studies, those without a 4D series (a prior head CT
exported alongside) are left out, and logged, unless none has one. Each study becomes what the raw layout
gives the preprocessor:
- the 4D series on a uniform time grid. The network's temporal preprocessing takes one frame interval, so a
  non-uniform protocol is interpolated linearly in time onto the grid the perfusion engine uses
  (`perfusion.timing.uniform_grid`: the median interval, at most 1 s); a uniform one is kept as it is;
- the plain CT channel: the mean of the pre-contrast frames of the series (the same slab, the same grid;
  the baseline window by the rule the perfusion engine uses), since a CTP export rarely holds a plain CT of
  exactly the slab;
- the four maps computed from the series by the perfusion engine (`perfusion.pipeline`).
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import SimpleITK as sitk

from isles_pipeline.imageio.dicom_ctp import DicomCtp, read_ctp_dicom
from isles_pipeline.imageio.dicom_geometry import Grid
from isles_pipeline.imageio.dicom_scan import scan_folder
from isles_pipeline.imageio.dicom_seg import write_core_seg
from isles_pipeline.imageio.dicom_series import find_candidates
from isles_pipeline.imageio.nifti_io import write_image
from isles_pipeline.perfusion.baseline import baseline_frame_count
from isles_pipeline.perfusion.bolus_timing import global_curve
from isles_pipeline.perfusion.timing import resampling_matrix, uniform_grid
from isles_pipeline.preprocessing.resampling import to_original_image

logger = logging.getLogger(__name__)
SEG_SUFFIX = "_core_seg.dcm"
SOFT_TISSUE_HU = (-100.0, 150.0)  # the head's non-bone, non-air voxels, for the global curve


@dataclass(frozen=True)
class DicomSource:
    """What a DICOM SEG of a study's mask refers to: the first time point's files (z order) and the grid."""

    files: list
    grid: Grid


@dataclass(frozen=True)
class DicomStudy:
    """One study of a DICOM input folder: its name, the folder scanned, and its image slices."""

    name: str
    folder: Path
    study_uid: str
    slices: tuple


def find_dicom_studies(folder: Path) -> list[DicomStudy]:
    """The studies below `folder` (see the module docstring); [] when it holds no DICOM image slice."""
    folder = Path(folder)
    by_study = defaultdict(list)
    for header in scan_folder(folder).slices:
        by_study[header.study_uid].append(header)
    if len(by_study) > 1:
        with_4d = {uid: slices for uid, slices in by_study.items() if find_candidates(slices)[0]}
        for uid in set(by_study) - set(with_4d) if with_4d else ():
            logger.info("%s: study %s has no 4D series: left out", folder, uid)
        by_study = with_4d or by_study
    if len(by_study) == 1:
        uid, slices = next(iter(by_study.items()))
        return [DicomStudy(folder.name, folder, uid, tuple(slices))]
    studies, used = [], set()
    for number, (uid, slices) in enumerate(by_study.items(), start=1):
        tops = {header.path.relative_to(folder).parts[0] for header in slices}
        name = next(iter(tops)) if len(tops) == 1 else ""
        if not name or (folder / name).is_file() or name in used:
            name = f"study_{number}"
        used.add(name)
        studies.append(DicomStudy(name, folder, uid, tuple(slices)))
    return studies


def read_study(study: DicomStudy, series: Optional[str] = None) -> DicomCtp:
    """The CTP series of one study (CaseError naming the folder on a bad export)."""
    return read_ctp_dicom(study.folder, series, slices=list(study.slices))


def uniform_series(ctp: DicomCtp) -> tuple[np.ndarray, float]:
    """(T', Z, Y, X) float32 on a uniform time grid, and its step (s): the series itself when already uniform."""
    if ctp.frame_interval_s is not None:
        return ctp.series.astype(np.float32, copy=False), float(ctp.frame_interval_s)
    grid = uniform_grid(ctp.times_s)
    weights = resampling_matrix(ctp.times_s, grid).astype(np.float32)
    frames = ctp.series.reshape(len(ctp.times_s), -1)
    resampled = np.empty((len(grid), frames.shape[1]), np.float32)
    for start in range(0, frames.shape[1], 1 << 20):  # a slab of voxels at a time keeps the float copy small
        resampled[:, start:start + (1 << 20)] = weights @ frames[:, start:start + (1 << 20)].astype(np.float32)
    step = float(grid[1] - grid[0]) if len(grid) > 1 else 1.0
    logger.info("%s: non-uniform frame times interpolated onto %d frames every %.3g s", ctp.folder, len(grid), step)
    return resampled.reshape((len(grid),) + ctp.series.shape[1:]), step


def baseline_ct(series: np.ndarray, step_s: float, name: str) -> np.ndarray:
    """(Z, Y, X) mean of the pre-contrast frames of a uniform (T, Z, Y, X) series."""
    first = series[0]
    head = (first > SOFT_TISSUE_HU[0]) & (first < SOFT_TISSUE_HU[1])
    count = baseline_frame_count(global_curve(series, head), step_s, name)
    return series[:count].mean(axis=0)


def stage_study(ctp: DicomCtp, staging: Path, name: str) -> tuple[dict[str, Path], Path, float]:
    """Write the plain CT, the computed maps and the uniform series of a study as NIfTI in `staging`.

    Returns ({"CT": path, "CBF": ..., "CBV": ..., "MTT": ..., "Tmax": ...}, series path, frame interval s).
    """
    from isles_pipeline.perfusion.pipeline import computed_map_images

    staging = Path(staging)
    series, step = uniform_series(ctp)
    reference = ctp.reference_3d()
    image4d = sitk.GetImageFromArray(series, isVector=False)
    image4d.SetSpacing(tuple(ctp.grid.spacing) + (step,))
    image4d.SetOrigin(tuple(ctp.grid.origin) + (0.0,))
    direction = np.eye(4)
    direction[:3, :3] = np.array(ctp.grid.direction).reshape(3, 3)
    image4d.SetDirection(tuple(direction.ravel()))
    ct = sitk.GetImageFromArray(baseline_ct(series, step, name))
    ct.CopyInformation(reference)
    paths = {"CT": staging / "CT.nii"}
    write_image(ct, paths["CT"])
    for modality, image in computed_map_images(image4d, name).items():
        raw = modality.replace("CT_", "")
        paths[raw] = staging / f"{raw}.nii"
        image.CopyInformation(reference)
        write_image(image, paths[raw])
    ctp_path = staging / "CTP.nii"
    write_image(image4d, ctp_path)
    return paths, ctp_path, step


def write_study_seg(mask: np.ndarray, properties: dict, source: DicomSource, path: Path) -> Path:
    """The predicted mask (on the preprocessed grid) as a DICOM SEG on the study's source slices."""
    original = sitk.GetArrayFromImage(to_original_image(np.ascontiguousarray(mask, np.uint8), properties))
    return write_core_seg(original, source.files, path, grid=source.grid)
