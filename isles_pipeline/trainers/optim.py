"""The optimiser named by the plans (the seed's RMSprop), over the chain's and the loss's parameters."""
from __future__ import annotations

from typing import Iterable, Mapping

import torch

OPTIMIZERS = {"RMSprop": torch.optim.RMSprop, "Adam": torch.optim.Adam, "SGD": torch.optim.SGD}


def build_optimizer(parameters: Iterable[torch.nn.Parameter], settings: Mapping) -> torch.optim.Optimizer:
    """From the plans' `optimizer` section: {"name", "lr", and the optimiser's own keyword arguments}."""
    settings = dict(settings)
    name = settings.pop("name")
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r} in the plans; known: {sorted(OPTIMIZERS)}")
    if name != "RMSprop":
        settings.pop("alpha", None)
    if name == "Adam":
        settings.pop("momentum", None)
    if name == "SGD":
        settings.pop("eps", None)  # the plans always carry eps (RMSprop's); SGD has none
    return OPTIMIZERS[name](list(parameters), **settings)
