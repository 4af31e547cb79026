"""Out of GPU memory: find which batch size does fit, so the error can say what to put in the plans."""
from __future__ import annotations

import torch

from isles_pipeline.trainers.data import sample_indices


def largest_fitting_batch(trainer, below: int) -> int:
    """The largest per-process batch size < `below` for which one training forward/backward fits (0: none).
    Gradients are discarded, so the trainer's state is not changed except BN running statistics."""
    for size in range(below - 1, 0, -1):
        torch.cuda.empty_cache()
        try:
            data = trainer.train_data if trainer.train_data is not None else trainer.val_data
            idx = sample_indices(data.num_slices, data.lesion_slices, size, 0.0, torch.Generator().manual_seed(0))
            batch = trainer.gather(data, idx, None, None)
            with trainer.autocast():
                terms, _ = trainer.train_module(*trainer._device_inputs(batch))
            terms["total"].backward()
            trainer.optimizer.zero_grad(set_to_none=True)
            return size
        except torch.cuda.OutOfMemoryError:
            trainer.optimizer.zero_grad(set_to_none=True)
            continue
    return 0
