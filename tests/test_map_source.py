"""The plans' map source: vendor maps, our computed maps (converter's --compute_maps), or both as channels,
through fingerprint, planning, preprocessing, one short training epoch and prediction of new cases."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from train_helpers import DATASET, set_roots

from isles_pipeline.dataset_conversion.convert import convert_isles2018
from isles_pipeline.files import atomic_write_json, read_json
from isles_pipeline.phantom import generate_phantom
from isles_pipeline.planners import api
from isles_pipeline.planners.isles_planner import ISLESPlanner_bothMaps, ISLESPlanner_computedMaps, ISLESSmallPlanner
from isles_pipeline.planners.registry import find_planner
from isles_pipeline.preprocessing.storage import load_preprocessed_case

COMPUTED = ["CBF_computed", "CBV_computed", "MTT_computed", "Tmax_computed"]
VENDOR = ["CBF", "CBV", "MTT", "Tmax"]


class TinyComputedPlanner(ISLESSmallPlanner):
    plans_name, map_source = "TinyComputed", "computed"
    in_plane_downsampling, num_epochs, iterations_per_epoch, val_iterations_per_epoch, num_folds = 4, 1, 1, 1, 2


class TinyBothPlanner(TinyComputedPlanner):
    plans_name, map_source = "TinyBoth", "both"


def _plan(planner_class, preprocessed) -> dict:
    folder = preprocessed / DATASET
    plans = planner_class(read_json(folder / "dataset_fingerprint.json"), read_json(folder / "dataset.json")).plan()
    atomic_write_json(folder / f"{planner_class.plans_name}.json", plans)
    return plans["configurations"]["2d"]


@pytest.fixture(scope="module")
def phantom_four(tmp_path_factory):
    root = tmp_path_factory.mktemp("map_source")
    generate_phantom(root / "TRAINING", num_cases=4, split="TRAINING", seed=3, size=64)
    return root


def test_planner_classes_are_registered_and_refuse_without_computed_maps(tiny_pipeline):
    assert find_planner("ISLESPlanner_computedMaps") is ISLESPlanner_computedMaps
    assert find_planner("ISLESPlanner_bothMaps").map_source == "both"
    fingerprint = read_json(tiny_pipeline[1] / DATASET / "dataset_fingerprint.json")
    dataset = read_json(tiny_pipeline[1] / DATASET / "dataset.json")
    assert ISLESPlanner_bothMaps.plans_name != ISLESSmallPlanner.plans_name
    with pytest.raises(ValueError, match="--compute_maps"):  # the tiny pipeline was converted without it
        ISLESPlanner_computedMaps(fingerprint, dataset).plan()
    vendor = ISLESSmallPlanner(fingerprint, dataset).plan()["configurations"]["2d"]
    assert vendor["map_source"] == "vendor" and vendor["map_channels"][:4] == VENDOR


def test_computed_and_both_map_sources_preprocess_train_and_predict(phantom_four, tmp_path, monkeypatch,
                                                                   single_torch_thread):
    from isles_pipeline.inference.case_inputs import find_input_cases, prepare_case
    from isles_pipeline.inference.predictor import Predictor
    from isles_pipeline.trainers.run import run_training

    raw, preprocessed, results = tmp_path / "raw", tmp_path / "preprocessed", tmp_path / "results"
    set_roots(monkeypatch, raw, preprocessed, results)
    convert_isles2018(phantom_four / "TRAINING", None, dataset_id=18, name="ISLES2018", compute_maps=True)
    fingerprint = api.extract_fingerprint(18)
    assert all(entry["has_computed_maps"] for entry in fingerprint["cases"].values())
    stats = fingerprint["foreground_intensity_properties_per_channel"]
    assert stats["CBF_computed"]["mean"] != stats["CBF"]["mean"]  # physical units, not the vendor's scaling

    computed = _plan(TinyComputedPlanner, preprocessed)
    both = _plan(TinyBothPlanner, preprocessed)
    assert computed["map_channels"] == COMPUTED + ["PWImax_o", "PWImax_p"]
    assert both["map_channels"] == VENDOR + COMPUTED + ["PWImax_o", "PWImax_p"]
    assert both["network"]["chain"]["n_maps"] == 10
    for plans_name, config in (("TinyComputed", computed), ("TinyBoth", both)):
        assert api.preprocess(18, plans_name).failed == {}
        case = load_preprocessed_case(preprocessed / DATASET / config["data_identifier"], "train_001")
        assert case["data"].shape[1] == len(config["input_channels"]) == 11 + len(config["map_channels"])
        assert case["properties"]["channels"] == config["input_channels"]
    data = load_preprocessed_case(preprocessed / DATASET / both["data_identifier"], "train_001")["data"]
    cbf, cbf_computed = (data[:, both["input_channels"].index(n)].astype(np.float32) for n in ("CBF", "CBF_computed"))
    assert np.isfinite(cbf_computed).all() and not np.allclose(cbf, cbf_computed)

    # one short epoch on the computed maps, then the predictor makes the same channels for new cases
    folder = run_training(18, 0, "ISLESChainTrainer", "TinyComputed", device="cpu")
    predictor = Predictor.from_model_folder(folder.parent, [0], device="cpu")
    stored = prepare_case(find_input_cases(raw / DATASET / "imagesTr")[0], predictor.configuration)  # mapsComputedTr
    inputs = tmp_path / "in"
    shutil.copytree(phantom_four / "TRAINING" / "case_1", inputs / "case_1")
    for map_folder in list((inputs / "case_1").glob("SMIR.Brain.XX.O.CT_*")):
        if map_folder.name.split(".")[4] in ("CT_CBF", "CT_CBV", "CT_MTT", "CT_Tmax"):
            shutil.rmtree(map_folder)
    fresh = prepare_case(find_input_cases(inputs)[0], predictor.configuration)  # computed on the fly
    assert stored.properties["channels"] == fresh.properties["channels"] == computed["input_channels"]
    np.testing.assert_allclose(fresh.preprocessed.data.astype(np.float32),
                               stored.preprocessed.data.astype(np.float32), atol=2e-2)
    mask = predictor.predict(fresh.preprocessed.data, fresh.properties).mask
    assert mask.shape == tuple(fresh.properties["original_shape_zyx"])
