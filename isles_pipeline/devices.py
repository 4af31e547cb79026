"""Which torch device a command runs on: one rule for training, prediction, the perfusion engine and the demo."""
from __future__ import annotations

import glob
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: `device_name` answers "cpu" without it on a machine with no GPU
    import torch

# Device files a GPU that PyTorch could use leaves on Linux: NVIDIA's (or its driver's /proc entry), ROCm's
# (/dev/kfd) and WSL's (/dev/dxg). Without any of them torch.cuda.is_available() is False.
GPU_DEVICE_FILES = ("/dev/nvidia*", "/proc/driver/nvidia", "/dev/kfd", "/dev/dxg")


class DeviceError(ValueError):
    """A device that was asked for and cannot be had, or an unknown device name: a bad argument value."""


DEVICES = ("auto", "cpu", "cuda")


def gpu_possible() -> bool:
    """False only where no GPU can be there (Linux without GPU device files); then torch need not be asked."""
    if not os.path.isdir("/dev"):  # not Linux: only torch can tell
        return True
    return any(glob.glob(pattern) for pattern in GPU_DEVICE_FILES)


def device_name(device: str = "auto") -> str:
    """`resolve_device`'s answer as "cpu" or "cuda", importing torch (1.2 s) only when a GPU could be there."""
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; use auto, cuda or cpu")
    if device == "cpu" or (device == "auto" and not gpu_possible()):
        return "cpu"
    return resolve_device(device).type


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' is CUDA when available, else CPU; 'cuda' without a GPU is an error, not a silent fallback."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; use auto, cuda or cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError("-device cuda was asked for, but PyTorch sees no CUDA GPU (use -device cpu)")
    return torch.device(device)
