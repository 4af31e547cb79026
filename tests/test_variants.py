"""Every row of the paper's Table 1 is a named trainer that trains for an epoch, with its switches."""
from __future__ import annotations

import pytest
import torch
from train_helpers import write_plans_variant

from isles_pipeline.networks import IntegratedChain
from isles_pipeline.networks.presets import preset
from isles_pipeline.trainers import checkpoint as ckpt
from isles_pipeline.trainers.registry import find_trainer, known_trainers
from isles_pipeline.trainers.run import run_training
from isles_pipeline.trainers.variants import TABLE1

EXPECTED = {  # trainer -> (chain switches, loss switches) that differ along the table
    "ISLESChainTrainer_UNetCE": ({"use_extractor": False, "use_generator": False, "segmentor_se": False,
                                  "segmentor_norm": "batch", "input_bn": False,
                                  "excluded_maps": ["PWImax_o", "PWImax_p"]},
                                 {"segmentor_dice": False, "weight_map": False}),
    "ISLESChainTrainer_GD": ({"segmentor_se": False}, {"segmentor_dice": True, "weight_map": False}),
    "ISLESChainTrainer_AUNet": ({"segmentor_se": True, "use_generator": False}, {"weight_map": False}),
    "ISLESChainTrainer_G": ({"use_generator": True, "use_extractor": False, "excluded_maps": ["PWImax_o"]},
                            {"weight_map": False}),
    "ISLESChainTrainer_SDF": ({"segmentor_norm": "batch"}, {"weight_map": True}),
    "ISLESChainTrainer_SN": ({"segmentor_norm": "switch", "use_extractor": False}, {}),
    "ISLESChainTrainer_E": ({"use_extractor": True, "input_bn": False, "excluded_maps": []}, {}),
    "ISLESChainTrainer": ({"use_extractor": True, "use_generator": True, "segmentor_se": True,
                           "segmentor_norm": "switch", "input_bn": True}, {"segmentor_dice": True, "weight_map": True}),
}


def test_table1_has_eight_named_rows():
    assert [cls.__name__ for cls in TABLE1] == list(EXPECTED)
    for name in EXPECTED:
        assert find_trainer(name).__name__ == name
    assert {"ISLESChainTrainer_5epochs", "ISLESChainTrainer_1epoch"} <= set(known_trainers())
    assert find_trainer("isles_pipeline.trainers.variants:ISLESChainTrainer_SN").__name__ == "ISLESChainTrainer_SN"


SEED_MAPS = ["CBF", "CBV", "MTT", "Tmax", "PWImax_o", "PWImax_p"]
# Paper section 3: what the first network of each row reads (besides the extractor's feature map)
CONSUMED = {"ISLESChainTrainer_UNetCE": SEED_MAPS[:4], "ISLESChainTrainer_GD": SEED_MAPS[:4],
            "ISLESChainTrainer_AUNet": SEED_MAPS[:4],
            "ISLESChainTrainer_G": SEED_MAPS[:4] + ["PWImax_p"], "ISLESChainTrainer_SDF": SEED_MAPS[:4] + ["PWImax_p"],
            "ISLESChainTrainer_SN": SEED_MAPS[:4] + ["PWImax_p"],
            "ISLESChainTrainer_E": SEED_MAPS, "ISLESChainTrainer": SEED_MAPS}


@pytest.mark.parametrize("variant", TABLE1, ids=lambda cls: cls.__name__)
def test_each_row_reads_the_maps_of_the_paper(variant):
    """The first network's input channels, and which maps change the output (eval mode: per-slice norms)."""
    torch.manual_seed(0)
    chain = IntegratedChain(**preset("small")["chain"], map_names=SEED_MAPS, **variant.chain_overrides).eval()
    consumed = CONSUMED[variant.__name__]
    first = chain.generator if chain.generator is not None else chain.segmentor
    assert first.in_channels == len(consumed) + (1 if chain.extractor is not None else 0)
    assert first.encoder[0].conv1.in_channels == first.in_channels
    frames, maps = torch.randn(2, 11, 32, 32), torch.randn(2, 6, 32, 32)
    with torch.no_grad():
        reference = chain(frames, maps).segmentor_logits
        for channel, name in enumerate(SEED_MAPS):
            perturbed = maps.clone()
            perturbed[:, channel] += 3.0 * torch.randn(2, 32, 32)
            changed = not torch.allclose(chain(frames, perturbed).segmentor_logits, reference)
            assert changed == (name in consumed), name


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
