"""The plans drive the optimisation: lr warm-up and step decay, optimiser settings, batch composition."""
from __future__ import annotations

import pytest
import torch
from train_helpers import write_plans_variant

from isles_pipeline.trainers.data import num_foreground, sample_indices
from isles_pipeline.trainers.optim import build_optimizer
from isles_pipeline.trainers.schedule import build_scheduler, lr_factor

SEED_SCHEDULE = {"warmup_epochs": 5, "warmup_start_factor": 0.1, "milestones": [180, 300], "gamma": 0.2}


def test_warmup_then_the_papers_decays():
    f = lambda e: lr_factor(e, **SEED_SCHEDULE)  # noqa: E731
    assert f(0) == pytest.approx(0.1) and f(2.5) == pytest.approx(0.55) and f(5) == 1.0
    assert f(179.9) == 1.0 and f(180) == pytest.approx(0.2) and f(299) == pytest.approx(0.2)
    assert f(300) == pytest.approx(0.04) and f(399) == pytest.approx(0.04)


def test_scheduler_steps_per_iteration_from_the_plans():
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = build_optimizer([weight], {"name": "RMSprop", "lr": 0.002, "alpha": 0.99, "eps": 1e-8,
                                           "momentum": 0.0, "weight_decay": 0.0})
    assert isinstance(optimizer, torch.optim.RMSprop) and optimizer.defaults["alpha"] == 0.99
    scheduler = build_scheduler(optimizer, {**SEED_SCHEDULE, "warmup_epochs": 1, "milestones": [2, 3]}, 4)
    lrs = []
    for _ in range(16):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(0.0002) and lrs[2] == pytest.approx(0.002 * (0.1 + 0.9 * 0.5))
    assert lrs[4:8] == pytest.approx([0.002] * 4) and lrs[8] == pytest.approx(0.0004)
    assert lrs[12] == pytest.approx(0.00008)
    with pytest.raises(ValueError, match="unknown optimizer"):
        build_optimizer([weight], {"name": "Adagrad", "lr": 1.0})


def test_foreground_oversampling_puts_lesion_slices_last():
    assert num_foreground(5, 0.33) == 2 and num_foreground(5, 0.0) == 0 and num_foreground(4, 1.0) == 4
    lesion = torch.tensor([3, 7, 11])
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        idx = sample_indices(20, lesion, 5, 0.33, g)
        assert idx.shape == (5,) and set(idx[-2:].tolist()) <= {3, 7, 11}
    assert sample_indices(20, torch.empty(0, dtype=torch.int64), 5, 0.33, g).shape == (5,)  # no lesion at all


def test_trainer_reads_its_hyper_parameters_from_the_plans(tiny_roots):  # noqa: F811
    from isles_pipeline.trainers.run import prepare

    _, preprocessed, _ = tiny_roots
    write_plans_variant(preprocessed, "ISLESEditedPlans", batch_size=3, foreground_oversampling=1.0,
                        optimizer={"name": "RMSprop", "lr": 0.0123, "alpha": 0.9, "eps": 1e-6, "momentum": 0.1,
                                   "weight_decay": 0.0})
    setup = prepare(18, 0, "ISLESChainTrainer", "ISLESEditedPlans", "2d")
    trainer = setup.pop("trainer_class")(device=torch.device("cpu"), **setup)
    trainer.initialize()
    group = trainer.optimizer.param_groups[0]
    assert group["initial_lr"] == 0.0123 and group["alpha"] == 0.9 and group["momentum"] == 0.1
    params = {id(p) for p in group["params"]}
    assert {id(p) for p in trainer.loss.parameters()} <= params  # networks A and B are optimised too
    batch = trainer.next_train_batch()
    assert batch.maps.shape[0] == 3 and bool((batch.target.flatten(1).amax(1) > 0).all())  # all foreground
    assert batch.maps.shape[1] == len(trainer.config["map_channels"]) == 6
    assert batch.frames.shape[1] == 11 and tuple(batch.maps.shape[-2:]) == tuple(trainer.config["patch_size"])

