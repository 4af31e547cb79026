"""plan-and-preprocess on the digital phantom: the 11 frames bracket the phantom's true arterial arrival."""
import json

import numpy as np

from isles_pipeline.dataset_conversion.convert import convert_isles2018
from isles_pipeline.phantom import generate_phantom
from isles_pipeline.planners import api
from isles_pipeline.preprocessing.storage import load_preprocessed_case


def test_frames_bracket_the_true_aif_arrival(tmp_path, monkeypatch):
    for name in ("raw", "preprocessed", "results"):
        monkeypatch.setenv(f"ISLES_{name}", str(tmp_path / name))
    generate_phantom(tmp_path / "TRAINING", num_cases=4, split="TRAINING", seed=3, size=64)
    convert_isles2018(tmp_path / "TRAINING", None, dataset_id=18, name="ISLES2018")
    result = api.plan_and_preprocess(18, "ISLESPlanner", num_processes=1)
    assert result.failures == {}
    dataset = json.loads((tmp_path / "raw" / "Dataset018_ISLES2018" / "dataset.json").read_text())
    data = tmp_path / "preprocessed" / "Dataset018_ISLES2018" / "ISLESPlans_2d"
    for case, info in dataset["cases"].items():
        truth = json.loads((tmp_path / "TRAINING" / "phantom_truth" / info["source_folder"] / "truth.json").read_text())
        stored = load_preprocessed_case(data, case)
        timing = stored["properties"]["temporal"]
        assert timing["frame_interval_s"] == truth["frame_interval_s"]
        assert timing["num_input_frames"] == truth["num_frames"] == info["num_frames"]
        frame_times = timing["frame_times_s"]
        assert len(frame_times) == 11
        assert frame_times[0] <= truth["aif_arrival_s"] <= frame_times[-1], (case, frame_times, truth["aif_arrival_s"])
        # the arrival falls in the first half of the window: the frames cover the bolus, not only its tail
        assert truth["aif_arrival_s"] < (frame_times[0] + frame_times[-1]) / 2
        assert stored["properties"]["ct_mtt_id"] == truth["ids"]["CT_MTT"]
        assert np.isfinite(stored["data"]).all()
