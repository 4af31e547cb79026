"""Counting NaN and infinite voxels in a NIfTI file's stored bytes.

ITK 5's NIfTI reader (SimpleITK 2.5) silently replaces every NaN and +-Inf with 0 (nifti_read_buffer; fixed
in ITK 6, InsightSoftwareConsortium/ITK#6683), so a map full of NaN would reach the networks as zeros. This
scan reads the voxel bytes of floating-point files directly, in chunks. Other formats and integer types
cannot hold NaN and give 0.
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

# NIfTI datatype codes of real floating-point voxels (nifti1.h) -> numpy type
_FLOAT_TYPES = {16: "f4", 64: "f8"}
_CHUNK_BYTES = 1 << 22


def _open(path: Path):
    return gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")


def _layout(header: bytes) -> tuple[str, int, int] | None:
    """(endianness, datatype, voxel offset) of a NIfTI-1 or NIfTI-2 header, None if it is neither."""
    for endian in "<>":
        size = struct.unpack(endian + "i", header[:4])[0]
        if size == 348:
            offset = int(struct.unpack(endian + "f", header[108:112])[0])
            return endian, struct.unpack(endian + "h", header[70:72])[0], offset
        if size == 540:
            offset = struct.unpack(endian + "q", header[168:176])[0]
            return endian, struct.unpack(endian + "h", header[12:14])[0], offset
    return None


def count_non_finite(path: Path) -> int:
    """Number of NaN or infinite voxels stored in a .nii/.nii.gz file (0 for non-float data)."""
    path = Path(path)
    if not str(path).endswith((".nii", ".nii.gz")):
        return 0
    with _open(path) as f:
        header = f.read(540)
        layout = _layout(header)
        if layout is None or layout[1] not in _FLOAT_TYPES:
            return 0
        endian, datatype, offset = layout
        dtype = np.dtype(endian + _FLOAT_TYPES[datatype])
        f.seek(offset)
        count, tail = 0, b""
        while chunk := f.read(_CHUNK_BYTES):
            chunk = tail + chunk
            usable = len(chunk) - len(chunk) % dtype.itemsize
            count += int(np.count_nonzero(~np.isfinite(np.frombuffer(chunk[:usable], dtype))))
            tail = chunk[usable:]
        return count
