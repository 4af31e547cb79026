"""ISLESChainTrainer: the seed's full method (extractor -> generator -> segmentor, trained end to end with
ChainLoss), everything taken from the plans' `network.chain` and `loss` sections.

Variants change `chain_overrides` / `loss_overrides` (see variants.py, Table 1). DWI: when every training
case has a DWI and the chain has a generator, the generator gets the paper's loss (W-weighted L2 + feature
matching through networks A and B); otherwise that loss is off, the generator still learns end to end
through the segmentor's loss, and the log says so.
"""
from __future__ import annotations

import torch
from torch import nn

from isles_pipeline.losses import ChainLoss
from isles_pipeline.networks import IntegratedChain
from isles_pipeline.trainers.base_trainer import BaseTrainer
from isles_pipeline.trainers.checkpoint import unwrap
from isles_pipeline.trainers.data import Batch


class ChainWithLoss(nn.Module):
    """The chain and its loss as one module, so DDP synchronises the loss's networks A and B too."""

    def __init__(self, chain: IntegratedChain, loss: ChainLoss) -> None:
        super().__init__()
        self.chain, self.loss = chain, loss

    def forward(self, frames, maps, target, weight, dwi):
        output = self.chain(frames, maps)
        return self.loss(output, target, weight, dwi), output.segmentor_logits


class ISLESChainTrainer(BaseTrainer):
    """The full method (Table 1, last row: + BN)."""

    chain_overrides: dict = {}
    loss_overrides: dict = {}

    def chain_kwargs(self) -> dict:
        """The plans' chain switches, the maps' channel names (for `excluded_maps`), then the variant's."""
        return {**self.config["network"]["chain"], "map_names": list(self.config["map_channels"]),
                **self.chain_overrides}

    def loss_kwargs(self) -> dict:
        return {**self.config["loss"], **self.loss_overrides}

    def build_network(self) -> nn.Module:
        return IntegratedChain(**self.chain_kwargs())  # Xavier-initialised by its U-Nets

    def build_loss(self) -> nn.Module:
        return ChainLoss(**self.loss_kwargs())

    def build_train_module(self) -> nn.Module:
        return ChainWithLoss(self.network, self.loss)

    @property
    def uses_dwi(self) -> bool:
        return self.train_has_dwi and bool(self.chain_kwargs()["use_generator"])

    def find_unused_parameters(self) -> bool:
        return True  # A, B and the lesion head are idle without DWI; cheap enough to always allow

    def on_train_start(self) -> None:
        super().on_train_start()
        if not self.chain_kwargs()["use_generator"]:
            self.print("no generator in this variant: the DWI is not used")
        elif self.uses_dwi:
            self.print("DWI present in every training case: generator loss on (W-weighted L2 + feature matching)")
        else:
            self.print("no DWI in the training data (or not for every training case): the generator's DWI loss is "
                       "OFF; the generator trains end to end through the segmentor's loss"
                       + (" and the extractor's" if self.chain_kwargs()["use_extractor"] else ""))

    def _device_inputs(self, batch: Batch):
        frames, maps = batch.frames, batch.maps
        if self.acceleration.channels_last:
            frames = frames.contiguous(memory_format=torch.channels_last)
            maps = maps.contiguous(memory_format=torch.channels_last)
        return frames, maps, batch.target, batch.weight, batch.dwi if self.uses_dwi else None

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        self.optimizer.zero_grad(set_to_none=True)
        self.step_begin()
        with self.autocast():
            terms, _ = self.train_module(*self._device_inputs(batch))
        self.backward(terms["total"])
        self.optimizer.step()
        return {k: v.detach() for k, v in terms.items()}

    def validation_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        self.step_begin()
        with self.autocast():
            terms, logits = self.train_module(*self._device_inputs(batch))
        prediction = logits.argmax(dim=1) == 1
        reference = batch.target[:, 0] > 0.5
        return {"loss": terms["total"].float(), "tp": (prediction & reference).sum().float(),
                "fp": (prediction & ~reference).sum().float(), "fn": (~prediction & reference).sum().float()}

    def final_validation_predictor(self):
        """The fold's network as a one-fold ensemble, behind the trainer's own device paths."""
        from isles_pipeline.inference.predictor import Predictor  # SimpleITK: only when validating

        return Predictor.from_networks({self.fold: unwrap(self.network)}, self.config, self.device,
                                       self.batch_size, self.acceleration)

    def checkpoint_state(self) -> dict:
        state = super().checkpoint_state()
        state.update(chain_kwargs=self.chain_kwargs(), loss_kwargs=self.loss_kwargs(), uses_dwi=self.uses_dwi)
        return state
