"""Patient-level 4-fold splits: slabs stay together, every case is validated once, the file is reused."""
import json

import pytest

from isles_pipeline.trainers.splits import SPLITS_FILE, create_splits, load_or_create_splits


def two_slab_dataset():
    """19 patients, the odd ones split into slabs A and B: 28 cases."""
    mapping = {}
    for p in range(19):
        slabs = ("A", "B") if p % 2 else ("",)
        for s in slabs:
            mapping[f"train_{len(mapping) + 1:03d}"] = f"patient_{p:02d}"
    return mapping


def test_every_patient_in_one_fold_and_every_case_validated_once():
    mapping = two_slab_dataset()
    splits = create_splits(mapping, num_folds=4, seed=12345)
    assert len(splits) == 4
    val_cases = [c for fold in splits for c in fold["val"]]
    assert sorted(val_cases) == sorted(mapping)
    for fold in splits:
        assert set(fold["train"]).isdisjoint(fold["val"])
        assert set(fold["train"]) | set(fold["val"]) == set(mapping)
        val_patients = {mapping[c] for c in fold["val"]}
        train_patients = {mapping[c] for c in fold["train"]}
        assert val_patients.isdisjoint(train_patients)
    sizes = [len(fold["val"]) for fold in splits]
    assert max(sizes) - min(sizes) <= 2


def test_seeded_and_seed_matters():
    mapping = two_slab_dataset()
    assert create_splits(mapping, 4, 1) == create_splits(mapping, 4, 1)
    assert create_splits(mapping, 4, 1) != create_splits(mapping, 4, 2)


def test_too_few_patients_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 4 patients"):
        create_splits({"a": "p1", "b": "p1", "c": "p2"}, 4)


def test_existing_file_is_reused_as_edited(tmp_path):
    mapping = two_slab_dataset()
    first = load_or_create_splits(tmp_path, mapping)
    assert json.loads((tmp_path / SPLITS_FILE).read_text()) == first
    edited = [{"train": ["train_001"], "val": ["train_002"]}]
    (tmp_path / SPLITS_FILE).write_text(json.dumps(edited))
    assert load_or_create_splits(tmp_path, mapping) == edited
