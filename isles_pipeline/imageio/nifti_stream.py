"""A 4D NIfTI-1 series copied frame by frame, checked on the way: peak memory is one frame, not the series.

Why not SimpleITK: ISLES 2024's CTP registered to the NCCT's 512 x 512 grid with thin slices is several GB
once decompressed; `sitk.ReadImage` holds all of it. ITK's streaming extraction (ImageFileReader's
ExtractIndex/ExtractSize) does stream a .nii.gz with bounded memory, but each call decompresses from the start
of the stream up to its frame (measured with `python -m benchmarks.isles2024_conversion
-z 60 -t 20 --itk_extract`, 2026-11-29, 2-core dev machine shared with other jobs: frame 0 0.26 s, frame 10
1.05 s, frame 19 1.69 s of a 20-frame 512 x 512 x 60 int16 series whose whole decompression takes 3.6 s), so
reading every frame costs ~T/2 full decompressions. Here the gzip
stream is read once, in frame-sized chunks: each
frame's bytes are decoded for the checks (non-finite values, which slices hold any signal) and written
unchanged to the output stream, so the output is the source's voxels bit for bit with its own header, except
the frame interval, which is written in seconds (pixdim[4], xyzt_units) so that every reader agrees on it.

The output goes through `files.atomic_path`: a failed check removes the temporary, no partial file remains.
Header fields follow nifti1.h (sizeof_hdr 0, dim 40, datatype 70, bitpix 72, pixdim 76, vox_offset 108,
scl_slope 112, scl_inter 116, xyzt_units 123).
"""
from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from isles_pipeline.files import atomic_path

DTYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4", 1024: "i8", 1280: "u8"}
TIME_UNIT_SECONDS = {8: 1.0, 16: 1e-3, 24: 1e-6}  # NIFTI_UNITS_SEC, _MSEC, _USEC
_CHUNK = 1 << 22


class SeriesError(ValueError):
    """A series that cannot be copied; str() is one line naming the file and the problem."""


@dataclass
class SeriesHeader:
    endian: str
    size_xyzt: tuple[int, int, int, int]
    dtype: np.dtype
    vox_offset: int
    slope: float
    inter: float
    header_interval_s: Optional[float]  # pixdim[4] in seconds; None when unset, zero or of unknown unit
    raw: bytes  # the 348 header bytes

    @property
    def frame_bytes(self) -> int:
        x, y, z, _ = self.size_xyzt
        return x * y * z * self.dtype.itemsize


@dataclass
class SeriesScan:
    """What the copy saw: frames, which slices (z) hold any non-zero voxel in any frame, non-finite voxels."""

    num_frames: int
    frame_interval_s: float
    covered_slices: np.ndarray = field(repr=False)
    non_finite: int = 0

    @property
    def coverage_z(self) -> Optional[tuple[int, int]]:
        """[first, last + 1) of the slices with signal; None when every voxel of every frame is 0."""
        covered = np.flatnonzero(self.covered_slices)
        return (int(covered[0]), int(covered[-1]) + 1) if covered.size else None


def _open(path: Path):
    return gzip.open(path, "rb") if Path(path).name.endswith(".gz") else open(path, "rb")


def read_series_header(path: Path) -> SeriesHeader:
    """The NIfTI-1 header of a 4D series; SeriesError naming the file for anything this copy cannot stream."""
    path = Path(path)
    try:
        with _open(path) as handle:
            raw = handle.read(348)
    except (OSError, EOFError) as error:
        raise SeriesError(f"{path}: cannot read NIfTI ({error})") from None
    if len(raw) < 348:
        raise SeriesError(f"{path}: cannot read NIfTI (header shorter than 348 bytes)")
    endian = "<" if struct.unpack_from("<i", raw, 0)[0] == 348 else ">"
    if struct.unpack_from(endian + "i", raw, 0)[0] != 348:
        raise SeriesError(f"{path}: not a NIfTI-1 file (NIfTI-2 series are not streamed; convert it with "
                          "nibabel to NIfTI-1 first)")
    dims = struct.unpack_from(endian + "8h", raw, 40)
    if dims[0] == 5 and dims[4] == 1:
        raise SeriesError(f"{path}: 5D series with a singleton 4th axis; expected (x, y, z, t)")
    if dims[0] != 4 or dims[4] < 1:
        raise SeriesError(f"{path}: expected a 4D series (x, y, z, t), the header says {dims[0]}D")
    datatype = struct.unpack_from(endian + "h", raw, 70)[0]
    if datatype not in DTYPES:
        raise SeriesError(f"{path}: NIfTI datatype {datatype} is not a scalar type this copy supports")
    slope, inter = struct.unpack_from(endian + "2f", raw, 112)
    pixdim4 = struct.unpack_from(endian + "f", raw, 92)[0]
    unit = raw[123] & 0x38
    interval = pixdim4 * TIME_UNIT_SECONDS.get(unit, 1.0 if unit == 0 else float("nan"))
    return SeriesHeader(
        endian=endian, size_xyzt=tuple(int(d) for d in dims[1:5]), dtype=np.dtype(endian + DTYPES[datatype]),
        vox_offset=int(struct.unpack_from(endian + "f", raw, 108)[0]),
        slope=float(slope) if slope not in (0.0,) and np.isfinite(slope) else 1.0,
        inter=float(inter) if np.isfinite(inter) else 0.0,
        header_interval_s=float(interval) if np.isfinite(interval) and interval > 0 else None, raw=raw)


def _read_exactly(handle, size: int, path: Path) -> bytes:
    parts, remaining = [], size
    while remaining:
        chunk = handle.read(min(remaining, _CHUNK))
        if not chunk:
            raise SeriesError(f"{path}: cannot read NIfTI (truncated: the data ends before the header's size)")
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _patched_header(header: SeriesHeader, interval_s: float) -> bytes:
    raw = bytearray(header.raw)
    struct.pack_into(header.endian + "f", raw, 92, float(interval_s))
    raw[123] = (raw[123] & 0x07) | 8  # keep the spatial unit, time in seconds
    return bytes(raw)


def copy_series(source: Path, destination: Path, frame_interval_s: Optional[float] = None,
                compression_level: int = 1) -> SeriesScan:
    """Copy a 4D NIfTI-1 series frame by frame into `destination` (.nii.gz), scanning each frame.

    The frame interval is the header's (pixdim[4] with its time unit) or, where the header has none,
    `frame_interval_s`; with neither, SeriesError. Non-finite voxels or a series that is 0 everywhere raise
    SeriesError after the scan, and nothing is left at `destination`.
    """
    source, destination = Path(source), Path(destination)
    header = read_series_header(source)
    interval = header.header_interval_s or frame_interval_s
    if not interval or interval <= 0:
        raise SeriesError(f"{source}: no frame interval in the header (pixdim[4] unset) and none given "
                          "(-dt SECONDS)")
    x, y, z, t = header.size_xyzt
    covered = np.zeros(z, bool)
    non_finite = 0
    with atomic_path(destination) as temporary:
        with open(temporary, "wb") as raw_target, _open(source) as handle, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw_target, compresslevel=compression_level,
                              mtime=0) as target:
            _read_exactly(handle, 348, source)
            target.write(_patched_header(header, interval))
            target.write(_read_exactly(handle, header.vox_offset - 348, source))  # extensions, kept as they are
            for _ in range(t):
                data = _read_exactly(handle, header.frame_bytes, source)
                target.write(data)
                frame = np.frombuffer(data, header.dtype).reshape(z, y, x)
                if frame.dtype.kind == "f":
                    finite = np.isfinite(frame)
                    non_finite += int(frame.size - np.count_nonzero(finite))
                    frame = np.where(finite, frame, 0)
                if header.inter == 0:
                    signal = frame != 0
                else:
                    signal = frame.astype(np.float32) * header.slope + header.inter != 0
                covered |= signal.any(axis=(1, 2))
                del frame, signal, data
        scan = SeriesScan(num_frames=t, frame_interval_s=float(interval), covered_slices=covered,
                          non_finite=non_finite)
        if non_finite:
            raise SeriesError(f"{source}: {non_finite} NaN or infinite voxel(s)")
        if scan.coverage_z is None:
            raise SeriesError(f"{source}: every voxel of every frame is 0 (no CTP coverage)")
    return scan


def header_scaling(path: Path) -> tuple[float, float]:
    """(scl_slope, scl_inter) of a NIfTI-1 file, NIfTI's rule applied: a slope of 0 (or not finite) means no
    scaling, (1, 0). ISLES 2024 stores masks as uint16 0/65535 with slope 1/65535."""
    try:
        with _open(path) as handle:
            raw = handle.read(348)
    except (OSError, EOFError):
        return 1.0, 0.0
    if len(raw) < 348:
        return 1.0, 0.0
    endian = "<" if struct.unpack_from("<i", raw, 0)[0] == 348 else ">"
    if struct.unpack_from(endian + "i", raw, 0)[0] != 348:
        return 1.0, 0.0
    slope, inter = struct.unpack_from(endian + "2f", raw, 112)
    if slope == 0 or not np.isfinite(slope):
        return 1.0, 0.0
    return float(slope), float(inter) if np.isfinite(inter) else 0.0
