"""The folds of a trained model as one predictor: rebuild each fold's IntegratedChain from its checkpoint and
average the folds' core probabilities (and pseudo-DWIs), slice by slice.

`predict_case` is THE way a network predicts a preprocessed case, used by the fold ensemble of
`isles_predict` and by the trainer's final validation (a one-fold ensemble of the network it just trained), so
the post-processing chosen on the validation predictions is applied to predictions made the same way:
slices in batches, each fold's chain behind `compiled.AcceleratedChain` (bf16 autocast and channels_last on
CUDA by `acceleration.resolve_acceleration`'s "auto" rule, as in training and as nnU-Net predicts; plain
float32 on the CPU; optional torch.compile / CUDA graphs), softmax in float32.

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
from isles_pipeline.checkpoints import IDENTITY_KEYS, load_checkpoint
from isles_pipeline.inference.compiled import AcceleratedChain
from isles_pipeline.networks.chain import IntegratedChain
from isles_pipeline.planners.plans import frame_and_map_positions


class MixedFoldsError(ValueError):
    """Checkpoints that do not belong to one model."""


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


@torch.inference_mode()
def predict_case(network: AcceleratedChain, data: np.ndarray, frame_indices: Sequence[int],
                 map_indices: Sequence[int], device: torch.device,
                 batch_size: int = 8) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """One network on a preprocessed case (Z, C, H, W): (core probability (Z, H, W) float32, pseudo-DWI
    (Z, H, W) float32 or None). The wrapped chain must be in eval mode on `device`; the wrapper applies the
    precision, memory format and compile mode."""
    z = data.shape[0]
    probabilities = np.empty((z,) + data.shape[-2:], np.float32)
    pseudo_dwi = None
    frame_indices, map_indices = list(frame_indices), list(map_indices)
    for start in range(0, z, batch_size):
        batch = torch.from_numpy(np.asarray(data[start:start + batch_size], np.float32)).to(device)
        frames = batch[:, frame_indices] if network.extractor is not None else None
        out = network(frames, batch[:, map_indices])
        probabilities[start:start + batch_size] = torch.softmax(out.segmentor_logits.float(), 1)[:, 1].cpu().numpy()
        if out.pseudo_dwi is not None:
            if pseudo_dwi is None:
                pseudo_dwi = np.empty_like(probabilities)
            pseudo_dwi[start:start + batch_size] = out.pseudo_dwi[:, 0].float().cpu().numpy()
    return probabilities, pseudo_dwi


@dataclass
class EnsembleOutput:
    probabilities: np.ndarray  # (Z, H, W) float32, mean core probability over folds
    pseudo_dwi: Optional[np.ndarray]  # (Z, H, W) float32, mean generator output, None without a generator
    per_fold: Optional[list[np.ndarray]] = None  # each fold's probabilities when asked for


class FoldEnsemble:
    """The chains of several folds, in eval mode on one device."""

    def __init__(self, networks: dict[int, AcceleratedChain], identity: dict, device: torch.device,
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
            networks[fold] = network
        identity = {key: first[key] for key in IDENTITY_KEYS}
        return cls.from_networks(networks, configuration, device, identity, acceleration, batch_size)

    @classmethod
    def from_networks(cls, networks: dict[int, IntegratedChain], configuration: dict, device: torch.device,
                      identity: Optional[dict] = None, acceleration: Optional[Acceleration] = None,
                      batch_size: int = 8) -> "FoldEnsemble":
        """Networks in memory (e.g. the fold a trainer has just trained), moved to `device` in eval mode and
        wrapped with `acceleration` (default: the device's "auto" rule)."""
        acceleration = acceleration or resolve_acceleration(device)
        networks = {fold: AcceleratedChain(network.to(device).eval(), acceleration, batch_size)
                    for fold, network in networks.items()}
        frames, maps = frame_and_map_positions(configuration)
        return cls(networks, dict(identity or {}), device, frames, maps)

    def predict(self, data: np.ndarray, batch_size: int = 8, keep_folds: bool = False) -> EnsembleOutput:
        """data: (Z, C, H, W) as preprocessing writes it. Mean of the folds' softmax core probability."""
        total = np.zeros((data.shape[0],) + data.shape[-2:], np.float64)
        total_dwi = None
        per_fold = [] if keep_folds else None
        for fold in self.folds:
            probabilities, pseudo_dwi = predict_case(self.networks[fold], data, self.frame_indices,
                                                     self.map_indices, self.device, batch_size)
            total += probabilities
            if pseudo_dwi is not None:
                total_dwi = pseudo_dwi.astype(np.float64) if total_dwi is None else total_dwi + pseudo_dwi
            if per_fold is not None:
                per_fold.append(probabilities)
        n = len(self.folds)
        dwi = (total_dwi / n).astype(np.float32) if total_dwi is not None else None
        return EnsembleOutput((total / n).astype(np.float32), dwi, per_fold)
