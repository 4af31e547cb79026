"""ISLES 2024 end to end on the phantom (4 subjects, 64 x 64, 24 frames, oblique grids, 2 slices outside the
CTP coverage at each end): the planner's choices (slice size, coverage crop), the generator trained on the
follow-up DWI, and predictions written back on the NCCT grid, background outside the coverage."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from isles_pipeline.cli.predict import main as predict_main
from isles_pipeline.dataset_conversion.isles2024_convert import convert_isles2024
from isles_pipeline.errors import CaseError
from isles_pipeline.files import atomic_write_json, read_json
from isles_pipeline.imageio.case_images import Geometry
from isles_pipeline.phantom.isles2024_writer import write_isles2024_phantom
from isles_pipeline.planners import api
from isles_pipeline.planners.isles_planner import ISLESPlanner, ISLESSmallPlanner
from isles_pipeline.preprocessing.coverage import coverage_of, covered_slices, crop_geometry, pad_to_original
from isles_pipeline.preprocessing.storage import load_preprocessed_case
from isles_pipeline.trainers import checkpoint as ckpt
from isles_pipeline.trainers.run import run_training

DATASET = "Dataset024_ISLES2024"


def _roots(mp, root: Path) -> None:
    for name in ("raw", "preprocessed", "results"):
        mp.setenv(f"ISLES_{name}", str(root / name))


@pytest.fixture(scope="module")
def isles24(tmp_path_factory):
    root = tmp_path_factory.mktemp("isles24_pipeline")
    mp = pytest.MonkeyPatch()
    _roots(mp, root)
    try:
        write_isles2024_phantom(root / "train", num_cases=4, seed=3, size=64, num_frames=24, oblique=True)
        assert convert_isles2024(root / "train").failures == []
        assert api.plan_and_preprocess(24, "ISLESSmallPlanner").failures == {}
        plans = read_json(root / "preprocessed" / DATASET / "ISLESSmallPlans.json")
        plans["plans_name"] = "ISLES24TinyPlans"
        plans["configurations"]["2d"].update(num_epochs=1, iterations_per_epoch=2, val_iterations_per_epoch=1)
        atomic_write_json(root / "preprocessed" / DATASET / "ISLES24TinyPlans.json", plans)
    finally:
        mp.undo()
    return root


def test_planner_resamples_large_grids_near_256_and_keeps_isles2018_sizes():
    def size(planner, shape):
        return planner({"in_plane_shapes": {shape: 3}}, {}).in_plane_size()

    assert size(ISLESPlanner, "512x512") == [256, 256] and size(ISLESSmallPlanner, "512x512") == [128, 128]
    assert size(ISLESPlanner, "256x256") == [256, 256] and size(ISLESSmallPlanner, "256x256") == [128, 128]
    assert size(ISLESPlanner, "64x64") == [64, 64]
    fingerprint = {"in_plane_shapes": {"512x512": 2}, "shapes": [[40, 512, 512]] * 2,
                   "spacings": [[1.0, 0.45, 0.45], [1.0, 0.4, 0.4]]}
    assert ISLESPlanner(fingerprint, {}).in_plane_spacing_mm([256, 256]) == pytest.approx(0.85)


def test_coverage_crop_and_back_mapping_are_inverse():
    grid = Geometry((4, 4, 10), (0.5, 0.5, 2.0), (1.0, 2.0, 3.0), (1, 0, 0, 0, 0.8, -0.6, 0, 0.6, 0.8))
    cropped = crop_geometry(grid, 3, 7)
    assert cropped.size == (4, 4, 4)
    np.testing.assert_allclose(cropped.origin, (1.0, 2.0 - 0.6 * 6.0, 3.0 + 0.8 * 6.0))  # along the tilted z
    frames = np.zeros((3, 10, 2, 2), np.int16)
    frames[1, 3, 0, 0] = frames[2, 6, 1, 1] = -5  # any frame, any voxel, any sign
    assert covered_slices(frames, "c") == (3, 7) and coverage_of(frames, "c", None) == (3, 7)
    assert coverage_of(frames, "c", [2, 8]) == (2, 8)  # the converter's record wins where there is one
    with pytest.raises(CaseError, match="outside the 10 slices"):
        coverage_of(frames, "c", [2, 11])
    with pytest.raises(CaseError, match="no coverage"):
        covered_slices(np.zeros_like(frames), "c")
    array = np.arange(4 * 2 * 2).reshape(4, 2, 2) + 1
    padded = pad_to_original(array, [3, 7], 10)
    assert padded.shape == (10, 2, 2) and padded[:3].sum() == 0 and padded[7:].sum() == 0
    np.testing.assert_array_equal(padded[3:7], array)


def test_isles2024_plans_preprocess_train_on_dwi_and_predict_on_the_ncct_grid(isles24, monkeypatch, tmp_path,
                                                                               single_torch_thread):
    _roots(monkeypatch, isles24)
    monkeypatch.setenv("ISLES_results", str(tmp_path / "results"))
    config = read_json(isles24 / "preprocessed" / DATASET / "ISLESSmallPlans.json")["configurations"]["2d"]
    assert config["ctp_coverage_crop"] is True and config["in_plane_size"] == [32, 32]
    raw = isles24 / "raw" / DATASET
    dataset = read_json(raw / "dataset.json")
    case = load_preprocessed_case(isles24 / "preprocessed" / DATASET / config["data_identifier"], "stroke_0001")
    first, last = dataset["cases"]["stroke_0001"]["ctp_coverage_z"]
    assert case["properties"]["crop_z"] == [first, last] and case["data"].shape[0] == last - first
    assert case["dwi"] is not None and case["dwi"].shape[0] == last - first  # the generator's target

    folder = run_training(24, 0, "ISLESChainTrainer", "ISLES24TinyPlans", device="cpu")
    assert "DWI present in every training case" in (folder / "training_log.txt").read_text()
    assert ckpt.load_checkpoint(folder / ckpt.FINAL)["uses_dwi"] is True

    out = tmp_path / "predicted"
    assert predict_main(["-i", str(raw / "imagesTr"), "-o", str(out), "-d", "24", "-p", "ISLES24TinyPlans",
                         "-f", "0", "-device", "cpu", "--save_probabilities", "--disable_postprocessing"]) == 0
    for name, record in dataset["cases"].items():
        ncct = sitk.ReadImage(str(raw / "imagesTr" / f"{name}_0000.nii.gz"))
        mask = sitk.ReadImage(str(out / f"{name}.nii.gz"))
        assert mask.GetSize() == ncct.GetSize()
        np.testing.assert_allclose(mask.GetDirection(), ncct.GetDirection(), atol=1e-6)  # oblique kept
        np.testing.assert_allclose(mask.GetOrigin(), ncct.GetOrigin(), atol=1e-4)
        probabilities = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "probabilities" / f"{name}.nii.gz")))
        first, last = record["ctp_coverage_z"]
        assert probabilities[:first].max() == 0 and probabilities[last:].max() == 0
        assert probabilities[first:last].max() > 0  # a random network is not exactly 0 where it ran
