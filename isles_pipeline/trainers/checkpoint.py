"""What the trainer adds to the checkpoint contract (`isles_pipeline.checkpoints`, re-exported here for the
trainer's code): unwrapping DDP / compiled modules, the random streams to resume exactly, the resume order."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from isles_pipeline.checkpoints import BEST, FINAL, LATEST, atomic_torch_save, load_checkpoint

__all__ = ["BEST", "FINAL", "LATEST", "atomic_torch_save", "capture_rng_states", "find_resume_checkpoint",
           "load_checkpoint", "restore_rng_states", "unwrap"]


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside DistributedDataParallel and/or torch.compile wrappers."""
    while True:
        if hasattr(module, "module") and isinstance(module, nn.parallel.DistributedDataParallel):
            module = module.module
        elif hasattr(module, "_orig_mod"):
            module = module._orig_mod
        else:
            return module


def capture_rng_states(generator: torch.Generator) -> dict:
    """Every random stream a training run draws from (global torch/numpy/python, CUDA, the trainer's own)."""
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
              "trainer": generator.get_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    generator.set_state(states["trainer"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def find_resume_checkpoint(fold_folder: Path) -> Path | None:
    """nnU-Net's order for --c: final, then latest."""
    for name in (FINAL, LATEST):
        if (Path(fold_folder) / name).is_file():
            return Path(fold_folder) / name
    return None
