"""The phantom benchmark protocol on a tiny phantom, real training in two processes: one out-of-fold CV
prediction per TRAINING case, a rerun that trains nothing, lesion and lesion-free cases apart in the tables."""
from __future__ import annotations

import dataclasses

import pytest
from train_helpers import write_plans_variant

from experiments.cross_validation import fold_folder
from experiments.phantom_protocol import ONE_STAGE_ROW, THRESHOLD_ROW, prepare_phantom, run_protocol
from experiments.phantom_results import results_table
from isles_pipeline.imageio.nifti_io import read_array
from isles_pipeline.paths import data_roots_under
from isles_pipeline.phantom.study import PHANTOM_DATASET_ID


def _lesion_count_line(lines, start, part_title):
    part = lines.index(next(line for line in lines if line.startswith(f"== {part_title}")))
    return next(line for line in lines[part:] if line.startswith(start))


def test_cross_validation_protocol_predicts_each_case_out_of_fold_and_resumes(tmp_path):
    bench = prepare_phantom(tmp_path, training_cases=8, testing_cases=2, size=64, planner="ISLESSmallPlanner",
                            num_processes=1)
    write_plans_variant(tmp_path / "ISLES_preprocessed", "ISLESTinyPlans", num_epochs=1, iterations_per_epoch=2,
                        val_iterations_per_epoch=1, batch_size=2)
    bench = dataclasses.replace(bench, plans="ISLESTinyPlans")
    results = run_protocol(bench, [ONE_STAGE_ROW], device="cpu", num_processes=2)

    with data_roots_under(tmp_path):
        splits = bench.splits()
        raw = bench.raw_dataset()
        folders = {fold: fold_folder(PHANTOM_DATASET_ID, ONE_STAGE_ROW, "ISLESTinyPlans", fold) for fold in range(4)}
    training = sorted(p.name[:-len(".nii.gz")] for p in (raw / "labelsTr").iterdir())
    assert len(training) == 8 and sorted(p.name for p in (raw / "imagesTs").glob("*_0000.nii.gz")) == [
        "test_001_0000.nii.gz", "test_002_0000.nii.gz"]
    source = results["cv"]["cv_source"][ONE_STAGE_ROW]
    assert sorted(source) == training  # every TRAINING case once
    for case, fold in source.items():
        assert case in splits[fold]["val"] and case not in splits[fold]["train"]
        gathered = (tmp_path / "cv" / ONE_STAGE_ROW / f"{case}.nii.gz").read_bytes()
        assert gathered == (folders[fold] / "validation" / f"{case}.nii.gz").read_bytes()
    for part in ("cv", "testing"):
        assert set(results[part]["rows"]) == {THRESHOLD_ROW, ONE_STAGE_ROW}
        assert results[part]["rows"][ONE_STAGE_ROW]["num_missing_predictions"] == 0
    assert sorted(results["testing"]["rows"][ONE_STAGE_ROW]["per_case"]) == ["test_001", "test_002"]
    assert results["settings"]["training_slices_per_fold"] == 1 * 2 * 2
    assert all(seconds > 0 for seconds in results["seconds"][ONE_STAGE_ROW]["folds"].values())

    # lesion / lesion-free split of the CV table follows the labels
    lesion = [case for case in training if read_array(raw / "labelsTr" / f"{case}.nii.gz")[0].any()]
    row = results["cv"]["rows"][ONE_STAGE_ROW]
    assert row["lesion_cases"]["cases"] == lesion and row["lesion_free_cases"]["n"] == 8 - len(lesion)
    lines = results_table(results)
    assert _lesion_count_line(lines, "Cases with a reference lesion", "Cross-validation") == (
        f"Cases with a reference lesion (n={len(lesion)}): mean [95 % bootstrap CI]")
    assert _lesion_count_line(lines, "Lesion-free cases", "Cross-validation").startswith(
        f"Lesion-free cases (n={8 - len(lesion)})")
    assert any(line.startswith("Paired differences, row minus ISLESChainTrainer_UNetCE") for line in lines)

    # a rerun trains nothing and gathers the same predictions
    checkpoints = {fold: (folder / "checkpoint_final.pth").stat().st_mtime_ns for fold, folder in folders.items()}
    again = run_protocol(bench, [ONE_STAGE_ROW], device="cpu", num_processes=2)
    assert again["seconds"][ONE_STAGE_ROW]["folds"] == {0: None, 1: None, 2: None, 3: None}
    mtimes = {fold: (folder / "checkpoint_final.pth").stat().st_mtime_ns for fold, folder in folders.items()}
    assert mtimes == checkpoints
    assert again["cv"]["rows"][ONE_STAGE_ROW]["per_case"] == results["cv"]["rows"][ONE_STAGE_ROW]["per_case"]

    # a fold whose validation is incomplete is not finished: only it runs again
    (folders[2] / "validation" / f"{splits[2]['val'][0]}.nii.gz").unlink()
    third = run_protocol(bench, [ONE_STAGE_ROW], folds=[1, 2], device="cpu", num_processes=2)
    assert third["seconds"][ONE_STAGE_ROW]["folds"][1] is None and third["seconds"][ONE_STAGE_ROW]["folds"][2] > 0
    assert sorted(third["cv"]["cv_source"][ONE_STAGE_ROW]) == sorted(splits[1]["val"] + splits[2]["val"])


def test_a_work_folder_of_other_settings_or_of_something_else_is_refused(tmp_path):
    from isles_pipeline.files import atomic_write_json

    atomic_write_json(tmp_path / "phantom_settings.json", {"training_cases": 3})
    (tmp_path / "phantom").mkdir()
    with pytest.raises(ValueError, match="phantom_settings.json: this work folder holds a phantom made with"):
        prepare_phantom(tmp_path, 8, 2, 64, "ISLESSmallPlanner", 1)
    (tmp_path / "phantom_settings.json").unlink()
    with pytest.raises(ValueError, match="not a work folder of this protocol"):
        prepare_phantom(tmp_path, 8, 2, 64, "ISLESSmallPlanner", 1)
