"""Finding what is where in an ISLES 2024 training archive (BIDS-like), tolerating the spellings in circulation.

Layout, as the challenge documents it (ezequieldlrosa/isles24, README.md and utils/isles24_evaluate.ipynb,
https://github.com/ezequieldlrosa/isles24; data on https://isles-24.grand-challenge.org/ and Zenodo):

    raw_data/sub-stroke0001/ses-01/sub-stroke0001_ses-01_{ncct,cta,ctp}.nii.gz
                                  /perfusion-maps/sub-stroke0001_ses-01_{cbf,cbv,mtt,tmax}.nii.gz
    derivatives/sub-stroke0001/ses-01/sub-stroke0001_ses-01_space-ncct_{cta,ctp,lvo-msk,cow-msk}.nii.gz
                                     /perfusion-maps/sub-stroke0001_ses-01_space-ncct_{cbf,cbv,mtt,tmax}.nii.gz
    derivatives/sub-stroke0001/ses-02/sub-stroke0001_ses-02_[space-ncct_]{lesion-msk,dwi,adc}.nii.gz
    phenotype/sub-stroke0001/ses-01/sub-stroke0001_ses-01_demographic_baseline.csv
    phenotype/sub-stroke0001/ses-02/sub-stroke0001_ses-02_outcome.csv

Spellings seen in the challenge's own README and in the releases: `raw_data` or `rawdata`; `sub-stroke0001` or
`sub-strokecase0001`; `ses-01` or `ses-0001`; the follow-up mask `..._ses-02_lesion-msk` (challenge release,
as the evaluation notebook opens it) or `..._ses-02_space-ncct_lesion-msk` (later Zenodo releases, which also
carry the follow-up DWI and ADC in NCCT space); phenotype per subject (`phenotype/<sub>/ses-01/`) or per
session (`phenotype/ses-0001/<sub>_...csv`). All are accepted here.

The NCCT is the reference space: it exists only in raw_data (the derivatives are registered to it). Everything
else is taken from the derivatives, never from raw_data, whose CTP, maps and DWI are on their own grids.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from isles_pipeline.imageio.nifti_io import is_nifti

SUBJECT_FOLDER = re.compile(r"^sub-stroke(?:case)?(\d+)$")
SESSION_NAMES = {1: ("ses-01", "ses-0001", "ses-1"), 2: ("ses-02", "ses-0002", "ses-2")}
RAW_FOLDERS = ("raw_data", "rawdata")
MAPS = ("cbf", "cbv", "mtt", "tmax")
PHENOTYPE_SUFFIXES = (".csv", ".tsv")


class Isles2024LayoutError(ValueError):
    """A subject whose files cannot be converted; the message is one line naming the subject and the file."""


@dataclass
class Isles2024Case:
    """One subject: its files (by role) and clinical variables (by table, then column)."""

    subject: str
    number: int
    files: dict[str, Path] = field(default_factory=dict)
    clinical: dict[str, dict[str, object]] = field(default_factory=dict)


def _child(parent: Path, names) -> Optional[Path]:
    for name in names:
        if (parent / name).is_dir():
            return parent / name
    return None


def raw_root(training_dir: Path) -> Path:
    folder = _child(Path(training_dir), RAW_FOLDERS)
    if folder is None:
        raise FileNotFoundError(f"{training_dir}: no raw_data/ (or rawdata/) folder; expected the ISLES 2024 "
                                "training archive's root (raw_data/, derivatives/, phenotype/)")
    return folder


def list_subjects(training_dir: Path) -> list[str]:
    """Subject folder names found in raw_data/ or derivatives/, by subject number."""
    training_dir = Path(training_dir)
    if not training_dir.is_dir():
        raise FileNotFoundError(f"{training_dir}: not a folder")
    names: set[str] = set()
    for root in [raw_root(training_dir), training_dir / "derivatives"]:
        if root.is_dir():
            names |= {p.name for p in root.iterdir() if p.is_dir() and SUBJECT_FOLDER.match(p.name)}
    numbers: dict[int, list[str]] = {}
    for name in names:
        numbers.setdefault(int(SUBJECT_FOLDER.match(name).group(1)), []).append(name)
    doubled = sorted(n for group in numbers.values() if len(group) > 1 for n in group)
    if doubled:  # sub-stroke0001 and sub-strokecase0001 would both become stroke_0001
        raise Isles2024LayoutError(f"{training_dir}: subject folders with the same number: {', '.join(doubled)}")
    return sorted(names, key=lambda n: int(SUBJECT_FOLDER.match(n).group(1)))


def _one(folder: Optional[Path], subject: str, pattern: re.Pattern, what: str, required: bool) -> Optional[Path]:
    """The single NIfTI in `folder` whose name matches `pattern`; None (or an error if required) when absent."""
    found = sorted(p for p in folder.iterdir() if p.is_file() and is_nifti(p) and pattern.search(p.name)) \
        if folder is not None and folder.is_dir() else []
    if len(found) > 1:
        raise Isles2024LayoutError(f"{subject}: {len(found)} {what} files in {folder} "
                                   f"({', '.join(p.name for p in found)}); expected one")
    if not found:
        if required:
            where = folder if folder is not None else "its session folder"
            raise Isles2024LayoutError(f"{subject}: no {what} in {where}")
        return None
    return found[0]


def _pattern(suffix: str, space_ncct: Optional[bool]) -> re.Pattern:
    """`..._<suffix>.nii[.gz]`; space_ncct True: must carry `_space-ncct`; False: must not; None: either."""
    space = {True: r"_space-ncct", False: r"(?<!space-ncct)", None: r"(?:_space-ncct)?"}[space_ncct]
    return re.compile(rf"_ses-\d+{space}_{re.escape(suffix)}\.nii(?:\.gz)?$")


def read_case_layout(training_dir: Path, subject: str, require_label: bool = True) -> Isles2024Case:
    """Map each role (ncct, ctp, cbf, cbv, mtt, tmax, lesion, dwi, adc) to its file; Isles2024LayoutError for
    a missing or doubled one. CTA, LVO and CoW masks are not used by the pipeline and are not looked for."""
    training_dir = Path(training_dir)
    case = Isles2024Case(subject=subject, number=int(SUBJECT_FOLDER.match(subject).group(1)))
    raw_session = _child(raw_root(training_dir) / subject, SESSION_NAMES[1])
    derived = training_dir / "derivatives" / subject
    acute = _child(derived, SESSION_NAMES[1]) if derived.is_dir() else None
    follow_up = _child(derived, SESSION_NAMES[2]) if derived.is_dir() else None
    if acute is None:
        raise Isles2024LayoutError(f"{subject}: no derivatives/{subject}/ses-01/ (the CTP and maps in NCCT space)")
    case.files["ncct"] = _one(raw_session, subject, _pattern("ncct", False), "NCCT (raw_data/.../ses-01/*_ncct)",
                              True)
    case.files["ctp"] = _one(acute, subject, _pattern("ctp", True), "4D CTP in NCCT space (*_space-ncct_ctp)", True)
    for name in MAPS:
        case.files[name] = _one(acute / "perfusion-maps", subject, _pattern(name, True),
                                f"{name.upper()} map in NCCT space (perfusion-maps/*_space-ncct_{name})", True)
    case.files["lesion"] = _one(follow_up, subject, _pattern("lesion-msk", None),
                                "follow-up lesion mask (ses-02/*_lesion-msk)", require_label)
    for name in ("dwi", "adc"):  # only the registered ones: raw_data's DWI is on the MRI grid
        case.files[name] = _one(follow_up, subject, _pattern(name, True), f"{name.upper()} in NCCT space", False)
    case.files = {role: path for role, path in case.files.items() if path is not None}
    case.clinical = read_phenotype(training_dir, subject)
    return case


def _phenotype_files(training_dir: Path, subject: str) -> list[Path]:
    root = Path(training_dir) / "phenotype"
    if not root.is_dir():
        return []
    files = [p for p in root.rglob("*") if p.is_file() and p.suffix in PHENOTYPE_SUFFIXES
             and not p.name.startswith(".")]
    return sorted(p for p in files if subject in p.relative_to(root).parts or p.name.startswith(f"{subject}_"))


def _value(text: str):
    text = text.strip()
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text if text else None


def _table_name(path: Path, subject: str) -> str:
    """`ses-01/demographic_baseline` for sub-stroke0001_ses-01_demographic_baseline.csv."""
    stem = path.stem[len(subject) + 1:] if path.stem.startswith(f"{subject}_") else path.stem
    match = re.match(r"^(ses-\d+)_(.+)$", stem)
    return f"{match.group(1)}/{match.group(2)}" if match else stem


def read_phenotype(training_dir: Path, subject: str) -> dict[str, dict[str, object]]:
    """The subject's clinical tables, {table: {column: value}} (one row each; numbers parsed, empty -> None).

    A table with several rows keeps them as a list under "rows". Unreadable tables raise Isles2024LayoutError.
    """
    tables: dict[str, dict[str, object]] = {}
    for path in _phenotype_files(training_dir, subject):
        try:
            with open(path, newline="", encoding="utf-8-sig") as handle:
                rows = list(csv.DictReader(handle, delimiter="\t" if path.suffix == ".tsv" else ","))
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            raise Isles2024LayoutError(f"{subject}: {path.name}: unreadable clinical table ({error})") from None
        rows = [{(k or "").strip(): _value(v or "") for k, v in row.items() if k} for row in rows]
        tables[_table_name(path, subject)] = rows[0] if len(rows) == 1 else {"rows": rows}
    return tables
