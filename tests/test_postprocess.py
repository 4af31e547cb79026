"""Connected-component post-processing and its choice on constructed cross-validation cases: the step that
raises mean Dice is picked, and nothing when nothing helps."""
import json

import numpy as np
import pytest
import SimpleITK as sitk

from isles_pipeline.cli.determine_postprocessing import main as determine_main
from isles_pipeline.components import label_components
from isles_pipeline.imageio.nifti_io import write_image
from isles_pipeline.inference.determine_postprocessing import choose_postprocessing, load_postprocessing
from isles_pipeline.inference.postprocessing import (
    apply_postprocessing,
    keep_largest_component,
    plans_connectivity,
    remove_small_components,
)
from isles_pipeline.inference.predictor import CasePrediction
from isles_pipeline.phantom.synthetic import SyntheticCase, write_synthetic_dataset
from isles_pipeline.planners.fingerprint import compute_fingerprint

SPACING = (1.0, 1.0, 1.0)
CANDIDATES = (0.005, 0.05)  # ml: 5 and 50 voxels at 1 mm


def _cube(mask, z, y, x, side):
    mask[z:z + side, y:y + side, x:x + side] = True


def test_remove_small_components_uses_spacing_and_26_connectivity():
    mask = np.zeros((4, 10, 10), bool)
    mask[0, 0, 0] = mask[1, 1, 1] = True  # diagonal neighbours: one component of 2 voxels
    mask[3, 8, 8] = True  # 1 voxel
    # at 2 x 1 x 1 mm a voxel is 0.002 ml: 0.003 ml keeps the pair (0.004) and drops the single voxel
    kept = remove_small_components(mask, 0.003, (2.0, 1.0, 1.0))
    assert kept[0, 0, 0] and kept[1, 1, 1] and not kept[3, 8, 8]
    assert not remove_small_components(mask, 0.003, (1.0, 1.0, 1.0)).any()


def test_keep_largest_component():
    mask = np.zeros((4, 10, 10), bool)
    _cube(mask, 0, 0, 0, 2)
    mask[2, 2, 2] = True  # touches the cube's corner diagonally: part of the largest with 26-connectivity
    _cube(mask, 0, 6, 6, 1)
    largest = keep_largest_component(mask)
    assert largest.sum() == 9 and not largest[0, 6, 6]
    assert not keep_largest_component(np.zeros((2, 2, 2), bool)).any()
    with pytest.raises(ValueError):
        apply_postprocessing(mask, [{"name": "dilate"}], SPACING)


def _specks_case():
    """Two true lesions (27 and 216 voxels) found, plus 1-voxel false positives."""
    ref = np.zeros((12, 20, 20), bool)
    _cube(ref, 0, 0, 0, 6)
    _cube(ref, 8, 14, 14, 3)
    pred = ref.copy()
    pred[0, 19, 0] = pred[11, 0, 19] = pred[5, 10, 10] = True
    return ref, pred, SPACING


def _false_blob_case():
    """One true lesion found plus a 64-voxel false positive (larger than every removal threshold)."""
    ref = np.zeros((12, 20, 20), bool)
    _cube(ref, 0, 0, 0, 6)
    pred = ref.copy()
    _cube(pred, 8, 14, 14, 4)
    return ref, pred, SPACING


def _perfect_multi_lesion_case():
    """A perfect prediction of three lesions of 64, 27 and 4 voxels: every step removes a true lesion."""
    ref = np.zeros((12, 20, 20), bool)
    _cube(ref, 0, 0, 0, 4)
    _cube(ref, 8, 14, 14, 3)
    ref[11, 0, 16:20] = True
    return ref, ref.copy(), SPACING


def test_small_specks_pick_the_smallest_threshold_only():
    result = choose_postprocessing([_specks_case(), _specks_case()], CANDIDATES)
    assert result["chosen"] == "remove_small_components_0.005ml"
    assert result["steps"] == [{"name": "remove_small_components", "min_volume_ml": 0.005}]
    scores = result["mean_dice"]
    assert scores["remove_small_components_0.005ml"] > scores["none"]
    assert scores["remove_small_components_0.05ml"] < scores["remove_small_components_0.005ml"]
    assert scores["keep_largest_component"] < scores["none"]


def test_large_false_positive_picks_keep_largest():
    result = choose_postprocessing([_false_blob_case()], CANDIDATES)
    assert result["chosen"] == "keep_largest_component"
    assert result["steps"] == [{"name": "keep_largest_component"}]


def test_nothing_is_chosen_when_nothing_helps_or_on_ties():
    assert choose_postprocessing([_perfect_multi_lesion_case()], CANDIDATES)["steps"] == []
    ref = np.zeros((4, 8, 8), bool)
    _cube(ref, 0, 0, 0, 4)
    tie = choose_postprocessing([(ref, ref.copy(), SPACING)], CANDIDATES)  # every option scores 1.0
    assert tie["chosen"] == "none" and tie["steps"] == []
    mixed = choose_postprocessing([_specks_case(), _perfect_multi_lesion_case()], CANDIDATES)
    assert mixed["chosen"] == "none"  # the specks' gain (0.006) < the loss of the 4-voxel lesion (0.02)


def _write(mask, path):
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    image.SetSpacing((1.0, 1.0, 1.0))
    write_image(image, path)


def test_cli_uses_existing_folds_and_plans_candidates(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ISLES_raw", str(tmp_path / "raw"))
    monkeypatch.setenv("ISLES_results", str(tmp_path / "results"))
    labels = tmp_path / "raw" / "Dataset018_ISLES2018" / "labelsTr"
    model = tmp_path / "results" / "Dataset018_ISLES2018" / "T__P__2d"
    plans = {"configurations": {"2d": {"postprocessing": {"min_component_ml_candidates": [0.0, 0.005]}}}}
    model.mkdir(parents=True)
    (model / "plans.json").write_text(json.dumps(plans))
    for fold, name in ((0, "c1"), (2, "c2")):  # folds 1 and 3 were not trained
        ref, pred, _ = _specks_case()
        _write(ref, labels / f"{name}.nii.gz")
        _write(pred, model / f"fold_{fold}" / "validation" / f"{name}.nii.gz")
    assert determine_main(["-d", "18", "-tr", "T", "-p", "P"]) == 0
    out = capsys.readouterr().out
    assert "folds used: [0, 2]" in out and "chosen: remove_small_components_0.005ml" in out
    saved = json.loads((model / "postprocessing.json").read_text())
    assert saved["folds"] == [0, 2] and saved["candidates_ml_source"] == "plans" and saved["connectivity"] == 3
    assert load_postprocessing(model) == [{"name": "remove_small_components", "min_volume_ml": 0.005}]
    assert determine_main(["-d", "18", "-tr", "Other", "-p", "P"]) == 1
    assert "no trained model" in capsys.readouterr().err


def _corner_touching():
    """A 2 x 2 x 2 cube and a voxel touching only its corner: one component with 26-connectivity, two with 6."""
    mask = np.zeros((4, 8, 8), bool)
    _cube(mask, 0, 0, 0, 2)
    mask[2, 2, 2] = True
    return mask


def test_plans_connectivity_defines_the_components():
    mask = _corner_touching()
    assert plans_connectivity({"postprocessing": {"connectivity": 1}}) == 1
    assert plans_connectivity({}) == 3  # plans that predate the key: 26-connectivity
    with pytest.raises(ValueError, match="connectivity must be 1, 2 or 3"):
        plans_connectivity({"postprocessing": {"connectivity": 26}})
    assert [label_components(mask, c)[1] for c in (1, 2, 3)] == [2, 2, 1]
    assert keep_largest_component(mask, 1).sum() == 8 and keep_largest_component(mask, 3).sum() == 9
    assert CasePrediction(mask, mask.astype(np.float32), None, SPACING, connectivity=1).lesion_count == 2
    assert CasePrediction(mask, mask.astype(np.float32), None, SPACING).lesion_count == 1


def test_a_plans_connectivity_of_1_is_used_to_choose_and_recorded(tmp_path, monkeypatch):
    """keep-largest only helps when the corner voxel (a false positive here) is its own component."""
    monkeypatch.setenv("ISLES_raw", str(tmp_path / "raw"))
    monkeypatch.setenv("ISLES_results", str(tmp_path / "results"))
    labels = tmp_path / "raw" / "Dataset018_ISLES2018" / "labelsTr"
    model = tmp_path / "results" / "Dataset018_ISLES2018" / "T__P__2d"
    prediction = _corner_touching()
    reference = prediction.copy()
    reference[2, 2, 2] = False
    _write(reference, labels / "c1.nii.gz")
    _write(prediction, model / "fold_0" / "validation" / "c1.nii.gz")
    chosen = {}
    for connectivity in (3, 1):
        plans = {"configurations": {"2d": {"postprocessing": {"min_component_ml_candidates": [0.0],
                                                                "connectivity": connectivity}}}}
        (model / "plans.json").write_text(json.dumps(plans))
        assert determine_main(["-d", "18", "-tr", "T", "-p", "P"]) == 0
        saved = json.loads((model / "postprocessing.json").read_text())
        assert saved["connectivity"] == connectivity
        chosen[connectivity] = saved["chosen"]
    assert chosen == {3: "none", 1: "keep_largest_component"}
    assert load_postprocessing(model, 1) == [{"name": "keep_largest_component"}]
    with pytest.raises(ValueError, match="chosen with connectivity 1, but the plans now say 3"):
        load_postprocessing(model, 3)


def test_fingerprint_counts_lesions_with_the_plans_connectivity(tmp_path):
    raw = write_synthetic_dataset(tmp_path, [SyntheticCase("c1", size_yx=(32, 32), slices=4, num_frames=20)])
    image = sitk.ReadImage(str(raw / "labelsTr" / "c1.nii.gz"))
    label = sitk.GetImageFromArray(_corner_touching().astype(np.uint8).repeat(4, 1).repeat(4, 2))
    label.CopyInformation(image)
    sitk.WriteImage(label, str(raw / "labelsTr" / "c1.nii.gz"))
    default = compute_fingerprint(raw)
    assert default["lesion"]["connectivity"] == 3
    assert len(default["cases"]["c1"]["lesion_components_ml"]) == 1
    assert len(compute_fingerprint(raw, connectivity=1)["cases"]["c1"]["lesion_components_ml"]) == 2
