"""Xavier initialisation of every convolution and linear layer (paper 2.4), biases zero."""
from __future__ import annotations

from torch import nn

_WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def xavier_init(module: nn.Module) -> nn.Module:
    """Re-initialise `module`'s conv / transposed-conv / linear weights with Xavier-uniform; returns it."""
    for m in module.modules():
        if isinstance(m, _WEIGHTED):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module
