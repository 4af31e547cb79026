"""Every row of the paper's Table 1 is a named trainer that trains for an epoch, with its switches."""
from __future__ import annotations

import pytest
import torch

from isles_pipeline.trainers import checkpoint as ckpt
from isles_pipeline.trainers.registry import find_trainer, known_trainers
from isles_pipeline.trainers.run import run_training
from isles_pipeline.trainers.variants import TABLE1
from train_helpers import write_plans_variant

EXPECTED = {  # trainer -> (chain switches, loss switches) that differ along the table
    "ISLESChainTrainer_UNetCE": ({"use_extractor": False, "use_generator": False, "segmentor_se": False,
                                  "segmentor_norm": "batch", "input_bn": False},
                                 {"segmentor_dice": False, "weight_map": False}),
    "ISLESChainTrainer_GD": ({"segmentor_se": False}, {"segmentor_dice": True, "weight_map": False}),
    "ISLESChainTrainer_AUNet": ({"segmentor_se": True, "use_generator": False}, {"weight_map": False}),
    "ISLESChainTrainer_G": ({"use_generator": True, "use_extractor": False}, {"weight_map": False}),
    "ISLESChainTrainer_SDF": ({"segmentor_norm": "batch"}, {"weight_map": True}),
    "ISLESChainTrainer_SN": ({"segmentor_norm": "switch", "use_extractor": False}, {}),
    "ISLESChainTrainer_E": ({"use_extractor": True, "input_bn": False}, {}),
    "ISLESChainTrainer": ({"use_extractor": True, "use_generator": True, "segmentor_se": True,
                           "segmentor_norm": "switch", "input_bn": True}, {"segmentor_dice": True, "weight_map": True}),
}


def test_table1_has_eight_named_rows():
    assert [cls.__name__ for cls in TABLE1] == list(EXPECTED)
    for name in EXPECTED:
        assert find_trainer(name).__name__ == name
    assert {"ISLESChainTrainer_5epochs", "ISLESChainTrainer_1epoch"} <= set(known_trainers())
    assert find_trainer("isles_pipeline.trainers.variants:ISLESChainTrainer_SN").__name__ == "ISLESChainTrainer_SN"


@pytest.fixture(scope="module")
def one_epoch_plans(tiny_pipeline):  # noqa: F811
    write_plans_variant(tiny_pipeline[1], "ISLESVariantPlans", num_epochs=1, iterations_per_epoch=2,
                        val_iterations_per_epoch=1)
    return "ISLESVariantPlans"


@pytest.mark.parametrize("trainer", list(EXPECTED))
def test_variant_trains_one_epoch(trainer, tiny_roots, one_epoch_plans):  # noqa: F811
    folder = run_training(18, 0, trainer, one_epoch_plans, device="cpu")
    state = ckpt.load_checkpoint(folder / ckpt.FINAL)
    chain, loss = EXPECTED[trainer]
    assert {k: state["chain_kwargs"][k] for k in chain} == chain
    assert {k: state["loss_kwargs"][k] for k in loss} == loss
    assert torch.isfinite(torch.tensor(state["logs"]["train_total"])).all()
    terms = {k for k in state["logs"] if k.startswith("train_")}
    assert ("train_segmentor_dice" in terms) == state["loss_kwargs"]["segmentor_dice"]
    assert ("train_extractor" in terms) == state["chain_kwargs"]["use_extractor"]
    assert ("train_generator_pixel" in terms) == state["chain_kwargs"]["use_generator"]  # the phantom has DWI
