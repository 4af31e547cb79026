"""Checkpoints: the contract the predictor reads, written atomically (`isles_pipeline.files.atomic_path`).

Keys: network_weights (IntegratedChain state_dict, unwrapped from DDP / torch.compile), chain_kwargs (to
rebuild it), trainer_name, plans_name, configuration, fold, epoch (epochs completed), and for resuming
optimizer_state, scheduler_state, loss_state (ChainLoss: networks A, B and the lesion head), rng_states,
logs, best_ema (best moving-average pseudo-Dice so far), ema_pseudo_dice.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from isles_pipeline.files import atomic_path

FINAL, BEST, LATEST = "checkpoint_final.pth", "checkpoint_best.pth", "checkpoint_latest.pth"


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside DistributedDataParallel and/or torch.compile wrappers."""
    while True:
        if hasattr(module, "module") and isinstance(module, nn.parallel.DistributedDataParallel):
            module = module.module
        elif hasattr(module, "_orig_mod"):
            module = module._orig_mod
        else:
            return module


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save through `files.atomic_path`: an old checkpoint is replaced only by a complete new one."""
    with atomic_path(Path(path)) as temporary:
        torch.save(obj, temporary)


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


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    """A checkpoint dict (weights_only=False: it holds numpy RNG states and logs, and we wrote it)."""
    return torch.load(path, map_location=map_location, weights_only=False)


def find_resume_checkpoint(fold_folder: Path) -> Path | None:
    """nnU-Net's order for --c: final, then latest."""
    for name in (FINAL, LATEST):
        if (Path(fold_folder) / name).is_file():
            return Path(fold_folder) / name
    return None
