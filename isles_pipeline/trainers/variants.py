"""Named variants: every row of the paper's Table 1, and training lengths for short runs.

Table 1 rows are cumulative, so each class is the previous row plus one switch (full = ISLESChainTrainer):
  ISLESChainTrainer_UNetCE   one-stage U-Net on CBF, CBV, MTT, Tmax, cross-entropy only      (paper Dice 0.53)
  ISLESChainTrainer_GD       + generalised Dice (-log GD)                                    (0.55)
  ISLESChainTrainer_AUNet    attention U-Net (SE blocks)                                     (0.56)
  ISLESChainTrainer_G        + generator: CBF, CBV, MTT, Tmax, PWImax_p -> pseudo-DWI -> segmentor (0.58)
  ISLESChainTrainer_SDF      + SDF weight map W in the losses                                (0.59)
  ISLESChainTrainer_SN       + switchable norm in the segmentor                              (0.60)
  ISLESChainTrainer_E        + extractor on the 11 CTP frames; the generator reads its feature map, the
                             four maps, PWImax_o and PWImax_p                                (0.61)
  ISLESChainTrainer          + input BN: the full method                                     (0.62)

Inputs follow paper section 3: the one-stage rows feed "the perfusion maps (CBV, CBF, MTT, Tmax)", the
two-stage rows "PWImax_p, CBF, CBV, MTT and Tmax", the three-stage rows the extractor's feature map with all
six (paper 2.4, Fig. 1). So the CTP series enters only where the table says it does: through PWImax_p at G,
through the extractor and PWImax_o at E. Every row reads the same preprocessed data; the chain drops the
`excluded_maps` before its first network. A plans file with extra maps (e.g. the planner's `use_ct`) keeps
them in every row.
"""
from __future__ import annotations

from isles_pipeline.trainers.chain_trainer import ISLESChainTrainer

ONE_STAGE_EXCLUDED = ["PWImax_o", "PWImax_p"]  # paper 3: "perfusion maps (CBV, CBF, MTT, Tmax)"
TWO_STAGE_EXCLUDED = ["PWImax_o"]  # paper 3: "PWImax_p, CBF, CBV, MTT and Tmax are used as the input of the generator"


class ISLESChainTrainer_UNetCE(ISLESChainTrainer):
    chain_overrides = {"use_extractor": False, "use_generator": False, "segmentor_se": False,
                       "segmentor_norm": "batch", "input_bn": False, "excluded_maps": ONE_STAGE_EXCLUDED}
    loss_overrides = {"segmentor_dice": False, "weight_map": False}


class ISLESChainTrainer_GD(ISLESChainTrainer_UNetCE):
    loss_overrides = {**ISLESChainTrainer_UNetCE.loss_overrides, "segmentor_dice": True}


class ISLESChainTrainer_AUNet(ISLESChainTrainer_GD):
    chain_overrides = {**ISLESChainTrainer_GD.chain_overrides, "segmentor_se": True}


class ISLESChainTrainer_G(ISLESChainTrainer_AUNet):
    chain_overrides = {**ISLESChainTrainer_AUNet.chain_overrides, "use_generator": True,
                       "excluded_maps": TWO_STAGE_EXCLUDED}


class ISLESChainTrainer_SDF(ISLESChainTrainer_G):
    loss_overrides = {**ISLESChainTrainer_G.loss_overrides, "weight_map": True}


class ISLESChainTrainer_SN(ISLESChainTrainer_SDF):
    chain_overrides = {**ISLESChainTrainer_SDF.chain_overrides, "segmentor_norm": "switch"}


class ISLESChainTrainer_E(ISLESChainTrainer_SN):
    chain_overrides = {**ISLESChainTrainer_SN.chain_overrides, "use_extractor": True, "excluded_maps": []}


TABLE1 = (ISLESChainTrainer_UNetCE, ISLESChainTrainer_GD, ISLESChainTrainer_AUNet, ISLESChainTrainer_G,
          ISLESChainTrainer_SDF, ISLESChainTrainer_SN, ISLESChainTrainer_E, ISLESChainTrainer)


class ISLESChainTrainer_streamed(ISLESChainTrainer):
    """The full method with training batches streamed from memory-mapped cases (for data that does not fit
    on the GPU; `auto` picks this by itself when needed)."""

    data_mode = "streamed"


class ISLESChainTrainer_noDWI(ISLESChainTrainer):
    """The full method trained as on the public ISLES 2018 release, ignoring any DWI the data has (e.g. the
    phantom's): generator without its DWI loss, trained end to end through the segmentor."""

    use_dwi_if_present = False


class ISLESChainTrainer_1epoch(ISLESChainTrainer):
    num_epochs_override = 1


class ISLESChainTrainer_5epochs(ISLESChainTrainer):
    num_epochs_override = 5


class ISLESChainTrainer_20epochs(ISLESChainTrainer):
    num_epochs_override = 20


class ISLESChainTrainer_100epochs(ISLESChainTrainer):
    num_epochs_override = 100
