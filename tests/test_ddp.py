"""Two-process data-parallel training on the CPU (gloo, spawned by -num_gpus 2): it trains, rank 0 alone
writes one set of files, and the global batch is split over the ranks."""
from __future__ import annotations

import os

import pytest
import torch

from isles_pipeline.trainers import checkpoint as ckpt
from isles_pipeline.trainers.distributed import local_batch_size
from isles_pipeline.trainers.chain_trainer import ISLESChainTrainer
from isles_pipeline.trainers.run import run_training
from train_helpers import write_plans_variant


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


class KillableTrainer(ISLESChainTrainer):
    """Stops (raises) after epoch $KILL_AT in every rank; importable by the spawned processes."""

    save_every = 2

    def on_epoch_end(self, *args):
        super().on_epoch_end(*args)
        if os.environ.get("KILL_AT") and self.current_epoch == int(os.environ["KILL_AT"]):
            raise RuntimeError("killed by the test")


def test_two_process_resume_matches_an_uninterrupted_run(tiny_roots, monkeypatch, tmp_path):  # noqa: F811
    _, preprocessed, results = tiny_roots
    write_plans_variant(preprocessed, "ISLESDDPResumePlans", num_epochs=4, iterations_per_epoch=2,
                        val_iterations_per_epoch=1)
    run = lambda **kw: run_training(18, 0, KillableTrainer, "ISLESDDPResumePlans", device="cpu",  # noqa: E731
                                    num_gpus=2, **kw)
    straight = ckpt.load_checkpoint(run() / ckpt.FINAL)
    monkeypatch.setenv("ISLES_results", str(tmp_path / "killed"))
    monkeypatch.setenv("KILL_AT", "2")
    with pytest.raises(Exception, match="killed by the test"):
        run()
    monkeypatch.delenv("KILL_AT")
    resumed = ckpt.load_checkpoint(run(continue_training=True) / ckpt.FINAL)
    for key, value in straight["network_weights"].items():
        assert torch.equal(value, resumed["network_weights"][key]), key
    assert resumed["logs"]["train_total"] == straight["logs"]["train_total"]
