"""Where a case's files sit in the raw dataset folder (DESIGN section 5), and what dataset.json says about it.

Finding files is kept apart from reading them so that a missing file becomes a clear per-case error at read
time instead of silently dropping the case from the list.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from isles_pipeline.files import read_json

# The five 3D channels of imagesTr, by the names dataset.json's channel_names gives them.
RAW_CHANNELS = ("CT", "CBF", "CBV", "MTT", "Tmax")
# The converter's `--compute_maps` writes our own CBF, CBV, MTT, Tmax (isles_pipeline.perfusion) for every case
# into mapsComputed<split>/ with the vendor channels' file indices; plans name those channels "<map>_computed".
COMPUTED_SUFFIX = "_computed"
COMPUTED_CHANNELS = tuple(f"{name}{COMPUTED_SUFFIX}" for name in RAW_CHANNELS[1:])


def computed_maps_folder(raw_dataset_folder: Path, split: str = "Tr") -> Path:
    """Where the converter's `--compute_maps` puts a split's computed maps (mapsComputedTr/Ts)."""
    return Path(raw_dataset_folder) / f"mapsComputed{split}"


def computed_map_paths(folder: Path, name: str, dataset: dict) -> dict[str, Path]:
    """{"CBF_computed": folder/<name>_0001<ending>, ...}: the computed maps of one case in `folder`."""
    ending = dataset.get("file_ending", ".nii.gz")
    indices = channel_indices(dataset)
    return {f"{ch}{COMPUTED_SUFFIX}": Path(folder) / f"{name}_{indices[ch]:04d}{ending}" for ch in RAW_CHANNELS[1:]}
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
    ending = dataset.get("file_ending", ".nii.gz")
    indices = channel_indices(dataset)
    images = {ch: folder / f"images{split}" / f"{name}_{indices[ch]:04d}{ending}" for ch in RAW_CHANNELS}
    if computed_maps_folder(folder, split).is_dir():
        images.update(computed_map_paths(computed_maps_folder(folder, split), name, dataset))
    label = folder / f"labels{split}" / f"{name}{ending}"
    dwi = folder / f"dwi{split}" / f"{name}{ending}"
    info = dict(dataset.get("cases", {}).get(name, {}))
    has_label = split == "Tr" or label.is_file()
    return RawCase(name=name, images=images, ctp=folder / f"ctp{split}" / f"{name}{ending}",
                   label=label if has_label else None, dwi=dwi if dwi.is_file() else None, info=info)


def case_names(raw_dataset_folder: Path, dataset: dict, split: str = "Tr") -> list[str]:
    """Cases named by `images<split>/*_0000<ending>` files or by dataset.json["cases"] with this split."""
    ending = dataset.get("file_ending", ".nii.gz")
    first = f"_{min(channel_indices(dataset).values()):04d}{ending}"
    names = {p.name[: -len(first)] for p in (Path(raw_dataset_folder) / f"images{split}").glob(f"*{first}")}
    names |= {name for name, info in dataset.get("cases", {}).items() if info.get("split", "Tr") == split}
    return sorted(names)


def find_raw_cases(raw_dataset_folder: Path, split: str = "Tr", dataset: Optional[dict] = None) -> list[RawCase]:
    dataset = load_dataset_json(raw_dataset_folder) if dataset is None else dataset
    return [raw_case(raw_dataset_folder, name, dataset, split) for name in case_names(raw_dataset_folder, dataset, split)]
