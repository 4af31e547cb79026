"""The folds of a trained model as one predictor: rebuild each fold's IntegratedChain from its checkpoint and
average the folds' core probabilities (and pseudo-DWIs), slice by slice.

Checkpoint contract (written by the trainer): a dict with `network_weights` (state_dict), `chain_kwargs`,
`trainer_name`, `plans_name`, `configuration`, `fold`, `epoch`. Folds of different trainers, plans,
configurations or network shapes are refused: their average would be no model at all.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from isles_pipeline.acceleration import Acceleration, resolve_acceleration
from isles_pipeline.inference.compiled import AcceleratedChain
from isles_pipeline.networks.chain import IntegratedChain

IDENTITY_KEYS = ("trainer_name", "plans_name", "configuration")


class MixedFoldsError(ValueError):
    """Checkpoints that do not belong to one model."""


def load_checkpoint(path: Path) -> dict:
    """The checkpoint dict; a clear error when keys of the contract are missing.

    weights_only=False: the trainer's resume state may hold NumPy RNG state, which the safe loader refuses;
    only load checkpoints you trust (as with nnU-Net)."""
    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises many types for a corrupt file
        raise ValueError(f"{path}: cannot load checkpoint ({type(error).__name__}: {error})") from None
    missing = [key for key in ("network_weights", "chain_kwargs", *IDENTITY_KEYS) if key not in checkpoint]
    if missing:
        raise ValueError(f"{path}: not an isles_pipeline checkpoint (missing {missing})")
    return checkpoint


def check_same_model(checkpoints: dict[int, dict], paths: dict[int, Path]) -> None:
    """MixedFoldsError naming the folds when their trainer, plans, configuration or chain differ."""
    folds = sorted(checkpoints)
    first = checkpoints[folds[0]]
    for fold in folds[1:]:
        other = checkpoints[fold]
        for key in IDENTITY_KEYS + ("chain_kwargs",):
            if other[key] != first[key]:
                raise MixedFoldsError(
                    f"refusing to ensemble mixed folds: {key} is {first[key]!r} in fold {folds[0]} "
                    f"({paths[folds[0]]}) but {other[key]!r} in fold {fold} ({paths[fold]})")


def _strip_compile_prefix(state_dict: dict) -> dict:
    prefix = "_orig_mod."
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state_dict.items()}


@dataclass
class EnsembleOutput:
    probabilities: np.ndarray  # (Z, H, W) float32, mean core probability over folds
    pseudo_dwi: Optional[np.ndarray]  # (Z, H, W) float32, mean generator output, None without a generator
    per_fold: Optional[list[np.ndarray]] = None  # each fold's probabilities when asked for


class FoldEnsemble:
    """The chains of several folds, in eval mode on one device."""

    def __init__(self, networks: dict[int, IntegratedChain], identity: dict, device: torch.device,
                 frame_indices: Sequence[int], map_indices: Sequence[int]) -> None:
        self.networks = networks
        self.identity = identity
        self.device = device
        self.frame_indices = list(frame_indices)
        self.map_indices = list(map_indices)

    @property
    def folds(self) -> list[int]:
        return sorted(self.networks)

    @classmethod
    def from_checkpoints(cls, paths: dict[int, Path], configuration: dict, device: torch.device,
                         expected: Optional[dict] = None, acceleration: Optional[Acceleration] = None,
                         batch_size: int = 8) -> "FoldEnsemble":
        """Load fold -> checkpoint path; `expected` (e.g. {"trainer_name": ..., "plans_name": ...}) must match.
        `acceleration` (default: the device's "auto" rule) sets bf16 / channels_last / compile, see compiled.py."""
        acceleration = acceleration or resolve_acceleration(device)
        checkpoints = {fold: load_checkpoint(path) for fold, path in paths.items()}
        check_same_model(checkpoints, paths)
        first = checkpoints[min(checkpoints)]
        for key, value in (expected or {}).items():
            if first[key] != value:
                raise MixedFoldsError(f"{paths[min(checkpoints)]}: {key} is {first[key]!r}, the model folder "
                                      f"says {value!r}")
        networks = {}
        for fold, checkpoint in checkpoints.items():
            network = IntegratedChain(**checkpoint["chain_kwargs"])
            network.load_state_dict(_strip_compile_prefix(checkpoint["network_weights"]))
            networks[fold] = AcceleratedChain(network.to(device).eval(), acceleration, batch_size)
        channels = list(configuration["input_channels"])
        frames = [channels.index(name) for name in configuration["frame_channels"]]
        maps = [channels.index(name) for name in configuration["map_channels"]]
        identity = {key: first[key] for key in IDENTITY_KEYS}
        return cls(networks, identity, device, frames, maps)

    @torch.inference_mode()
    def predict(self, data: np.ndarray, batch_size: int = 8, keep_folds: bool = False) -> EnsembleOutput:
        """data: (Z, C, H, W) as preprocessing writes it. Mean of the folds' softmax core probability."""
        z = data.shape[0]
        total = np.zeros((z,) + data.shape[-2:], np.float64)
        total_dwi = None
        per_fold = [] if keep_folds else None
        for fold in self.folds:
            network = self.networks[fold]
            fold_prob = np.empty((z,) + data.shape[-2:], np.float32)
            for start in range(0, z, batch_size):
                batch = torch.from_numpy(np.asarray(data[start:start + batch_size], np.float32)).to(self.device)
                frames = batch[:, self.frame_indices] if network.extractor is not None else None
                out = network(frames, batch[:, self.map_indices])
                fold_prob[start:start + batch_size] = torch.softmax(out.segmentor_logits.float(), 1)[:, 1].cpu().numpy()
                if out.pseudo_dwi is not None:
                    if total_dwi is None:
                        total_dwi = np.zeros_like(total)
                    total_dwi[start:start + batch_size] += out.pseudo_dwi[:, 0].float().cpu().numpy()
            total += fold_prob
            if per_fold is not None:
                per_fold.append(fold_prob)
        n = len(self.folds)
        dwi = (total_dwi / n).astype(np.float32) if total_dwi is not None else None
        return EnsembleOutput((total / n).astype(np.float32), dwi, per_fold)
