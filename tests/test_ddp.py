"""Two-process data-parallel training on the CPU (gloo, spawned by -num_gpus 2): it trains, rank 0 alone
writes one set of files, the global batch is split over the ranks, and a step on an uneven split is the step
of one process on the whole batch."""
from __future__ import annotations

import os

import pytest
import torch
from train_helpers import write_plans_variant

from isles_pipeline.networks import IntegratedChain
from isles_pipeline.trainers import checkpoint as ckpt
from isles_pipeline.trainers.chain_trainer import ISLESChainTrainer
from isles_pipeline.trainers.distributed import local_batch_size
from isles_pipeline.trainers.run import run_training


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


class OneFixedBatchTrainer(ISLESChainTrainer):
    """Every step trains on the same global batch (slices 0, 1, 2; each rank takes its consecutive share), with
    nothing that depends on the batch's composition: no norm layers, no input BN, no generalised Dice (batch
    statistics and GD are computed over a rank's slices, so they cannot be split). What is left is a mean over
    slices, which the ranks' loss weighting must turn back into the global batch's mean. (Instance norm is
    per slice too, but at random initialisation it divides near-constant channels by their tiny spread and
    blows float32 rounding of batch-2 vs batch-3 convolutions up to a few % of a gradient.)"""

    chain_overrides = {"norm": "none", "segmentor_norm": "none", "input_bn": False}
    loss_overrides = {"segmentor_dice": False}

    def next_train_batch(self):
        start = sum(local_batch_size(self.global_batch_size, self.dist.world_size, r) for r in range(self.dist.rank))
        return self.gather(self.train_data, torch.arange(start, start + self.batch_size), None, None)


def test_uneven_split_step_equals_the_one_process_step(tiny_roots, monkeypatch, tmp_path):  # noqa: F811
    """Global batch 3 over 2 ranks (2 + 1 slices), one SGD step: the same parameters as one process."""
    _, preprocessed, _ = tiny_roots
    write_plans_variant(preprocessed, "ISLESDDPStepPlans", batch_size=3, num_epochs=1, iterations_per_epoch=1,
                        val_iterations_per_epoch=1,
                        optimizer={"name": "SGD", "lr": 2.0, "alpha": 0.99, "eps": 1e-8, "momentum": 0.0,
                                               "weight_decay": 0.0})
    weights = {}
    for processes in (1, 2):
        monkeypatch.setenv("ISLES_results", str(tmp_path / f"p{processes}"))
        folder = run_training(18, 0, OneFixedBatchTrainer, "ISLESDDPStepPlans", device="cpu", num_gpus=processes)
        state = ckpt.load_checkpoint(folder / ckpt.FINAL)
        weights[processes] = state["network_weights"]
    torch.manual_seed(OneFixedBatchTrainer.seed)  # as BaseTrainer.initialize: the weights before the step
    initial = IntegratedChain(**state["chain_kwargs"]).state_dict()
    largest_step = 0.0
    for key, before in initial.items():
        single, ddp = weights[1][key] - before, weights[2][key] - before
        # The step agrees to 1e-3 of the tensor's largest step, or to 1e-6: a few float32 roundings of weights near
        # 1 (batch-2 + batch-1 against batch-3 summation orders). Without the rank weighting the steps differ by
        # up to 32x, far outside this.
        torch.testing.assert_close(ddp, single, rtol=1e-3, atol=1e-3 * float(single.abs().max()) + 1e-6,
                                   msg=lambda m, key=key: f"{key}: {m}")
        largest_step = max(largest_step, float(single.abs().max()))
    assert largest_step > 1e-2  # the step was large against the tolerance
