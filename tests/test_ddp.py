"""Two-process data-parallel training on the CPU (gloo, spawned by -num_gpus 2): it trains, rank 0 alone
writes one set of files, and the global batch is split over the ranks."""
from __future__ import annotations

import pytest

from isles_pipeline.trainers import checkpoint as ckpt
from isles_pipeline.trainers.distributed import local_batch_size
from isles_pipeline.trainers.run import run_training
from test_train import tiny_pipeline, tiny_roots, write_plans_variant  # noqa: F401 (fixtures)


def test_global_batch_is_split_over_ranks():
    assert [local_batch_size(5, 2, r) for r in range(2)] == [3, 2]
    assert sum(local_batch_size(5, 4, r) for r in range(4)) == 5
    with pytest.raises(ValueError):
        local_batch_size(1, 2, 0)


def test_two_process_gloo_training_writes_one_set_of_files(tiny_roots):  # noqa: F811
    _, preprocessed, results = tiny_roots
    write_plans_variant(preprocessed, "ISLESDDPPlans", num_epochs=2, iterations_per_epoch=3,
                        val_iterations_per_epoch=1)
    folder = run_training(18, 0, "ISLESChainTrainer", "ISLESDDPPlans", device="cpu", num_gpus=2)
    log = (folder / "training_log.txt").read_text()
    assert "batch 5 over 2 process(es)" in log
    assert log.count("epoch 0:") == 1 and log.count("epoch 1:") == 1  # one writer
    final = ckpt.load_checkpoint(folder / ckpt.FINAL)
    assert final["epoch"] == 2 and len(final["rng_states"]["trainer_per_rank"]) == 2
    assert not any(k.startswith("module.") for k in final["network_weights"])  # unwrapped from DDP
    assert (folder / "validation" / "summary.json").is_file()
    leftovers = [p.name for p in folder.rglob("*") if p.name.startswith(".")]
    assert leftovers == []
