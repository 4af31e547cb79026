"""Patient-level 4-fold splits: slabs stay together, every case is validated once, the file is reused."""
import json

import pytest

from isles_pipeline.splits import SPLITS_FILE, StaleSplitsError, create_splits, load_or_create_splits


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


def test_the_case_to_patient_map_travels_with_the_splits_in_nnunet_format(tmp_path):
    mapping = two_slab_dataset()
    splits = load_or_create_splits(tmp_path, mapping)
    stored = json.loads((tmp_path / SPLITS_FILE).read_text())
    assert isinstance(stored, list) and all(isinstance(f["train"], list) and isinstance(f["val"], list) for f in stored)
    recorded = {case: patient for fold in stored for case, patient in fold["val_patients"].items()}
    assert recorded == mapping and stored == splits


def _regrouped(mapping, splits):
    """The mapping after a corrected patient table joins a case of fold 0 with a case of fold 1."""
    a, b = splits[0]["val"][0], splits[1]["val"][0]
    return {**mapping, b: mapping[a]}, mapping[a]


def test_splits_that_split_a_patient_are_refused_in_one_line_and_rebuilt_on_request(tmp_path):
    mapping = two_slab_dataset()
    splits = load_or_create_splits(tmp_path, mapping)
    regrouped, patient = _regrouped(mapping, splits)
    with pytest.raises(StaleSplitsError) as error:
        load_or_create_splits(tmp_path, regrouped)
    message = str(error.value)
    assert str(tmp_path / SPLITS_FILE) in message and patient in message and "\n" not in message
    rebuilt = load_or_create_splits(tmp_path, regrouped, rebuild=True)
    assert load_or_create_splits(tmp_path, regrouped) == rebuilt  # the rebuilt file is accepted
    for fold in rebuilt:
        assert {regrouped[c] for c in fold["val"]}.isdisjoint({regrouped[c] for c in fold["train"]})


def test_plan_and_preprocess_refuses_stale_splits_until_rebuild_splits(tmp_path, monkeypatch, capsys):
    from isles_pipeline.cli.plan_and_preprocess import main
    from isles_pipeline.files import atomic_write_json, read_json
    from isles_pipeline.phantom.synthetic import SyntheticCase, write_synthetic_dataset

    for name in ("raw", "preprocessed", "results"):
        monkeypatch.setenv(f"ISLES_{name}", str(tmp_path / name))
    cases = [SyntheticCase(f"train_{i + 1:03d}", patient=f"p{i}", size_yx=(32, 32), slices=2, num_frames=12,
                           arrival_s=2.0) for i in range(5)]
    raw = write_synthetic_dataset(tmp_path / "raw", cases)
    assert main(["-d", "18", "-np", "1", "-pl", "ISLESSmallPlanner"]) == 0
    splits_path = tmp_path / "preprocessed" / raw.name / SPLITS_FILE
    splits = read_json(splits_path)
    # re-conversion with a corrected table: the cases validated in folds 0 and 1 are one patient
    dataset = read_json(raw / "dataset.json")
    dataset["cases"][splits[1]["val"][0]]["patient"] = dataset["cases"][splits[0]["val"][0]]["patient"]
    atomic_write_json(raw / "dataset.json", dataset)
    capsys.readouterr()
    assert main(["-d", "18", "-np", "1", "-pl", "ISLESSmallPlanner"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(splits_path) in err[0] and "--rebuild_splits" in err[0]
    assert read_json(splits_path) == splits
    assert main(["-d", "18", "-np", "1", "-pl", "ISLESSmallPlanner", "--rebuild_splits"]) == 0
    rebuilt = read_json(splits_path)
    patient = dataset["cases"][splits[0]["val"][0]]["patient"]
    assert [sorted(f["val_patients"].values()).count(patient) for f in rebuilt].count(2) == 1
