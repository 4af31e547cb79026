"""Finding what is where in an ISLES 2018 download, tolerating what real downloads contain.

A case folder holds one folder per modality, `SMIR.Brain.XX.O.<MOD>.<id>/`, each with one NIfTI file
(`.nii` or `.nii.gz`). Beside them real downloads carry `__MACOSX/` folders, AppleDouble `._*` files,
licence texts and `.json` metadata; all of that is skipped here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from isles_pipeline.files import FileFormatError, read_json
from isles_pipeline.imageio.nifti_io import is_nifti

CASE_FOLDER = re.compile(r"^case_(\d+)$")
MODALITY_FOLDER = re.compile(r"^SMIR\.Brain\.XX\.O\.([A-Za-z0-9_]+)\.(\d+)$")
PATIENT_IN_TEXT = re.compile(r"\b(Train|Test)_(\d+)(?:_([A-Z]))?\b")
REQUIRED_MODALITIES = ("CT", "CT_4DPWI")  # the maps: all four, or none (then computed from the series)
MAP_MODALITIES = ("CT_CBF", "CT_CBV", "CT_MTT", "CT_Tmax")
SKIPPED_NAMES = ("__MACOSX",)


class LayoutError(ValueError):
    """A case whose folder structure cannot be converted; the message names the case and the file."""


@dataclass
class SourceCase:
    """One case folder: its modality files and SMIR ids, and patient identity if metadata gives it."""

    folder: Path
    number: int
    files: dict[str, Path] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    patient: str | None = None
    slab: str = ""


def list_case_folders(root: Path) -> list[Path]:
    """`case_N` folders under root in numeric order; everything else is ignored."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    cases = sorted((p for p in root.iterdir() if p.is_dir() and CASE_FOLDER.match(p.name)),
                   key=lambda p: int(CASE_FOLDER.match(p.name).group(1)))
    numbers = [int(CASE_FOLDER.match(p.name).group(1)) for p in cases]
    doubled = sorted({p.name for p, n in zip(cases, numbers) if numbers.count(n) > 1})
    if doubled:  # case_7 and case_07 would both become train_007
        raise LayoutError(f"{root}: case folders with the same number: {', '.join(doubled)}")
    return cases


def _modality_file(case: Path, folder: Path) -> Path:
    images = sorted(p for p in folder.iterdir() if p.is_file() and is_nifti(p))
    if not images:
        raise LayoutError(f"{case.name}: {folder.name}/ holds no .nii or .nii.gz image")
    if len(images) > 1:
        names = ", ".join(p.name for p in images)
        raise LayoutError(f"{case.name}: {folder.name}/ holds {len(images)} images ({names}); expected one")
    return images[0]


def read_case_layout(case: Path, require_label: bool) -> SourceCase:
    """Map each modality of one case folder to its file; raise LayoutError for missing or doubled ones."""
    source = SourceCase(folder=case, number=int(CASE_FOLDER.match(case.name).group(1)))
    for folder in sorted(p for p in case.iterdir() if p.is_dir() and p.name not in SKIPPED_NAMES):
        match = MODALITY_FOLDER.match(folder.name)
        if not match:
            continue
        modality, smir_id = match.group(1), int(match.group(2))
        if modality in source.files:
            raise LayoutError(f"{case.name}: two {modality} folders ({source.files[modality].parent.name}, "
                              f"{folder.name})")
        source.files[modality] = _modality_file(case, folder)
        source.ids[modality] = smir_id
    required = REQUIRED_MODALITIES + (("OT",) if require_label else ())
    missing = [m for m in required if m not in source.files]
    maps_missing = [m for m in MAP_MODALITIES if m not in source.files]
    if len(maps_missing) < len(MAP_MODALITIES):
        missing += maps_missing
    if missing:
        raise LayoutError(f"{case.name}: missing modality folder(s) {', '.join(missing)} "
                          f"(expected SMIR.Brain.XX.O.<MOD>.<id>/)")
    source.patient, source.slab = patient_from_metadata(case)
    return source


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def patient_from_metadata(case: Path) -> tuple[str | None, str]:
    """Patient and slab from SMIR descriptions like "ISLES 2018 - TRAIN - Train_07_B - CT"."""
    for path in sorted(case.rglob("*.json")):
        if any(part in SKIPPED_NAMES for part in path.parts) or path.name.startswith("._"):
            continue
        try:
            content = read_json(path)
        except FileFormatError:  # the metadata is optional: an unreadable file just gives no patient
            continue
        for text in _strings(content):
            match = PATIENT_IN_TEXT.search(text)
            if match:
                return f"{match.group(1)}_{match.group(2)}", match.group(3) or ""
    return None, ""
