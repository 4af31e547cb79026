"""Streamed training batches, for datasets that do not fit on the device: batchgenerators' multi-process
augmenter (MultiThreadedAugmenter) runs loaders that read slices from the memory-mapped case arrays; the
main process puts each batch in pinned memory, copies it to the device without blocking and warps it there
with the same one-grid augmentation as the resident path.

Batch composition is the resident path's (foreground oversampling from the plans). Each worker draws from
numpy's global generator, which batchgenerators seeds per worker (seed + worker index), so a run is
repeatable; an interrupted streamed run resumes with fresh worker streams (the workers' states are not in
the checkpoint), i.e. statistically, not bit for bit like the resident path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from batchgenerators.dataloading.data_loader import DataLoader
from batchgenerators.dataloading.multi_threaded_augmenter import MultiThreadedAugmenter

from isles_pipeline.files import read_json
from isles_pipeline.preprocessing.storage import load_preprocessed_case
from isles_pipeline.trainers.data import SliceSet, num_foreground


class MemmapSliceLoader(DataLoader):
    """Infinite batches {"inputs" (B, C, H, W) float16, "seg" (B, H, W) uint8, "weight", ["dwi"]} from cases
    opened memory-mapped in each worker (only the index travels to the worker processes)."""

    def __init__(self, folder: Path, cases: Sequence[str], batch_size: int, foreground_fraction: float,
                 use_dwi: bool) -> None:
        super().__init__(None, batch_size, 1, None, infinite=True)
        self.folder, self.cases = Path(folder), list(cases)
        self.index = [(case, z) for case in self.cases
                      for z in range(read_json(self.folder / f"{case}.json")["preprocessed_shape_zyx"][0])]
        self.lesion = [i for i, (case, z) in enumerate(self.index)
                       if z in set(read_json(self.folder / f"{case}.json").get("lesion_slices", []))]
        self.fraction, self.use_dwi = float(foreground_fraction), use_dwi
        self._arrays: Optional[dict] = None

    def _open(self) -> dict:
        if self._arrays is None:  # in the worker: memory maps are opened there, never pickled
            self._arrays = {case: load_preprocessed_case(self.folder, case) for case in self.cases}
        return self._arrays

    def generate_train_batch(self) -> dict:
        arrays = self._open()
        n_fg = num_foreground(self.batch_size, self.fraction) if self.lesion else 0
        picks = list(np.random.randint(len(self.index), size=self.batch_size - n_fg))
        picks += [self.lesion[i] for i in np.random.randint(len(self.lesion), size=n_fg)] if n_fg else []
        batch = {}
        for key, source in (("inputs", "data"), ("seg", "seg"), ("weight", "weight"), ("dwi", "dwi")):
            if key == "dwi" and not self.use_dwi:
                continue
            batch[key] = np.stack([np.asarray(arrays[self.index[i][0]][source][self.index[i][1]]) for i in picks])
        return batch


def streamed_batches(folder: Path, cases: Sequence[str], batch_size: int, foreground_fraction: float,
                     use_dwi: bool, seed: int, num_processes: int = 2) -> MultiThreadedAugmenter:
    """An infinite iterator of numpy batches (see MemmapSliceLoader). Numpy, not torch, crosses the process
    boundary (torch's shared-memory hand-over breaks when workers stop with batches in flight);
    `batch_to_slices` makes pinned tensors of them in the main process."""
    loader = MemmapSliceLoader(folder, cases, batch_size, foreground_fraction, use_dwi)
    return MultiThreadedAugmenter(loader, None, num_processes, num_cached_per_queue=4,
                                  seeds=[seed + i for i in range(num_processes)])


def batch_to_slices(batch: dict, pin: bool) -> SliceSet:
    """A streamed batch as a SliceSet of its own slices (so the resident path's gather/augment code runs)."""
    def tensor(key):
        if key not in batch:
            return None
        t = torch.from_numpy(np.ascontiguousarray(batch[key]))
        return t.pin_memory() if pin else t

    seg = tensor("seg")
    return SliceSet(tensor("inputs"), seg, tensor("weight"), tensor("dwi"),
                    torch.nonzero(seg.flatten(1).any(dim=1)).flatten(), [])
