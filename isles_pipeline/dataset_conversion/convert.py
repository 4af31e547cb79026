"""ISLES 2018 download (or phantom) -> the raw format (`isles_pipeline.raw_format`), nnU-Net v2 compatible:
`$ISLES_raw/Dataset018_ISLES2018/` with TRAINING as `train_NNN` cases in the "Tr" folders and TESTING as
`test_NNN` in the "Ts" folders; maps in their original dtypes on the CT's grid; dataset.json's case records
hold patient, slab, SMIR ids and frame timing.

A case without any vendor map gets maps computed from its 4D series (isles_pipeline.perfusion) in
imagesTr; its record's "map_source" says which. Each case is read and checked whole before anything of it is
written, so a bad case leaves no file; the
other cases are still converted and the failures are returned (the CLI prints them and exits non-zero).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from isles_pipeline.dataset_conversion.isles2018_layout import (
    MAP_MODALITIES,
    LayoutError,
    SourceCase,
    list_case_folders,
    read_case_layout,
)
from isles_pipeline.dataset_conversion.patients import AcquisitionKey, read_patient_table, resolve_patients
from isles_pipeline.files import atomic_write_json
from isles_pipeline.imageio.case_images import Geometry, geometry_mismatch
from isles_pipeline.imageio.nifti_io import NiftiError, read_image, write_image
from isles_pipeline.imageio.nifti_scan import count_non_finite
from isles_pipeline.parallel import map_cases
from isles_pipeline.paths import dataset_folder_name, isles_raw
from isles_pipeline.raw_format import COMPUTED_SUFFIX, RAW_CHANNELS, case_paths, dataset_json

CHANNELS = ("CT", "CT_CBF", "CT_CBV", "CT_MTT", "CT_Tmax")  # the source modalities of RAW_CHANNELS, in order
MIN_FRAMES = 5
CASE_PREFIX = {"Tr": "train", "Ts": "test"}


class CaseConversionError(ValueError):
    """One case that cannot be converted; str() is the one line the user sees."""


@dataclass
class ConversionResult:
    dataset_folder: Path
    converted: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    patient_source: dict[str, str] = field(default_factory=dict)


def raw_case_name(split: str, number: int) -> str:
    """`train_007` for TRAINING/case_7: nnU-Net identifiers, unique across both sets."""
    return f"{CASE_PREFIX[split]}_{number:03d}"


def same_grid(reference: sitk.Image, other: sitk.Image) -> bool:
    """The project's one grid-equality rule (imageio.case_images.geometry_mismatch and its tolerances)."""
    return geometry_mismatch(Geometry.of(reference), Geometry.of(other)) is None


def describe_grid(image: sitk.Image) -> str:
    size = "x".join(str(v) for v in image.GetSize()[:3])
    spacing = "x".join(f"{v:.4g}" for v in image.GetSpacing()[:3])
    return f"{size} voxels of {spacing} mm"


def _read_checked(case: SourceCase, modality: str) -> sitk.Image:
    path = case.files[modality]
    image = read_image(path)  # NiftiError names the file
    if np.issubdtype(sitk.GetArrayViewFromImage(image).dtype, np.floating):
        bad = count_non_finite(path)
        if bad:
            raise CaseConversionError(f"{case.folder.name}: {path.name}: {bad} NaN or infinite voxel(s)")
    return image


def load_case(case: SourceCase, split: str) -> dict[str, sitk.Image]:
    """Read and check every image of a case; CaseConversionError names the case, file and problem."""
    name = case.folder.name
    images = {m: _read_checked(case, m) for m in case.files if m in CHANNELS + ("CT_4DPWI", "OT", "MR_DWI")}
    ct = images["CT"]
    if ct.GetDimension() != 3:
        raise CaseConversionError(f"{name}: {case.files['CT'].name}: expected a 3D CT, got {ct.GetDimension()}D")
    for modality in MAP_MODALITIES + ("OT", "MR_DWI"):
        if modality not in images:
            continue
        image = images[modality]
        if image.GetDimension() != 3 or not same_grid(ct, image):
            raise CaseConversionError(f"{name}: {case.files[modality].name}: grid {describe_grid(image)} differs "
                                      f"from the CT's {describe_grid(ct)}")
    series = images["CT_4DPWI"]
    if series.GetDimension() != 4:
        raise CaseConversionError(f"{name}: {case.files['CT_4DPWI'].name}: expected a 4D series, "
                                  f"got {series.GetDimension()}D")
    if not same_grid(ct, series):
        raise CaseConversionError(f"{name}: {case.files['CT_4DPWI'].name}: spatial grid {describe_grid(series)} "
                                  f"differs from the CT's {describe_grid(ct)}")
    if series.GetSize()[3] < MIN_FRAMES:
        raise CaseConversionError(f"{name}: {case.files['CT_4DPWI'].name}: {series.GetSize()[3]} frame(s), "
                                  f"need at least {MIN_FRAMES}")
    if "OT" in images:
        values = np.unique(sitk.GetArrayViewFromImage(images["OT"]))
        if not np.isin(values, (0, 1)).all():
            raise CaseConversionError(f"{name}: {case.files['OT'].name}: label values {values[:8].tolist()} "
                                      f"outside {{0, 1}}")
        label = sitk.Cast(images["OT"], sitk.sitkUInt8)
        label.CopyInformation(images["OT"])
        images["OT"] = label
    for modality, image in images.items():  # one exact grid for nnU-Net's integrity check
        if modality != "CT_4DPWI":
            image.CopyInformation(ct)
    return images


def _output_paths(folder: Path, split: str, raw_name: str) -> dict[str, Path]:
    """The raw format's paths of one case, keyed by the source's modality names."""
    raw = case_paths(folder, split, raw_name)
    paths = {modality: raw[channel] for modality, channel in zip(CHANNELS, RAW_CHANNELS)}
    paths.update(OT=raw["label"], CT_4DPWI=raw["ctp"], MR_DWI=raw["dwi"])
    for modality, channel in zip(CHANNELS[1:], RAW_CHANNELS[1:]):
        paths[f"computed_{modality}"] = raw[f"{channel}{COMPUTED_SUFFIX}"]
    return paths


def add_computed_maps(case: SourceCase, images: dict, compute_all: bool) -> str:
    """Vendor maps missing (all four: the layout refuses a partial set) -> computed ones in their place;
    with `compute_all` also computed ones beside the vendor's. Returns the map source of the channels."""
    from isles_pipeline.errors import CaseError
    from isles_pipeline.perfusion.pipeline import computed_map_images

    has_vendor = all(m in images for m in MAP_MODALITIES)
    if has_vendor and not compute_all:
        return "vendor"
    try:
        computed = computed_map_images(images["CT_4DPWI"], f"{case.folder.name}: {case.files['CT_4DPWI'].name}")
    except CaseError as error:
        raise CaseConversionError(f"perfusion maps: {error}") from None
    for modality, image in computed.items():
        image.CopyInformation(images["CT"])
        if compute_all:
            images[f"computed_{modality}"] = image
        if not has_vendor:
            images[modality] = image
    return "vendor" if has_vendor else "computed"


def _convert_one(job) -> tuple[str, dict | None, str | None]:
    """Worker: (source folder name, record or None, error line or None)."""
    folder, split, dataset_folder, compute_all = job
    folder = Path(folder)
    raw_name = raw_case_name(split, int(folder.name.split("_")[1]))
    paths = _output_paths(Path(dataset_folder), split, raw_name)
    try:
        case = read_case_layout(folder, require_label=(split == "Tr"))
        images = load_case(case, split)
        map_source = add_computed_maps(case, images, compute_all)
    except (LayoutError, CaseConversionError, NiftiError) as error:
        for stale in paths.values():  # a case that is bad now must not leave an earlier conversion behind
            stale.unlink(missing_ok=True)
        line = f"{folder.name}: {error.path.name}: {error.problem}" if isinstance(error, NiftiError) else str(error)
        return folder.name, None, line
    for modality, path in paths.items():
        if modality not in images:  # e.g. a DWI or label of an earlier conversion that the source lost
            path.unlink(missing_ok=True)
    for modality, image in images.items():
        write_image(image, paths[modality])
    series = images["CT_4DPWI"]
    interval = float(series.GetSpacing()[3])
    ct = images["CT"]
    record = {
        "split": split,
        "source_folder": folder.name,
        "source_ids": dict(sorted(case.ids.items())),
        "num_frames": int(series.GetSize()[3]),
        "frame_interval_s": interval if interval > 0 else None,
        "has_dwi": "MR_DWI" in images,
        "map_source": map_source,
        "has_computed_maps": "computed_CT_CBF" in images,
        "has_label": "OT" in images,
        "metadata_patient": case.patient,
        "metadata_slab": case.slab,
        "acquisition": [list(ct.GetSize()), [round(v, 4) for v in ct.GetSpacing()], int(series.GetSize()[3])],
    }
    return raw_name, record, None


def _run(jobs, num_processes: int):
    names = [Path(job[0]).name for job in jobs]
    outcomes = []
    for name, outcome, error in map_cases(_convert_one, [(n, (job,)) for n, job in zip(names, jobs)],
                                          num_processes, desc="converting"):
        outcomes.append(outcome if outcome is not None else (name, None, error))
    return outcomes


def _assign_patients(records: dict[str, dict], split: str, table, source_dir: Path, result: ConversionResult):
    names = sorted((n for n, r in records.items() if r["split"] == split), key=lambda n: int(n.split("_")[1]))
    if not names:
        return
    metadata = {n: (records[n]["metadata_patient"], records[n]["metadata_slab"]) for n in names}
    keys = {n: AcquisitionKey(tuple(records[n]["acquisition"][0][:2]), tuple(records[n]["acquisition"][1]),
                              records[n]["acquisition"][0][2], records[n]["acquisition"][2]) for n in names}
    split_table = None
    if table is not None:
        split_table = {}
        for n in names:
            folder = records[n]["source_folder"]
            for key in (f"{source_dir.name}/{folder}", folder):
                if key in table:
                    split_table[n] = table[key]
                    break
    prefix = "Train" if split == "Tr" else "Test"
    assigned, how = resolve_patients(names, metadata, split_table or None, keys, prefix)
    result.patient_source[split] = how
    for n in names:
        records[n]["patient"], records[n]["slab"] = assigned[n]


def _check_table_covers(table: dict, source: Path, folders: list[Path]) -> None:
    """A patient table covers all cases of a folder or none of them (then the other rules decide), checked
    before anything is written."""
    missing = [f.name for f in folders if f"{source.name}/{f.name}" not in table and f.name not in table]
    if missing and len(missing) < len(folders):
        raise ValueError(f"the patient table covers {len(folders) - len(missing)} of the {len(folders)} cases in "
                         f"{source}; missing: {', '.join(missing[:10])}")


def convert_isles2018(training_dir, testing_dir=None, dataset_id: int = 18, name: str = "ISLES2018",
                      num_processes: int = 1, patients_csv=None, output_root=None,
                      compute_maps: bool = False) -> ConversionResult:
    """Convert TRAINING (and optionally TESTING) into `<output_root or $ISLES_raw>/DatasetXXX_<name>`.

    `patients_csv` (case,patient[,slab]) decides the patients of every folder it covers, over the SMIR metadata:
    a table the user passes is never ignored (patients.py gives the order of trust).
    compute_maps: also compute perfusion maps from every case's series (into mapsComputedTr/Ts); cases
    without vendor maps get computed ones in any case.
    """
    dataset_folder = Path(output_root or isles_raw()) / dataset_folder_name(dataset_id, name)
    result = ConversionResult(dataset_folder=dataset_folder)
    table = read_patient_table(Path(patients_csv)) if patients_csv else None
    sources = [("Tr", Path(training_dir))] + ([("Ts", Path(testing_dir))] if testing_dir else [])
    jobs = []
    for split, source in sources:
        folders = list_case_folders(source)
        if not folders:
            raise FileNotFoundError(f"{source}: no case_N folders found")
        if table is not None:
            _check_table_covers(table, source, folders)
        jobs += [(str(f), split, str(dataset_folder), compute_maps) for f in folders]
    dataset_folder.mkdir(parents=True, exist_ok=True)
    records: dict[str, dict] = {}
    for raw_name, record, error in _run(jobs, num_processes):
        if error:
            result.failures.append(error)
        else:
            records[raw_name] = record
            result.converted.append(raw_name)
    for split, source in sources:
        _assign_patients(records, split, table, source, result)
    for record in records.values():
        for key in ("metadata_patient", "metadata_slab", "acquisition"):
            record.pop(key)
    atomic_write_json(dataset_folder / "dataset.json", _dataset_json(name, records))
    return result


def _dataset_json(name: str, records: dict[str, dict]) -> dict:
    return dataset_json(name, "ISLES 2018 CT perfusion: infarct core (from DWI) segmentation",
                        "https://www.isles-challenge.org/ISLES2018/", "ODC-ODbL (ISLES 2018 data); phantom data: none",
                        records)
