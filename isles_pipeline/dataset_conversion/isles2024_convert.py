"""ISLES 2024 training archive -> the same raw format as ISLES 2018 (convert.py), everything on the NCCT grid.

    $ISLES_raw/Dataset024_ISLES2024/
        imagesTr/stroke_0001_0000..0004.nii.gz   NCCT (the "CT" channel), CBF, CBV, MTT, Tmax (space-ncct maps)
        labelsTr/stroke_0001.nii.gz              uint8 {0, 1}: the follow-up (ses-02) infarct mask
        ctpTr/stroke_0001.nii.gz                 the 4D CTP in NCCT space (x, y, z, t), frame interval in s
        dwiTr/stroke_0001.nii.gz                 the follow-up DWI in NCCT space, where the archive has it
        dataset.json                             nnU-Net keys + "cases" (subject, timing, CTP coverage,
                                                 clinical variables, notes)

The data's quirks, each handled or refused with one line (layout and naming: see isles2024_layout):
- masks stored as scaled integers (uint16 0/65535, scl_slope 1/65535): read with the header's scaling, then
  checked to be {0, 1} (to 1e-3); anything else, e.g. an interpolated mask, is refused;
- oblique grids (direction not axis-aligned): kept as they are, as nnU-Net keeps them; every 3D output takes
  the NCCT's exact geometry (nnU-Net's integrity check compares them), after a tolerance check;
- 512 x 512 grids with thin slices: nothing here resamples; the planner chooses the slice size;
- the 4D series registered to the NCCT is 0 outside the CTP's coverage: the covered slices [first, last + 1)
  are recorded per case (`ctp_coverage_z`), and the planner trains and predicts on those slices only;
- a series of several GB: copied frame by frame (nifti_stream), so a worker holds one frame and one 3D image
  at a time (peak memory: see benchmarks/isles2024_conversion.py).
A case is checked whole before its files land (the series through a temporary that a failed check removes);
failures are returned as lines, the other cases are converted (the CLI exits 1 when any failed).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import SimpleITK as sitk

from isles_pipeline.dataset_conversion.convert import (
    MIN_FRAMES,
    CaseConversionError,
    ConversionResult,
    describe_grid,
    same_grid,
)
from isles_pipeline.dataset_conversion.isles2024_layout import (
    MAPS,
    SUBJECT_FOLDER,
    Isles2024LayoutError,
    list_subjects,
    read_case_layout,
)
from isles_pipeline.files import atomic_write_json
from isles_pipeline.imageio.case_images import Geometry
from isles_pipeline.imageio.nifti_io import NiftiError, read_image, write_image
from isles_pipeline.imageio.nifti_scan import count_non_finite
from isles_pipeline.imageio.nifti_stream import SeriesError, copy_series, header_scaling
from isles_pipeline.parallel import map_cases
from isles_pipeline.paths import dataset_folder_name, isles_raw
from isles_pipeline.raw_format import RAW_CHANNELS, case_paths, dataset_json

ROLES_3D = ("ncct",) + MAPS + ("lesion", "dwi")
CHANNEL_ROLES = ("ncct",) + MAPS  # imagesTr order: CT, CBF, CBV, MTT, Tmax
LABEL_ATOL = 1e-3
OBLIQUE_ATOL = 1e-4


def raw_case_name(number: int) -> str:
    """`stroke_0001` for sub-stroke0001: an nnU-Net identifier that keeps the subject's number."""
    return f"stroke_{number:04d}"


def output_paths(dataset_folder: Path, raw_name: str) -> dict[str, Path]:
    """The raw format's paths of one training case, keyed by the archive's roles."""
    raw = case_paths(dataset_folder, "Tr", raw_name)
    paths = {role: raw[channel] for role, channel in zip(CHANNEL_ROLES, RAW_CHANNELS)}
    paths.update(lesion=raw["label"], ctp=raw["ctp"], dwi=raw["dwi"])
    return paths


def is_oblique(image) -> bool:
    """True when the grid's axes are not aligned with the patient axes (beyond rounding)."""
    dimension = image.GetDimension()
    direction = np.abs(np.array(image.GetDirection()).reshape(dimension, dimension)[:3, :3])
    return not np.allclose(direction, np.round(direction), atol=OBLIQUE_ATOL)


def _binary_label(image: sitk.Image, path: Path, subject: str, notes: dict[str, str]) -> sitk.Image:
    """The mask as uint8 {0, 1} after the header's scaling; CaseConversionError when it is not binary."""
    array = sitk.GetArrayFromImage(image)
    slope, inter = header_scaling(path)
    if (slope, inter) != (1.0, 0.0):
        if array.dtype.kind in "iu":  # a reader that left the scaling to us
            array = array.astype(np.float64) * slope + inter
        notes["scaled_mask"] = f"mask stored with scl_slope {slope:.6g}, scl_inter {inter:g}: read with that scaling"
    values = np.unique(array)
    binary = np.isclose(values, 0, atol=LABEL_ATOL) | np.isclose(values, 1, atol=LABEL_ATOL)
    if not binary.all():
        shown = ", ".join(f"{v:.4g}" for v in values[~binary][:4])
        raise CaseConversionError(f"{subject}: {path.name}: mask values {shown} are not 0 or 1 after the "
                                  f"header's scaling (slope {slope:.6g}, intercept {inter:g}); an interpolated "
                                  "mask needs a threshold the converter will not guess")
    label = sitk.GetImageFromArray((array > 0.5).astype(np.uint8))
    label.CopyInformation(image)
    return label


def _read_3d(case, role: str, ncct: Optional[sitk.Image], notes: dict[str, str]) -> sitk.Image:
    """One 3D image read and checked against the NCCT grid (the NCCT itself when `ncct` is None)."""
    path = case.files[role]
    image = read_image(path)
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise CaseConversionError(f"{case.subject}: {path.name}: expected a 3D scalar image, got "
                                  f"{image.GetDimension()}D")
    if np.issubdtype(sitk.GetArrayViewFromImage(image).dtype, np.floating) and role != "lesion":
        bad = count_non_finite(path)
        if bad:
            raise CaseConversionError(f"{case.subject}: {path.name}: {bad} NaN or infinite voxel(s)")
    if ncct is not None and not same_grid(ncct, image):
        raise CaseConversionError(f"{case.subject}: {path.name}: grid {describe_grid(image)} differs from the "
                                  f"NCCT's {describe_grid(ncct)}")
    if role == "lesion":
        image = _binary_label(image, path, case.subject, notes)
    if ncct is not None:
        image.CopyInformation(ncct)  # one exact grid for nnU-Net's integrity check
    return image


def _check_series_header(case, ncct: sitk.Image) -> None:
    path = case.files["ctp"]
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise CaseConversionError(f"{case.subject}: {path.name}: cannot read NIfTI header") from None
    if reader.GetDimension() != 4:
        raise CaseConversionError(f"{case.subject}: {path.name}: expected a 4D series, got {reader.GetDimension()}D")
    if reader.GetSize()[3] < MIN_FRAMES:
        raise CaseConversionError(f"{case.subject}: {path.name}: {reader.GetSize()[3]} frame(s), need at least "
                                  f"{MIN_FRAMES}")
    series = Geometry.of(reader)
    reference = Geometry.of(ncct)
    if not (tuple(series.size) == tuple(reference.size)
            and np.allclose(series.spacing, reference.spacing, rtol=1e-3)
            and np.allclose(series.origin, reference.origin, atol=1e-2)
            and np.allclose(series.direction, reference.direction, atol=1e-3)):
        size = "x".join(str(v) for v in series.size)
        spacing = "x".join(f"{v:.4g}" for v in series.spacing)
        raise CaseConversionError(f"{case.subject}: {path.name}: spatial grid {size} voxels of {spacing} mm "
                                  f"differs from the NCCT's {describe_grid(ncct)} (expected the space-ncct series)")


def _convert_one(job) -> tuple[str, Optional[dict], Optional[str]]:
    """Worker: (subject, record or None, error line or None). Holds one 3D image and one frame at a time."""
    training_dir, subject, dataset_folder, frame_interval_s = job
    case = None
    raw_name = raw_case_name(int(SUBJECT_FOLDER.match(subject).group(1)))
    paths = output_paths(Path(dataset_folder), raw_name)
    try:
        case = read_case_layout(Path(training_dir), subject)
        notes: dict[str, str] = {}
        ncct = _read_3d(case, "ncct", None, notes)
        for role in ROLES_3D[1:]:  # check every 3D image first (one in memory at a time) ...
            if role in case.files:
                _read_3d(case, role, ncct, notes)
        _check_series_header(case, ncct)
        scan = copy_series(case.files["ctp"], paths["ctp"], frame_interval_s)  # ... then the series lands
    except (Isles2024LayoutError, CaseConversionError, NiftiError, SeriesError) as error:
        for stale in paths.values():  # a case that is bad now must not leave an earlier conversion behind
            stale.unlink(missing_ok=True)
        if isinstance(error, NiftiError):
            return subject, None, f"{subject}: {error.path.name}: {error.problem}"
        if isinstance(error, SeriesError) and case is not None:
            return subject, None, f"{subject}: {str(error).replace(str(case.files['ctp']), case.files['ctp'].name)}"
        return subject, None, str(error)
    for role in ROLES_3D[1:]:
        if role in case.files:
            write_image(_read_3d(case, role, ncct, {}), paths[role])
        elif role in paths:
            paths[role].unlink(missing_ok=True)  # e.g. a DWI of an earlier conversion that the source lost
    write_image(ncct, paths["ncct"])
    if is_oblique(ncct):
        notes["oblique"] = "oblique grid (direction not axis-aligned): kept as it is"
    first, last = scan.coverage_z
    z = ncct.GetSize()[2]
    if (first, last) != (0, z):
        notes["partial_ctp_coverage"] = f"the CTP covers slices {first}..{last - 1} of {z}"
    record = {
        "split": "Tr", "source_subject": subject, "patient": subject, "slab": "",
        "num_frames": scan.num_frames, "frame_interval_s": scan.frame_interval_s,
        "ctp_coverage_z": [first, last], "num_slices": z,
        "grid": {"size": list(ncct.GetSize()), "spacing": [round(v, 5) for v in ncct.GetSpacing()],
                 "oblique": is_oblique(ncct)},
        "has_dwi": "dwi" in case.files, "has_label": "lesion" in case.files,
        "clinical": case.clinical, "notes": dict(sorted(notes.items())),
    }
    return raw_name, record, None


def convert_isles2024(training_dir, dataset_id: int = 24, name: str = "ISLES2024", num_processes: int = 1,
                      frame_interval_s: Optional[float] = None, output_root=None) -> ConversionResult:
    """Convert an ISLES 2024 training folder (raw_data/, derivatives/, phenotype/) into
    `<output_root or $ISLES_raw>/DatasetXXX_<name>`; `frame_interval_s` is used only for series whose header
    has no frame interval."""
    training_dir = Path(training_dir)
    subjects = list_subjects(training_dir)
    if not subjects:
        raise FileNotFoundError(f"{training_dir}: no sub-strokeNNNN folders in raw_data/ or derivatives/")
    dataset_folder = Path(output_root or isles_raw()) / dataset_folder_name(dataset_id, name)
    result = ConversionResult(dataset_folder=dataset_folder)
    dataset_folder.mkdir(parents=True, exist_ok=True)
    jobs = [(s, ((str(training_dir), s, str(dataset_folder), frame_interval_s),)) for s in subjects]
    records: dict[str, dict] = {}
    for subject, outcome, error in map_cases(_convert_one, jobs, num_processes, desc="converting"):
        raw_name, record, line = outcome if outcome is not None else (subject, None, error)
        if line:
            result.failures.append(line)
        else:
            records[raw_name] = record
            result.converted.append(raw_name)
    result.patient_source["Tr"] = "subject"
    atomic_write_json(dataset_folder / "dataset.json", isles2024_dataset_json(name, records))
    return result


def isles2024_dataset_json(name: str, records: dict[str, dict]) -> dict:
    return dataset_json(
        name, "ISLES 2024: final infarct (follow-up DWI mask) from acute NCCT + CTP, on the NCCT grid",
        "https://isles-24.grand-challenge.org/ ; https://github.com/ezequieldlrosa/isles24",
        "CC BY-NC-SA 4.0 (ISLES 2024 data); phantom data: none", records,
        ctp_coverage="cases.<case>.ctp_coverage_z: [first, last + 1) slices of the NCCT grid the CTP covers")


NOTE_SUMMARIES = {
    "scaled_mask": "masks stored as scaled integers, read with the header's scaling",
    "oblique": "oblique grids, kept as they are",
    "partial_ctp_coverage": "4D series covering part of the NCCT (coverage recorded, planner crops to it)",
}


def summarize_notes(dataset: dict) -> dict[str, int]:
    """{kind of handled quirk: number of cases} from a dataset.json written by this converter."""
    counts: dict[str, int] = {}
    for record in dataset.get("cases", {}).values():
        for kind in record.get("notes", {}):
            counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))
