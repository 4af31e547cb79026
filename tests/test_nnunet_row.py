"""The stock nnU-Net row, our side of it (nnU-Net itself is not installed here; the row's run is a benchmark):
the splits export, the training-budget arithmetic the external trainer reads, and the one-line errors."""
import ast
import json
from pathlib import Path

import pytest

from experiments import nnunet_row, nnunet_runner, phantom_long_budget
from experiments.nnunet_row import TRAINER, budget_schedule, main
from experiments.nnunet_runner import (
    EDITED_PLANS,
    TRAINER_FOLDER,
    NnUNetRowError,
    NnUNetVariant,
    NnUNetWork,
    dataset_id,
    training_cases,
    write_edited_plans,
)
from isles_pipeline.splits import create_splits, nnunet_splits


def _raw_dataset(folder: Path, cases: list[str]) -> Path:
    """A raw dataset folder as far as the row reads it before nnU-Net runs: dataset.json and labelsTr names."""
    (folder / "labelsTr").mkdir(parents=True)
    for case in cases:
        (folder / "labelsTr" / f"{case}.nii.gz").write_bytes(b"")
    (folder / "dataset.json").write_text(json.dumps({"file_ending": ".nii.gz", "numTraining": len(cases)}))
    return folder


def _two_slab_patients() -> dict[str, str]:
    return {f"train_{i:03d}": f"patient_{(i + 1) // 2:02d}" for i in range(1, 15)}


def test_export_keeps_train_and_val_only_and_validates_every_dataset_case_once(tmp_path):
    patients = _two_slab_patients()
    raw = _raw_dataset(tmp_path / "Dataset018_ISLES2018", sorted(patients))
    ours = create_splits(patients, 4)
    exported = nnunet_splits(ours, training_cases(raw))
    assert all(set(fold) == {"train", "val"} for fold in exported)
    assert sorted(c for fold in exported for c in fold["val"]) == sorted(patients)
    for fold, original in zip(exported, ours):
        assert fold["val"] == sorted(original["val"])
        assert sorted(fold["train"] + fold["val"]) == sorted(patients)
    json.dumps(exported)  # what nnU-Net reads is plain JSON


def test_export_refuses_splits_that_do_not_cover_the_dataset_once(tmp_path):
    patients = _two_slab_patients()
    splits = create_splits(patients, 4)
    with pytest.raises(ValueError, match="1 never validated"):
        nnunet_splits(splits, sorted(patients) + ["train_099"])
    twice = [dict(fold) for fold in splits]
    twice[1] = {**twice[1], "val": twice[1]["val"] + [twice[0]["val"][0]]}
    with pytest.raises(ValueError, match="validated in folds 0 and 1"):
        nnunet_splits(twice, sorted(patients))
    wrong_train = [dict(fold) for fold in splits]
    wrong_train[2] = {**wrong_train[2], "train": wrong_train[2]["train"][1:]}
    with pytest.raises(ValueError, match="fold 2's train list"):
        nnunet_splits(wrong_train, sorted(patients))


@pytest.mark.parametrize("budget, batch", [(500, 12), (500, 5), (500, 50), (40, 12), (3, 12), (250_000, 12),
                                           (94 * 16 * 180, 49)])
def test_budget_schedule_meets_the_budget_in_whole_iterations(budget, batch):
    schedule = budget_schedule(budget, batch)
    assert schedule.batch_size == batch and schedule.iterations <= 250 and schedule.epochs >= 1
    # nearest whole number of iterations per epoch: off by at most half an iteration per epoch (or one
    # iteration when the budget is below one batch)
    assert abs(schedule.slices - budget) <= max(schedule.epochs * batch / 2, batch)
    iterations_total = budget / batch
    if iterations_total >= 10:
        assert schedule.epochs >= 10  # poly decay gets several steps
    environment = schedule.environment()
    assert (int(environment["ISLES_NNUNET_EPOCHS"]) * int(environment["ISLES_NNUNET_ITERATIONS"]) * batch
            == int(environment["ISLES_NNUNET_SLICES"]) == schedule.slices)


def test_budget_schedule_examples_and_bad_input():
    assert (budget_schedule(500, 12).epochs, budget_schedule(500, 12).iterations) == (10, 4)  # 480 slices
    assert (budget_schedule(600_000, 12).epochs, budget_schedule(600_000, 12).iterations) == (200, 250)
    with pytest.raises(ValueError):
        budget_schedule(0, 12)


def _environment_names(trainer: str) -> set[str]:
    """The trainers import nnunetv2, so they are read, not imported: their ENVIRONMENT names."""
    tree = ast.parse((TRAINER_FOLDER / f"{trainer}.py").read_text())
    assert any(isinstance(node, ast.ClassDef) and node.name == trainer for node in tree.body)
    return set(next(ast.literal_eval(node.value) for node in tree.body
                    if isinstance(node, ast.Assign) and node.targets[0].id == "ENVIRONMENT"))


def test_the_trainers_read_exactly_what_the_rows_set():
    assert _environment_names(TRAINER) == set(budget_schedule(500, 12).environment())
    wall_clock = _environment_names(phantom_long_budget.WALL_CLOCK_TRAINER)
    source = Path(phantom_long_budget.__file__).read_text()
    assert wall_clock and all(f'"{name}"' in source for name in wall_clock)


def test_edited_plans_change_only_what_keeps_the_network_valid(tmp_path):
    raw = _raw_dataset(tmp_path / "Dataset018_ISLES2018", ["train_001"])
    nnunet = NnUNetWork(raw, tmp_path / "work", tmp_path / "venv")
    nnunet.preprocessed.mkdir(parents=True)
    stock = {"plans_name": "nnUNetPlans", "configurations": {"2d": {"batch_size": 47, "patch_size": [128, 128],
                                                                     "data_identifier": "nnUNetPlans_2d"}}}
    (nnunet.preprocessed / "nnUNetPlans.json").write_text(json.dumps(stock))
    write_edited_plans(nnunet, {"batch_size": 5, "patch_size": [128, 128]})
    edited = json.loads((nnunet.preprocessed / f"{EDITED_PLANS}.json").read_text())
    assert edited["plans_name"] == EDITED_PLANS
    assert edited["configurations"]["2d"] == {**stock["configurations"]["2d"], "batch_size": 5}  # same data
    assert json.loads((nnunet.preprocessed / "nnUNetPlans.json").read_text()) == stock  # the stock plans stay
    with pytest.raises(NnUNetRowError, match="network topology"):
        write_edited_plans(nnunet, {"patch_size": [64, 64]})
    with pytest.raises(NnUNetRowError, match="only"):
        write_edited_plans(nnunet, {"UNet_base_num_features": 16})
    assert NnUNetVariant("a", TRAINER, {}, {"batch_size": 5}).plans == EDITED_PLANS
    assert NnUNetVariant("b", TRAINER, {}).plans == "nnUNetPlans"


def test_missing_venv_is_one_line_and_nonzero(tmp_path, monkeypatch, capsys):
    patients = _two_slab_patients()
    raw = _raw_dataset(tmp_path / "Dataset018_ISLES2018", sorted(patients))
    splits_file = tmp_path / "splits_final.json"
    splits_file.write_text(json.dumps(create_splits(patients, 4)))
    monkeypatch.setenv("NNUNET_VENV", str(tmp_path / "no_venv"))
    code = main([str(raw), "-o", str(tmp_path / "work"), "-budget", "500", "-splits", str(splits_file)])
    error = capsys.readouterr().err.strip()
    assert code == 1
    assert len(error.splitlines()) == 1
    assert "no nnU-Net v2 virtualenv at" in error and str(tmp_path / "no_venv") in error
    assert "nnunet_venv.sh" in error
    assert not (tmp_path / "work").exists()


def test_dataset_folder_must_follow_nnunet_naming(tmp_path):
    assert dataset_id(tmp_path / "Dataset018_ISLES2018") == 18
    with pytest.raises(NnUNetRowError, match="DatasetXXX_Name"):
        dataset_id(tmp_path / "ISLES2018")


@pytest.mark.parametrize("module", [nnunet_row, nnunet_runner, phantom_long_budget])
def test_our_side_never_imports_nnunetv2(module):
    tree = ast.parse(Path(module.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not any(name.split(".")[0] == "nnunetv2" for name in imported)


def _failing_venv(folder: Path) -> Path:
    """nnU-Net's three commands, each exiting 3: any step the row runs instead of reusing fails it."""
    (folder / "bin").mkdir(parents=True)
    for tool in ("nnUNetv2_plan_and_preprocess", "nnUNetv2_train", "nnUNetv2_predict"):
        script = folder / "bin" / tool
        script.write_text("#!/bin/sh\nexit 3\n")
        script.chmod(0o755)
    return folder


def test_a_rerun_reuses_every_recorded_step_and_reruns_a_missing_prediction(tmp_path):
    patients = _two_slab_patients()
    raw = _raw_dataset(tmp_path / "Dataset018_ISLES2018", sorted(patients))
    (raw / "imagesTs").mkdir()
    tests = ["test_001", "test_002"]
    for case in tests:
        (raw / "imagesTs" / f"{case}_0000.nii.gz").write_bytes(b"")
    splits = create_splits(patients, 4)
    exported = nnunet_splits(splits, sorted(patients))
    work, schedule = tmp_path / "work", budget_schedule(500, 12)
    preprocessed = work / "nnUNet_preprocessed" / raw.name
    preprocessed.mkdir(parents=True)
    (preprocessed / "nnUNetPlans.json").write_text(json.dumps({"configurations": {"2d": {"batch_size": 12}}}))
    (work / "planning.json").write_text(json.dumps({"dataset": str(raw.resolve()), "seconds": 1.0}))
    results = work / "nnUNet_results" / raw.name / f"{TRAINER}__nnUNetPlans__2d"
    for fold, split in enumerate(exported):
        (results / f"fold_{fold}" / "validation").mkdir(parents=True)
        (results / f"fold_{fold}" / "checkpoint_final.pth").write_bytes(b"")
        for case in split["val"]:
            (results / f"fold_{fold}" / "validation" / f"{case}.nii.gz").write_bytes(case.encode())
    row = work / "budget"
    (row / "testing").mkdir(parents=True)
    for case in tests:
        (row / "testing" / f"{case}.nii.gz").write_bytes(b"")
    settings = NnUNetVariant("budget", TRAINER, schedule.environment()).settings()
    (row / "row.json").write_text(json.dumps({
        "dataset": str(raw.resolve()), "splits": exported, "settings": settings,
        "seconds": {"train_fold_0": 1.0, "predict_testing": 1.0}}))
    venv = _failing_venv(tmp_path / "venv")

    folders = nnunet_row.run_nnunet_row(raw, splits, work, 500, venv=venv)
    assert sorted(p.name for p in folders["cv"].iterdir()) == sorted(f"{c}.nii.gz" for c in patients)
    assert (folders["cv"] / "train_001.nii.gz").read_bytes() == b"train_001"
    assert sorted(p.name for p in folders["testing"].iterdir()) == [f"{c}.nii.gz" for c in tests]

    (row / "testing" / "test_002.nii.gz").unlink()  # an incomplete prediction is made again
    with pytest.raises(NnUNetRowError, match=r"nnU-Net predict_testing failed \(exit 3\)"):
        nnunet_row.run_nnunet_row(raw, splits, work, 500, venv=venv)
    (row / "testing" / "test_002.nii.gz").write_bytes(b"")
    with pytest.raises(NnUNetRowError, match=r"nnU-Net train fold 0 failed \(exit 3\)"):
        nnunet_row.run_nnunet_row(raw, splits, work, 600, venv=venv)  # another length: every fold again
