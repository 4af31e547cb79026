"""What `isles_predict -i IN` can read, as a list of cases that are prepared (read, checked, preprocessed) one
at a time.

Three layouts:
- a folder of ISLES 2018 case folders (`case_N/SMIR.Brain.XX.O.<MOD>.<id>/...`, e.g. TESTING/): each case is
  read with the converter's reader and checks (identity-sform quirk resolved, 5D series squeezed), staged as
  plain NIfTI in a temporary folder and preprocessed from there, so prediction sees exactly what the converter
  would have written for training. Output name: the case folder's name (`case_N`); CT_MTT id from the folder.
- a raw `images<split>` folder (`<case>_0000.nii.gz` ...), with `ctp<split>/` beside it (`ctpTs/` when the
  folder has another name) and, when present, the dataset's `dataset.json` above it (channel order, frame
  timing, SMIR ids); `labels<split>/` beside it, when present, gives the truth drawn in overlays.
- a DICOM export: a folder holding one study, or a folder of studies (`dicom_cases`: studies by
  StudyInstanceUID; plain CT from the series' pre-contrast frames, maps computed, a uniform time grid). Output
  name: the study's folder; the first time point's slices are kept for a DICOM SEG of the mask.
Preprocessing is `preprocessing.case_preprocessor.preprocess_case`, the function training data went through.
A case without perfusion maps (ISLES layout: no map folders; raw: no _0001.._0004 files) gets maps computed
from its 4D series (`isles_pipeline.perfusion`), as the converter does. Plans on computed maps (map source
"computed" or "both") get them from `mapsComputed<split>/` beside a raw images folder when the converter made
them (`--compute_maps`), else computed from the case's series.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import SimpleITK as sitk

from isles_pipeline.dataset_conversion.convert import add_computed_maps, load_case
from isles_pipeline.dataset_conversion.isles2018_layout import list_case_folders, read_case_layout
from isles_pipeline.files import read_json
from isles_pipeline.imageio.nifti_io import read_image, write_image
from isles_pipeline.inference.dicom_cases import DicomSource, find_dicom_studies, read_study, stage_study
from isles_pipeline.preprocessing.case_preprocessor import PreprocessedCase, preprocess_case
from isles_pipeline.raw_format import (
    CHANNEL_NAMES,
    COMPUTED_CHANNELS,
    COMPUTED_SUFFIX,
    FILE_ENDING,
    RAW_CHANNELS,
    channel_file_name,
    channel_indices,
    computed_map_paths,
    split_folder,
)

ISLES_TO_RAW = {"CT": "CT", "CT_CBF": "CBF", "CT_CBV": "CBV", "CT_MTT": "MTT", "CT_Tmax": "Tmax"}
# Plans whose map source is "computed" or "both" (planners.isles_planner) read these channels.
ISLES_TO_COMPUTED = {m: f"{name}{COMPUTED_SUFFIX}" for m, name in ISLES_TO_RAW.items() if m != "CT"}


@dataclass(frozen=True)
class InputCase:
    """One case to predict: `kind` "isles" (path = the case folder), "raw" (path = the images folder) or "dicom"
    (path = the folder given, dataset["study"] = its `DicomStudy`)."""

    name: str
    kind: str
    path: Path
    split: str = "Ts"
    dataset: dict = field(default_factory=dict, compare=False)


@dataclass
class PreparedCase:
    """A preprocessed case plus what writing and pictures need."""

    name: str
    preprocessed: PreprocessedCase
    truth: Optional[np.ndarray]  # (Z, Y, X) bool on the original grid, when a label exists
    ct_mtt_id: Optional[int]
    dicom: Optional[DicomSource] = None  # a DICOM study's source slices and grid (for a SEG of the mask)

    @property
    def properties(self) -> dict:
        return self.preprocessed.properties


def _raw_dataset_json(images_folder: Path) -> dict:
    """dataset.json above an images folder, or the converter's defaults when there is none."""
    path = images_folder.parent / "dataset.json"
    if path.is_file():
        return read_json(path)
    return {"channel_names": dict(CHANNEL_NAMES), "file_ending": FILE_ENDING, "cases": {}}


def find_input_cases(folder: Path) -> list[InputCase]:
    """The cases of an ISLES-layout folder or a raw images folder; FileNotFoundError when it is neither."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: input folder does not exist")
    case_folders = list_case_folders(folder)
    if case_folders:
        return [InputCase(p.name, "isles", p) for p in case_folders]
    dataset = _raw_dataset_json(folder)
    ending = dataset.get("file_ending", FILE_ENDING)
    first = channel_file_name("", min(int(i) for i in dataset["channel_names"]), ending)
    names = sorted(p.name[: -len(first)] for p in folder.glob(f"*{first}") if not p.name.startswith("."))
    if not names:
        studies = find_dicom_studies(folder)
        if studies:
            return [InputCase(study.name, "dicom", folder, dataset={"study": study}) for study in studies]
        raise FileNotFoundError(f"{folder}: neither case_N folders (ISLES 2018 layout) nor *{first} images "
                                "(raw images folder) nor DICOM images")
    split = folder.name[len("images"):] if folder.name.startswith("images") and len(folder.name) > 6 else "Ts"
    return [InputCase(name, "raw", folder, split, dataset) for name in names]


def _read_truth(path: Optional[Path]) -> Optional[np.ndarray]:
    if path is None or not Path(path).is_file():
        return None
    return sitk.GetArrayFromImage(read_image(path)) > 0


def raw_input_files(case: InputCase) -> tuple[dict[str, Path], Path, Optional[Path]]:
    """(images by channel, 4D series, label or None) of a case in a raw images folder `case.path`: the series
    in `ctp<split>/` beside it, the label in `labels<split>/` when there is one."""
    ending = case.dataset.get("file_ending", FILE_ENDING)
    indices = channel_indices(case.dataset)
    images = {name: case.path / channel_file_name(case.name, indices[name], ending) for name in RAW_CHANNELS}
    ctp = case.path.parent / split_folder("ctp", case.split) / f"{case.name}{ending}"
    label = case.path.parent / split_folder("labels", case.split) / f"{case.name}{ending}"
    return images, ctp, label if label.is_file() else None


def _computed_channels(configuration: dict) -> list[str]:
    return [name for name in configuration["map_channels"] if name in COMPUTED_CHANNELS]


def _stage(images: dict, computed: dict[str, sitk.Image], reference: sitk.Image, staging: Path,
           names: dict[str, str]) -> None:
    """Write computed map images (by ISLES modality) as `names[modality]` channels on the CT's grid."""
    for modality, image in computed.items():
        image.CopyInformation(reference)
        images[names[modality]] = staging / f"{names[modality]}.nii"
        write_image(image, images[names[modality]])


def _prepare_raw(case: InputCase, configuration: dict) -> PreparedCase:
    images, ctp, label = raw_input_files(case)
    info = dict(case.dataset.get("cases", {}).get(case.name, {}))
    needs_computed = bool(_computed_channels(configuration))
    stored = computed_map_paths(case.path.parent / f"mapsComputed{case.split}", case.name, case.dataset)
    if needs_computed and all(path.is_file() for path in stored.values()):
        images.update(stored)  # the converter's --compute_maps already made them
        needs_computed = False
    no_vendor = not any(images[name].is_file() for name in RAW_CHANNELS if name != "CT")
    with tempfile.TemporaryDirectory(prefix=f"isles_predict_{case.name}_") as staging:
        if (no_vendor or needs_computed) and ctp.is_file():
            from isles_pipeline.perfusion.pipeline import computed_map_images

            ct = read_image(images["CT"])
            computed = computed_map_images(read_image(ctp), f"{case.name}: {ctp.name}")
            if needs_computed:
                _stage(images, computed, ct, Path(staging), ISLES_TO_COMPUTED)
            if no_vendor:
                _stage(images, computed, ct, Path(staging), ISLES_TO_RAW)
        result = preprocess_case(images, ctp, configuration, case=case.name, case_info=info)
    return PreparedCase(case.name, result, _read_truth(label), result.properties.get("ct_mtt_id"))


def _prepare_isles(case: InputCase, configuration: dict) -> PreparedCase:
    source = read_case_layout(case.path, require_label=False)
    images = load_case(source, "Ts")
    # a case without maps: computed from its series; plans on computed maps: computed for every case
    add_computed_maps(source, images, compute_all=bool(_computed_channels(configuration)))
    truth = sitk.GetArrayFromImage(images["OT"]) > 0 if "OT" in images else None
    with tempfile.TemporaryDirectory(prefix=f"isles_predict_{case.name}_") as staging:
        staging = Path(staging)
        names = {**ISLES_TO_RAW, **{f"computed_{m}": name for m, name in ISLES_TO_COMPUTED.items()}}
        paths = {names[m]: staging / f"{names[m]}.nii" for m in names if m in images}
        for modality, raw_name in names.items():
            if modality in images:
                write_image(images[modality], paths[raw_name])
        ctp = staging / "CTP.nii"
        write_image(images["CT_4DPWI"], ctp)
        del images
        info = {"source_ids": dict(source.ids)}  # the frame interval is in the staged series' header
        result = preprocess_case(paths, ctp, configuration, case=case.name, case_info=info)
    return PreparedCase(case.name, result, truth, source.ids.get("CT_MTT"))


def _prepare_dicom(case: InputCase, configuration: dict) -> PreparedCase:
    ctp = read_study(case.dataset["study"])
    with tempfile.TemporaryDirectory(prefix=f"isles_predict_{case.name}_") as staging:
        images, series, step = stage_study(ctp, Path(staging), case.name)
        for modality, computed_name in ISLES_TO_COMPUTED.items():  # the only maps a DICOM study has
            images[computed_name] = images[ISLES_TO_RAW[modality]]
        result = preprocess_case(images, series, configuration, case=case.name, case_info={"frame_interval_s": step})
    return PreparedCase(case.name, result, None, None, DicomSource(ctp.files[0], ctp.grid))


def prepare_case(case: InputCase, configuration: dict) -> PreparedCase:
    """Read, check and preprocess one case (raises with a message naming the case on bad input)."""
    if case.kind == "isles":
        return _prepare_isles(case, configuration)
    if case.kind == "dicom":
        return _prepare_dicom(case, configuration)
    return _prepare_raw(case, configuration)
