"""A trained chain wrapped for inference with the device paths of `isles_pipeline.acceleration`: bf16 autocast,
channels_last inputs, torch.compile, and for CUDA graphs a static batch (the last partial batch of a case
padded, the padding dropped). The fold ensemble and the trainer's final validation both predict through it,
so they run the same arithmetic.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

import torch
from torch import nn

from isles_pipeline.acceleration import Acceleration, compile_module, mark_step_begin, pad_to_batch
from isles_pipeline.networks.chain import ChainOutput, IntegratedChain


class AcceleratedChain(nn.Module):
    """`IntegratedChain` in eval mode behind autocast / channels_last / compile; same call, same output type.

    Outputs are float32 and owned by the caller (copied out of CUDA graphs' static buffers)."""

    def __init__(self, chain: IntegratedChain, acceleration: Acceleration, batch_size: int) -> None:
        super().__init__()
        self.chain = chain.to(memory_format=acceleration.memory_format)
        self.acceleration = acceleration
        self.batch_size = int(batch_size)
        self._forward = compile_module(self.chain, acceleration)

    @property
    def extractor(self) -> Optional[nn.Module]:
        return self.chain.extractor

    def forward(self, frames: Optional[torch.Tensor], maps: torch.Tensor) -> ChainOutput:
        n = maps.shape[0]
        if n > self.batch_size:  # callers chunk by batch_size; a larger chunk is split, never a new shape
            parts = [self(frames[i:i + self.batch_size] if frames is not None else None, maps[i:i + self.batch_size])
                     for i in range(0, n, self.batch_size)]
            return ChainOutput(*(torch.cat([getattr(p, f) for p in parts]) if getattr(parts[0], f) is not None
                                 else None for f in ("extractor_logit", "pseudo_dwi", "segmentor_logits")))
        if self.acceleration.cuda_graphs:
            frames = pad_to_batch(frames, self.batch_size) if frames is not None else None
            maps = pad_to_batch(maps, self.batch_size)
            mark_step_begin(self.acceleration)
        fmt = self.acceleration.memory_format
        frames = frames.contiguous(memory_format=fmt) if frames is not None else None
        maps = maps.contiguous(memory_format=fmt)
        with self.acceleration.autocast():
            out = self._forward(frames, maps)

        def own(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
            # .float() copies bf16; float32 outputs are cloned so a CUDA graph replay cannot overwrite them
            return None if t is None else t[:n].float().clone() if t.dtype == torch.float32 else t[:n].float()

        return replace(out, extractor_logit=own(out.extractor_logit), pseudo_dwi=own(out.pseudo_dwi),
                       segmentor_logits=own(out.segmentor_logits))
