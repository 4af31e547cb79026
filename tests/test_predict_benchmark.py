"""Smoke run of the inference benchmark on a tiny case (figures are not checked: it is not a timed test)."""
from isles_pipeline.benchmarking.inference import parse_args, run


def test_inference_benchmark_runs_on_a_tiny_case():
    result = run(parse_args(["--preset", "small", "--device", "cpu", "--folds", "2", "--slices", "2", "--size", "64",
                             "--frames", "30"]))
    assert result["folds"] == 2 and set(result["seconds"]) == {"preprocessing", "network", "writing", "wall_total"}
    assert result["network_slices_per_s"] > 0
