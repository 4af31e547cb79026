"""The checkpoint contract, one owner: file names, required keys, atomic saving and checked loading. The trainer
writes checkpoints, the predictor and the trainer's resume read them.

Keys: network_weights (IntegratedChain state_dict, unwrapped from DDP / torch.compile), chain_kwargs (to
rebuild it), trainer_name, plans_name, configuration, fold, epoch (epochs completed), and for resuming
optimizer_state, scheduler_state, loss_state (ChainLoss: networks A, B and the lesion head), rng_states,
logs, best_ema (best moving-average pseudo-Dice so far), ema_pseudo_dice.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from isles_pipeline.files import atomic_path

FINAL, BEST, LATEST = "checkpoint_final.pth", "checkpoint_best.pth", "checkpoint_latest.pth"
IDENTITY_KEYS = ("trainer_name", "plans_name", "configuration")
REQUIRED_KEYS = ("network_weights", "chain_kwargs", *IDENTITY_KEYS)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save through `files.atomic_path`: an old checkpoint is replaced only by a complete new one."""
    with atomic_path(Path(path)) as temporary:
        torch.save(obj, temporary)


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    """The checkpoint dict; ValueError in one line for a file that is not one of ours or is corrupt.

    weights_only=False: the trainer's resume state holds NumPy RNG state, which the safe loader refuses;
    only load checkpoints you trust (as with nnU-Net)."""
    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as error:  # torch raises many types for a corrupt file
        raise ValueError(f"{path}: cannot load checkpoint ({type(error).__name__}: {error})") from None
    missing = [key for key in REQUIRED_KEYS if not isinstance(checkpoint, dict) or key not in checkpoint]
    if missing:
        raise ValueError(f"{path}: not an isles_pipeline checkpoint (missing {missing})")
    return checkpoint
