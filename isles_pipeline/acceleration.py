"""How a network runs on its device: bf16 autocast, channels_last, torch.compile and CUDA graphs, decided once
by one rule for the trainer and the predictor.

Defaults ("auto") are the fast settings on CUDA (bf16 autocast + channels_last) and plain float32 on a CPU,
where bf16 convolutions are slow; "bf16" / "channels_last" ask for them on any device, which is how the CPU
test suite runs these paths for real. Compile modes are torch.compile's: "default" (Inductor kernels) and
"reduce-overhead" (the same plus CUDA graphs: a whole step replayed as one launch). CUDA graphs need a CUDA
device, one process and static shapes: elsewhere the decision falls back to compile mode "default" and says so
in one line (`notes`). Static shapes: training and validation batches are always full (they are sampled), and
the last partial batch of a case at inference is padded to the fixed batch by repeating its last slice, the
padding dropped from the output (`pad_to_batch`); in evaluation mode every normaliser uses running or
per-sample statistics, so padding changes no real slice's output.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Optional

import torch

PRECISIONS = ("auto", "bf16", "fp32")
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
COMPILE_MODES = ("default", "reduce-overhead")


class AccelerationError(ValueError):
    """An option value that does not exist."""


@dataclass(frozen=True)
class Acceleration:
    """The resolved settings for one device; `notes` are the lines to log (fallbacks, padding rule)."""

    device_type: str = "cpu"
    bf16: bool = False
    channels_last: bool = False
    compile_mode: Optional[str] = None  # None: eager
    notes: tuple[str, ...] = field(default=())

    @property
    def cuda_graphs(self) -> bool:
        return self.compile_mode == "reduce-overhead"

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self):
        """bf16 autocast on this device (losses compute their reductions in float32 themselves), or nothing."""
        if self.bf16:
            return torch.autocast(self.device_type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def describe(self) -> str:
        compiled = f"torch.compile mode {self.compile_mode}" if self.compile_mode else "eager"
        return (f"{'bf16 autocast' if self.bf16 else 'float32'}, "
                f"{'channels_last' if self.channels_last else 'contiguous'}, {compiled}"
                f"{' (CUDA graphs)' if self.cuda_graphs else ''}")


def resolve_acceleration(device: torch.device, precision: str = "auto", memory_format: str = "auto",
                         compile_mode: Optional[str] = None, distributed: bool = False,
                         batch_size: Optional[int] = None) -> Acceleration:
    """The one rule. `compile_mode` None means eager; "reduce-overhead" falls back to "default" (one note)
    off CUDA or under DDP (its gradient all-reduce hooks run between captured kernels)."""
    if precision not in PRECISIONS:
        raise AccelerationError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if memory_format not in MEMORY_FORMATS:
        raise AccelerationError(f"unknown memory format {memory_format!r}; use one of {', '.join(MEMORY_FORMATS)}")
    if compile_mode is not None and compile_mode not in COMPILE_MODES:
        raise AccelerationError(f"unknown compile mode {compile_mode!r}; use one of {', '.join(COMPILE_MODES)}")
    cuda = device.type == "cuda"
    bf16 = precision == "bf16" or (precision == "auto" and cuda)
    channels_last = memory_format == "channels_last" or (memory_format == "auto" and cuda)
    notes = []
    if compile_mode == "reduce-overhead":
        if not cuda:
            notes.append(f"CUDA graphs (--compile reduce-overhead) need a CUDA device; on {device.type} compiling "
                         "in torch.compile's default mode instead")
            compile_mode = "default"
        elif distributed:
            notes.append("CUDA graphs (--compile reduce-overhead) are not used with several processes (DDP's "
                         "all-reduce runs between the captured kernels); compiling in default mode instead")
            compile_mode = "default"
        else:
            batch = f" of {batch_size}" if batch_size else ""
            notes.append(f"CUDA graphs: static shapes, a fixed batch{batch}; training and validation batches are "
                         "always full (sampled with replacement); the last partial batch of a case at inference "
                         "is padded by repeating its last slice and the padding dropped")
    return Acceleration(device.type, bf16, channels_last, compile_mode, tuple(notes))


def pad_to_batch(tensor: torch.Tensor, batch_size: int) -> torch.Tensor:
    """`tensor` (n, ...) with n <= batch_size, grown to batch_size rows by repeating its last row."""
    n = tensor.shape[0]
    if n > batch_size:
        raise ValueError(f"a batch of {n} is larger than the static batch {batch_size}")
    if n == batch_size:
        return tensor
    if n == 0:
        raise ValueError("cannot pad an empty batch")
    return torch.cat([tensor, tensor[-1:].expand(batch_size - n, *tensor.shape[1:])])


def compile_module(module: torch.nn.Module, acceleration: Acceleration):
    """torch.compile in the resolved mode (the module itself when eager)."""
    if acceleration.compile_mode is None:
        return module
    return torch.compile(module, mode=acceleration.compile_mode)


def mark_step_begin(acceleration: Acceleration) -> None:
    """Tell CUDA graph trees a new iteration starts, so the previous step's outputs may be overwritten."""
    if acceleration.cuda_graphs:
        torch.compiler.cudagraph_mark_step_begin()
