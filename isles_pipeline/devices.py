"""Which torch device a command runs on: one rule for training, prediction, the perfusion engine and the demo."""
from __future__ import annotations

import torch


class DeviceError(ValueError):
    """A device that was asked for and cannot be had, or an unknown device name: a bad argument value."""


DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' is CUDA when available, else CPU; 'cuda' without a GPU is an error, not a silent fallback."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; use auto, cuda or cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError("-device cuda was asked for, but PyTorch sees no CUDA GPU (use -device cpu)")
    return torch.device(device)
