"""The plans carry every value the trainer and predictor read; planners are found by name and overridable."""
import json

import numpy as np
import pytest

from isles_pipeline.planners import api
from isles_pipeline.planners.isles_planner import (
    ISLESFullResolutionPlanner,
    ISLESLongPlanner,
    ISLESPlanner,
    ISLESSmallPlanner,
)
from isles_pipeline.planners.plans import (
    TRAINER_KEYS,
    get_configuration,
    get_key,
    input_channel_positions,
    missing_keys,
)
from isles_pipeline.planners.registry import find_planner
from isles_pipeline.preprocessing.normalization import intensity_statistics

DATASET_JSON = {"channel_names": {"0": "CT", "1": "CBF", "2": "CBV", "3": "MTT", "4": "Tmax"},
                "labels": {"background": 0, "core": 1}, "numTraining": 94, "file_ending": ".nii.gz"}


def fake_fingerprint(in_plane_shapes=None, total_slices=502):
    rng = np.random.default_rng(0)
    names = ("CT", "CBF", "CBV", "MTT", "Tmax", "frames", "PWImax_o", "PWImax_p")
    return {"dataset_name": "Dataset018_ISLES2018", "num_cases": 94,
            "in_plane_shapes": in_plane_shapes or {"256x256": 90, "200x200": 4}, "total_slices": total_slices,
            "num_frames": {"min": 43, "median": 48, "max": 64}, "frame_interval_s": {"min": 1.0, "max": 1.0},
            "foreground_intensity_properties_per_channel": {
                n: intensity_statistics(rng.normal(i * 10, 5, 1000)) for i, n in enumerate(names)},
            "lesion": {"volume_ml": {"median": 12.0}}}


class WiderSegmentorPlanner(ISLESPlanner):
    """A user's variant: a few lines."""
    plans_name = "WiderSegmentorPlans"
    widths = {**ISLESPlanner.widths, "segmentor_base": 96}


@pytest.mark.parametrize("planner", [ISLESPlanner, ISLESSmallPlanner, ISLESLongPlanner, ISLESFullResolutionPlanner,
                                     WiderSegmentorPlanner])
def test_every_trainer_key_is_planned(planner):
    configuration = planner(fake_fingerprint(), DATASET_JSON).plan()["configurations"]["2d"]
    assert missing_keys(configuration) == []
    assert set(configuration["normalization"]) == set(configuration["input_channels"])
    json.dumps(configuration)  # plain JSON


def test_missing_keys_are_reported():
    configuration = ISLESPlanner(fake_fingerprint(), DATASET_JSON).plan()["configurations"]["2d"]
    del configuration["lr_schedule"]["milestones"]
    assert missing_keys(configuration) == ["lr_schedule.milestones"]
    with pytest.raises(KeyError, match="lr_schedule.milestones"):
        get_configuration({"plans_name": "x", "configurations": {"2d": configuration}})


def test_the_seed_values():
    c = ISLESPlanner(fake_fingerprint(), DATASET_JSON).plan()["configurations"]["2d"]
    assert c["patch_size"] == [256, 256] and c["in_plane_size"] == [256, 256]
    assert c["num_frames"] == 11 and len(c["frame_channels"]) == 11 and c["batch_size"] == 5
    assert c["map_channels"] == ["CBF", "CBV", "MTT", "Tmax", "PWImax_o", "PWImax_p"]
    assert c["network"]["chain"]["n_maps"] == 6 and c["network"]["chain"]["depth"] == 4
    assert [c["network"]["chain"][k] for k in ("extractor_base", "generator_base", "segmentor_base")] == [32, 64, 64]
    assert [c["loss"][k] for k in ("lambda1", "lambda2", "lambda3", "lambda4")] == [1.0, 0.002, 1.2, 1.0]
    assert c["optimizer"]["name"] == "RMSprop" and c["optimizer"]["lr"] == 0.002
    assert c["lr_schedule"]["milestones"] == [180, 300] and c["lr_schedule"]["gamma"] == 0.2
    assert c["num_epochs"] == 400
    assert c["iterations_per_epoch"] == 76  # ceil(502 * 3/4 / 5): one pass over a fold's training slices
    assert c["temporal"]["smoothing_kernel_size"] == 5
    assert input_channel_positions(c, ["PWImax_p"]) == [16]


def test_slice_size_comes_from_the_data():
    odd = ISLESPlanner(fake_fingerprint({"200x200": 5, "256x256": 2}), DATASET_JSON)
    assert odd.plan()["configurations"]["2d"]["patch_size"] == [208, 208]  # next multiple of 2**4
    small = ISLESSmallPlanner(fake_fingerprint(), DATASET_JSON).plan()["configurations"]["2d"]
    assert small["patch_size"] == [128, 128] and small["network"]["chain"]["segmentor_base"] == 16
    assert small["num_epochs"] < 20 and small["iterations_per_epoch"] <= 10


def test_the_long_budget_presets():
    """5x the CPU preset's optimizer steps at its half resolution; the full-resolution preset keeps the data's
    slice size and the same widths, with fewer steps (its steps cost ~2.5x)."""
    def steps(c):
        return c["num_epochs"] * c["iterations_per_epoch"]

    small, long, full = (planner(fake_fingerprint(), DATASET_JSON).plan()["configurations"]["2d"]
                         for planner in (ISLESSmallPlanner, ISLESLongPlanner, ISLESFullResolutionPlanner))
    assert steps(long) == 5 * steps(small) == 500 and long["patch_size"] == small["patch_size"] == [128, 128]
    assert full["patch_size"] == [256, 256] and steps(full) == 200
    assert full["network"] == long["network"] == small["network"]
    for c in (long, full):
        assert all(0 < m < c["num_epochs"] for m in c["lr_schedule"]["milestones"])


def test_normalisation_uses_the_clipped_fingerprint_statistics():
    fingerprint = fake_fingerprint()
    c = ISLESPlanner(fingerprint, DATASET_JSON).plan()["configurations"]["2d"]
    stats = fingerprint["foreground_intensity_properties_per_channel"]
    assert c["normalization"]["frame_07"]["clip"] == [stats["frames"]["percentile_00_5"],
                                                      stats["frames"]["percentile_99_5"]]
    assert c["normalization"]["CBF"]["mean"] == stats["CBF"]["clipped_mean"]


def test_planners_by_name():
    assert find_planner("ISLESPlanner") is ISLESPlanner
    assert find_planner("ISLESSmallPlanner") is ISLESSmallPlanner
    assert find_planner(f"{__name__}.WiderSegmentorPlanner") is WiderSegmentorPlanner
    with pytest.raises(ValueError, match="known planners"):
        find_planner("NoSuchPlanner")


def test_plans_are_kept_unless_clean(tmp_path, monkeypatch):
    monkeypatch.setenv("ISLES_raw", str(tmp_path / "raw"))
    monkeypatch.setenv("ISLES_preprocessed", str(tmp_path / "pre"))
    (tmp_path / "raw" / "Dataset018_ISLES2018").mkdir(parents=True)
    folder = tmp_path / "pre" / "Dataset018_ISLES2018"
    folder.mkdir(parents=True)
    (folder / "dataset.json").write_text(json.dumps(DATASET_JSON))
    (folder / "dataset_fingerprint.json").write_text(json.dumps(fake_fingerprint()))
    path = api.plan_experiment(18, "ISLESPlanner")
    plans = json.loads(path.read_text())
    plans["configurations"]["2d"]["batch_size"] = 7  # a hand edit
    path.write_text(json.dumps(plans))
    assert get_key(json.loads(api.plan_experiment(18).read_text())["configurations"]["2d"], "batch_size") == 7
    assert json.loads(api.plan_experiment(18, clean=True).read_text())["configurations"]["2d"]["batch_size"] == 5


def test_trainer_keys_are_unique():
    assert len(TRAINER_KEYS) == len(set(TRAINER_KEYS))


def test_network_and_loss_sections_are_the_constructors_arguments():
    from isles_pipeline.losses.chain_loss import ChainLoss
    from isles_pipeline.networks.chain import IntegratedChain

    c = ISLESSmallPlanner(fake_fingerprint(), DATASET_JSON).plan()["configurations"]["2d"]
    chain = IntegratedChain(**c["network"]["chain"])
    ChainLoss(**c["loss"])
    assert chain.n_maps == len(c["map_channels"]) and chain.n_frames == len(c["frame_channels"])
