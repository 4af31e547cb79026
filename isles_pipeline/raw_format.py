"""The raw dataset format, the pipeline's central contract, defined here only: folder names, file naming,
dataset.json. Converters write it, preprocessing, planning and prediction read it (nnU-Net v2 compatible):

    $ISLES_raw/DatasetXXX_Name/
        images<split>/<case>_0000..0004.nii.gz   CT, CBF, CBV, MTT, Tmax (indices: dataset.json channel_names)
        labels<split>/<case>.nii.gz              uint8 {0, 1}
        ctp<split>/<case>.nii.gz                 4D CTP series (x, y, z, t), spacing[3] = frame interval (s)
        dwi<split>/<case>.nii.gz                 the DWI, where the source has it
        mapsComputed<split>/<case>_0001..0004    CBF, CBV, MTT, Tmax computed from the series (optional)
        dataset.json                             nnU-Net keys + "cases" (per-case records)

with <split> "Tr" (training) or "Ts" (testing). Finding files is kept apart from reading them so that a
missing file becomes a clear per-case error at read time instead of silently dropping the case from the list.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from isles_pipeline.files import read_json

# The five 3D channels of imagesTr, by the names dataset.json's channel_names gives them, in file-index order.
RAW_CHANNELS = ("CT", "CBF", "CBV", "MTT", "Tmax")
CHANNEL_NAMES = {str(index): name for index, name in enumerate(RAW_CHANNELS)}
FILE_ENDING = ".nii.gz"
SPLITS = ("Tr", "Ts")
FOLDER_KINDS = ("images", "labels", "ctp", "dwi", "mapsComputed")
# The converter's `--compute_maps` writes our own CBF, CBV, MTT, Tmax (isles_pipeline.perfusion) for every case
# into mapsComputed<split>/ with the vendor channels' file indices; plans name those channels "<map>_computed".
COMPUTED_SUFFIX = "_computed"
COMPUTED_CHANNELS = tuple(f"{name}{COMPUTED_SUFFIX}" for name in RAW_CHANNELS[1:])


def split_folder(kind: str, split: str) -> str:
    """`imagesTr`, `labelsTs`, `ctpTr`, `dwiTs`, `mapsComputedTr`, ...: the folder of one kind of file."""
    if kind not in FOLDER_KINDS:
        raise ValueError(f"no raw folder of kind {kind!r}; kinds: {FOLDER_KINDS}")
    return f"{kind}{split}"


def channel_file_name(case: str, index: int, ending: str = FILE_ENDING) -> str:
    """`<case>_0003.nii.gz`: one channel of a case, nnU-Net's naming."""
    return f"{case}_{int(index):04d}{ending}"


def case_paths(dataset_folder: Path, split: str, case: str) -> dict[str, Path]:
    """Every file one case may have, by role: the RAW_CHANNELS, "label", "ctp", "dwi" and the COMPUTED_CHANNELS
    ("CBF_computed", ...), with this format's own channel indices (what converters write)."""
    folder = Path(dataset_folder)
    paths = {name: folder / split_folder("images", split) / channel_file_name(case, index)
             for index, name in enumerate(RAW_CHANNELS)}
    for role, kind in (("label", "labels"), ("ctp", "ctp"), ("dwi", "dwi")):
        paths[role] = folder / split_folder(kind, split) / f"{case}{FILE_ENDING}"
    for index, name in enumerate(RAW_CHANNELS[1:], start=1):
        paths[f"{name}{COMPUTED_SUFFIX}"] = (folder / split_folder("mapsComputed", split)
                                             / channel_file_name(case, index))
    return paths


def dataset_json(name: str, description: str, reference: str, licence: str, records: dict[str, dict],
                 **extra) -> dict:
    """dataset.json: nnU-Net's keys, where the 4D series and DWI live, `extra` keys, then the case records
    ({case: {"split": "Tr" | "Ts", ...}}); numTraining counts the "Tr" records."""
    return {
        "name": name,
        "description": description,
        "reference": reference,
        "licence": licence,
        "channel_names": dict(CHANNEL_NAMES),
        "labels": {"background": 0, "core": 1},
        "numTraining": sum(1 for record in records.values() if record.get("split", "Tr") == "Tr"),
        "file_ending": FILE_ENDING,
        "ctp_folders": {split: split_folder("ctp", split) for split in SPLITS},
        "dwi_folders": {split: split_folder("dwi", split) for split in SPLITS},
        **extra,
        "cases": dict(sorted(records.items())),
    }


def computed_maps_folder(raw_dataset_folder: Path, split: str = "Tr") -> Path:
    """Where the converter's `--compute_maps` puts a split's computed maps (mapsComputedTr/Ts)."""
    return Path(raw_dataset_folder) / split_folder("mapsComputed", split)


def computed_map_paths(folder: Path, name: str, dataset: dict) -> dict[str, Path]:
    """{"CBF_computed": folder/<name>_0001<ending>, ...}: the computed maps of one case in `folder`."""
    ending = dataset.get("file_ending", FILE_ENDING)
    indices = channel_indices(dataset)
    return {f"{ch}{COMPUTED_SUFFIX}": Path(folder) / channel_file_name(name, indices[ch], ending)
            for ch in RAW_CHANNELS[1:]}


DATASET_JSON_KEYS = ("channel_names", "labels", "numTraining", "file_ending")


@dataclass(frozen=True)
class RawCase:
    """The files of one case. `label` and `dwi` are None where the dataset has none; `info` is the case's
    entry of dataset.json["cases"] ({} if absent). `images` also holds the computed maps ("CBF_computed" ...)
    when the dataset has a mapsComputed<split> folder (the files may be absent: reading says so)."""

    name: str
    images: dict[str, Path]
    ctp: Path
    label: Optional[Path] = None
    dwi: Optional[Path] = None
    info: dict = field(default_factory=dict)

    @property
    def patient(self) -> str:
        """The patient the case (slab) belongs to; a case without patient metadata is its own patient."""
        return str(self.info.get("patient") or self.name)


def load_dataset_json(raw_dataset_folder: Path) -> dict:
    path = Path(raw_dataset_folder) / "dataset.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: dataset.json missing")
    dataset = read_json(path)
    missing = [key for key in DATASET_JSON_KEYS if key not in dataset]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}")
    return dataset


def channel_indices(dataset: dict) -> dict[str, int]:
    """Channel name -> file index (`_0003` is MTT in our datasets, but dataset.json is the authority)."""
    by_name = {str(name): int(index) for index, name in dataset["channel_names"].items()}
    missing = [name for name in RAW_CHANNELS if name not in by_name]
    if missing:
        raise ValueError(f"dataset.json channel_names lacks {missing}; has {sorted(by_name)}")
    return by_name


def raw_case(raw_dataset_folder: Path, name: str, dataset: dict, split: str = "Tr") -> RawCase:
    """The expected file paths of one case (they may not exist; reading says so)."""
    folder = Path(raw_dataset_folder)
    ending = dataset.get("file_ending", FILE_ENDING)
    indices = channel_indices(dataset)
    images = {ch: folder / split_folder("images", split) / channel_file_name(name, indices[ch], ending)
              for ch in RAW_CHANNELS}
    if computed_maps_folder(folder, split).is_dir():
        images.update(computed_map_paths(computed_maps_folder(folder, split), name, dataset))
    label = folder / split_folder("labels", split) / f"{name}{ending}"
    dwi = folder / split_folder("dwi", split) / f"{name}{ending}"
    info = dict(dataset.get("cases", {}).get(name, {}))
    has_label = split == "Tr" or label.is_file()
    return RawCase(name=name, images=images, ctp=folder / split_folder("ctp", split) / f"{name}{ending}",
                   label=label if has_label else None, dwi=dwi if dwi.is_file() else None, info=info)


def case_names(raw_dataset_folder: Path, dataset: dict, split: str = "Tr") -> list[str]:
    """Cases named by `images<split>/*_0000<ending>` files or by dataset.json["cases"] with this split."""
    ending = dataset.get("file_ending", FILE_ENDING)
    first = channel_file_name("", min(channel_indices(dataset).values()), ending)
    images = Path(raw_dataset_folder) / split_folder("images", split)
    names = {p.name[: -len(first)] for p in images.glob(f"*{first}")}
    names |= {name for name, info in dataset.get("cases", {}).items() if info.get("split", "Tr") == split}
    return sorted(names)


def find_raw_cases(raw_dataset_folder: Path, split: str = "Tr", dataset: Optional[dict] = None) -> list[RawCase]:
    dataset = load_dataset_json(raw_dataset_folder) if dataset is None else dataset
    names = case_names(raw_dataset_folder, dataset, split)
    return [raw_case(raw_dataset_folder, name, dataset, split) for name in names]
