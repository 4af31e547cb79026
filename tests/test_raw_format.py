"""The raw format has one owner: what a converter writes (`case_paths`, `dataset_json`) is what the readers
look for (`raw_case`, `case_names`), split by split."""
from __future__ import annotations

import pytest

from isles_pipeline.raw_format import (
    COMPUTED_CHANNELS,
    RAW_CHANNELS,
    case_names,
    case_paths,
    dataset_json,
    raw_case,
    split_folder,
)


@pytest.mark.parametrize("split", ["Tr", "Ts"])
def test_readers_find_what_writers_name(tmp_path, split):
    records = {"train_001": {"split": "Tr"}, "test_001": {"split": "Ts"}}
    dataset = dataset_json("X", "d", "r", "l", records)
    assert dataset["numTraining"] == 1 and list(dataset["cases"]) == ["test_001", "train_001"]
    name = "train_001" if split == "Tr" else "test_001"
    written = case_paths(tmp_path, split, name)
    for role in RAW_CHANNELS + ("label", "ctp", "dwi") + COMPUTED_CHANNELS:
        written[role].parent.mkdir(parents=True, exist_ok=True)
        written[role].write_bytes(b"")
    found = raw_case(tmp_path, name, dataset, split)
    assert {ch: found.images[ch] for ch in RAW_CHANNELS + COMPUTED_CHANNELS} == {
        ch: written[ch] for ch in RAW_CHANNELS + COMPUTED_CHANNELS}
    assert (found.ctp, found.label, found.dwi) == (written["ctp"], written["label"], written["dwi"])
    assert case_names(tmp_path, dataset, split) == [name]


def test_unknown_folder_kinds_are_refused():
    assert split_folder("labels", "Ts") == "labelsTs"
    with pytest.raises(ValueError, match="kind"):
        split_folder("label", "Tr")
