"""Out of GPU memory: the trainer finds which batch size fits and says so in one line (simulated on CPU)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from isles_pipeline.trainers import run as run_module
from isles_pipeline.trainers.data import Batch, SliceSet
from isles_pipeline.trainers.errors import TrainingError
from isles_pipeline.trainers.memory import largest_fitting_batch


class _FakeTrainer:
    """Just what largest_fitting_batch touches; a forward pass 'runs out of memory' above `limit` slices."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.train_data = SliceSet(torch.zeros(8, 2, 4, 4).half(), torch.zeros(8, 4, 4, dtype=torch.uint8),
                                   torch.ones(8, 4, 4).half(), None, torch.tensor([1, 2]), ["x"])
        self.val_data = self.train_data
        self.weight = torch.nn.Parameter(torch.ones(()))
        self.optimizer = torch.optim.SGD([self.weight], lr=0.1)

    def gather(self, data, idx, augmentation, generator) -> Batch:
        x = data.inputs[idx].float()
        return Batch(x[:, :1], x[:, 1:], x[:, :1], x[:, :1], None)

    def autocast(self):
        return torch.autocast("cpu", enabled=False)

    def _device_inputs(self, batch):
        return (batch.frames,)

    def train_module(self, frames):
        if frames.shape[0] > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return {"total": self.weight * frames.sum()}, None


def test_largest_fitting_batch():
    assert largest_fitting_batch(_FakeTrainer(limit=3), below=5) == 3
    assert largest_fitting_batch(_FakeTrainer(limit=0), below=5) == 0


def test_out_of_memory_is_one_line_with_the_batch_that_fits(monkeypatch):
    class OOMTrainer(_FakeTrainer):
        def __init__(self, **kwargs):
            super().__init__(limit=2)
            self.batch_size, self.global_batch_size = 5, 5
            self.fold_folder = None

        def initialize(self):
            pass

        def run_training(self):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    setup = {"trainer_class": OOMTrainer}
    dist = SimpleNamespace(world_size=1, rank=0, is_main=True)
    with pytest.raises(TrainingError, match="out of GPU memory at batch size 5: batch size 2 fits"):
        run_module.train_fold(setup, torch.device("cpu"), dist, False, False, False, False)
