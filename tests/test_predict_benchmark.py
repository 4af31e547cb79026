"""The inference benchmark on a tiny case: every stage timed on its own (figures are not checked: it is not a
timed test), and its stage-by-stage path gives the predictor's own mask, so the stages time what users run."""
import numpy as np
import pytest

from benchmarks import inference as benchmark

pytestmark = pytest.mark.usefixtures("single_torch_thread")

TINY = ["--preset", "small", "--device", "cpu", "--folds", "2", "--slices", "2", "--size", "64", "--frames", "30",
        "--threads", "1"]
STAGES = {"loading", "preprocessing", "network", "resampling", "postprocessing", "writing"}


def test_inference_benchmark_times_each_stage_apart():
    result = benchmark.run(benchmark.parse_args(TINY + ["--end-to-end"]))
    seconds = result["seconds"]
    assert result["folds"] == 2 and set(seconds) == STAGES | {"stages_total", "end_to_end_wall"}
    assert all(seconds[stage] > 0 for stage in STAGES)
    assert seconds["stages_total"] == pytest.approx(sum(seconds[stage] for stage in STAGES), abs=1e-3)
    assert result["network_ms_per_case"] == pytest.approx(1000 * seconds["network"], abs=0.1)
    assert result["network_slices_per_s"] > 0 and result["warmup_passes"] == 0


def test_staged_path_reproduces_the_predictor(tmp_path):
    from isles_pipeline.inference.case_inputs import find_input_cases, prepare_case
    from isles_pipeline.inference.predictor import Predictor
    from isles_pipeline.paths import data_roots_under

    args = benchmark.parse_args(TINY)
    with data_roots_under(tmp_path):
        model, images = benchmark._build(args)
        predictor = Predictor.from_model_folder(model, device="cpu", batch_size=args.batch)
        prepared = prepare_case(find_input_cases(images)[0], predictor.configuration)
        expected = predictor.predict(prepared.preprocessed.data, prepared.properties)
        staged, seconds = benchmark.staged_prediction(predictor, prepared, tmp_path / "case.nii.gz")
    np.testing.assert_array_equal(staged.mask, expected.mask)
    np.testing.assert_allclose(staged.probabilities, expected.probabilities)
    assert staged.spacing_zyx == expected.spacing_zyx and (tmp_path / "case.nii.gz").is_file()
    assert set(seconds) == {"network", "resampling", "postprocessing", "writing"}
