"""Smoke run of the training-throughput benchmark (not a timing test): it runs and prints slices/s."""
from benchmarks.train_step import main


def test_train_step_benchmark_runs(capsys, single_torch_thread):
    assert main(["--size", "32", "--slices", "6", "--steps", "1", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    assert "slices/s" in out and "data + augmentation" in out and "peak memory" in out
