"""Training slices of a fold, and batches drawn from them with foreground oversampling.

Resident path (the usual one): every slice of the fold's cases is loaded once into device tensors (float16
inputs, W and DWI, uint8 labels), so a batch is an index operation on the device and nothing waits on CPU
workers. `fits_on_device` decides; the streamed path (`streaming.py`) is for datasets that do not fit.
`gather_batch` serves both: streamed batches arrive as small host SliceSets and are copied over there.

Foreground oversampling as nnU-Net does it: of a batch of B slices, the last B - round(B (1 - f)) are drawn
among slices with lesion (f = plans' foreground_oversampling), the others among all slices.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from isles_pipeline.preprocessing.storage import load_preprocessed_case
from isles_pipeline.trainers.errors import TrainingError


@dataclass
class SliceSet:
    """All slices of some cases, stacked along axis 0."""

    inputs: torch.Tensor  # (S, C, H, W) float16, channels in the plans' input_channels order
    seg: torch.Tensor  # (S, H, W) uint8
    weight: torch.Tensor  # (S, H, W) float16
    dwi: Optional[torch.Tensor]  # (S, H, W) float16, None unless every case has a DWI
    lesion_slices: torch.Tensor  # (L,) int64 indices of slices with foreground
    cases: list[str]

    @property
    def num_slices(self) -> int:
        return int(self.inputs.shape[0])


def nbytes_of_cases(folder: Path, cases: Sequence[str]) -> int:
    """Bytes the cases' arrays take (what a resident SliceSet needs)."""
    total = 0
    for case in cases:
        stored = load_preprocessed_case(folder, case)
        total += sum(a.nbytes for k, a in stored.items() if k != "properties" and a is not None)
    return total


def fits_on_device(nbytes: int, device: torch.device, fraction: float = 0.3) -> bool:
    """CPU: always (the arrays are in RAM either way). CUDA: when they take under `fraction` of free memory,
    leaving the rest to activations."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes < fraction * free


def load_slices(folder: Path, cases: Sequence[str], device: torch.device, use_dwi: bool = True) -> SliceSet:
    """Stack the cases' slices on `device`. DWI is kept only when every case has one (and use_dwi)."""
    if not cases:
        raise TrainingError("no cases to load (empty fold)")
    stored = [load_preprocessed_case(folder, c) for c in cases]
    unlabeled = [c for c, s in zip(cases, stored) if s["seg"] is None]
    if unlabeled:
        raise TrainingError(f"cases without a label cannot be trained on: {unlabeled}")
    with_dwi = use_dwi and all(s["dwi"] is not None for s in stored)

    def stack(key: str, dtype) -> torch.Tensor:
        return torch.from_numpy(np.concatenate([np.asarray(s[key]) for s in stored]).astype(dtype)).to(device)

    seg = stack("seg", np.uint8)
    lesion = torch.nonzero(seg.flatten(1).any(dim=1)).flatten().cpu()
    return SliceSet(stack("data", np.float16), seg, stack("weight", np.float16),
                    stack("dwi", np.float16) if with_dwi else None, lesion, list(cases))


def pinned(slices: SliceSet) -> SliceSet:
    """The same slices in page-locked host memory (fast, non-blocking copies to a GPU)."""
    pin = lambda t: t.pin_memory() if t is not None else None  # noqa: E731
    return SliceSet(pin(slices.inputs), pin(slices.seg), pin(slices.weight), pin(slices.dwi),
                    slices.lesion_slices, slices.cases)


def num_foreground(batch_size: int, fraction: float) -> int:
    """How many of a batch's samples are forced to contain lesion (nnU-Net's rule)."""
    return batch_size - int(round(batch_size * (1.0 - float(fraction))))


def sample_indices(num_slices: int, lesion_slices: torch.Tensor, batch_size: int, fraction: float,
                   generator: torch.Generator) -> torch.Tensor:
    """(batch_size,) int64 slice indices on the CPU; the foreground ones come last."""
    n_fg = num_foreground(batch_size, fraction) if len(lesion_slices) else 0
    random_part = torch.randint(num_slices, (batch_size - n_fg,), generator=generator)
    fg_part = lesion_slices[torch.randint(len(lesion_slices), (n_fg,), generator=generator)] if n_fg else \
        torch.empty(0, dtype=torch.int64)
    return torch.cat([random_part, fg_part])


@dataclass
class Batch:
    """What a train or validation step consumes, float32 on the device."""

    frames: torch.Tensor  # (B, F, H, W)
    maps: torch.Tensor  # (B, M, H, W)
    target: torch.Tensor  # (B, 1, H, W) float {0, 1}
    weight: torch.Tensor  # (B, 1, H, W)
    dwi: Optional[torch.Tensor]  # (B, 1, H, W)


def gather_batch(slices: SliceSet, indices: torch.Tensor, frame_idx: Sequence[int], map_idx: Sequence[int],
                 augment=None, generator: Optional[torch.Generator] = None,
                 device: Optional[torch.device] = None) -> Batch:
    """Index the resident slices and (optionally) warp them: inputs, DWI and W bilinearly as one stack, the
    label with nearest neighbour, all with the same grid per sample."""
    idx = indices.to(slices.inputs.device)
    channels = [slices.inputs[idx].float(), slices.weight[idx, None].float()]
    if slices.dwi is not None:
        channels.append(slices.dwi[idx, None].float())
    images = torch.cat(channels, dim=1)
    label = slices.seg[idx, None].float()
    if device is not None and images.device != device:  # host-resident data: copy the batch over
        images = images.pin_memory().to(device, non_blocking=True)
        label = label.pin_memory().to(device, non_blocking=True)
    if augment is not None:
        images, label = augment.augment(images, label, generator)
    n_in = slices.inputs.shape[1]
    frames = images[:, list(frame_idx)]
    maps = images[:, list(map_idx)]
    dwi = images[:, n_in + 1:n_in + 2] if slices.dwi is not None else None
    return Batch(frames, maps, label, images[:, n_in:n_in + 1], dwi)
