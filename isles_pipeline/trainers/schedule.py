"""Learning-rate schedule of the seed (paper 2.4): linear warm-up, then step decay at epoch milestones.

The factor is a function of the fractional epoch (updated every iteration), so warm-up is smooth and the
schedule's whole state is the iteration counter, which the checkpoint restores.
"""
from __future__ import annotations

import bisect
from typing import Mapping, Sequence

import torch


def lr_factor(epoch: float, warmup_epochs: float, warmup_start_factor: float, milestones: Sequence[int],
              gamma: float) -> float:
    """Multiplier of the base lr at a (fractional) epoch: warm-up from `warmup_start_factor` to 1 over the
    first `warmup_epochs`, then gamma ** (number of milestones reached)."""
    if warmup_epochs > 0 and epoch < warmup_epochs:
        return warmup_start_factor + (1.0 - warmup_start_factor) * epoch / warmup_epochs
    return float(gamma) ** bisect.bisect_right(sorted(milestones), epoch)


def build_scheduler(optimizer: torch.optim.Optimizer, schedule: Mapping, iterations_per_epoch: int
                    ) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR stepped once per iteration, from the plans' `lr_schedule` section."""
    warmup = float(schedule["warmup_epochs"])
    start = float(schedule["warmup_start_factor"])
    milestones = [int(m) for m in schedule["milestones"]]
    gamma = float(schedule["gamma"])
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step / iterations_per_epoch, warmup, start, milestones, gamma))
