"""A DICOM CTP export as the files the rest of the project reads: a 4D NIfTI, its frame times, a sidecar.

`dicom_to_nifti(folder, out)` writes `out/ctp.nii` (HU, the series' exact LPS grid; `ctp.nii.gz` with
`compress=True`: gzip takes ~9 s of a 10 s budget on a 420 MB series of 2 cores, and CT noise halves at best),
`out/ctp_frame_times.csv` (one time in seconds per frame, relative to the first: what `isles_perfusion_maps
-frame_times` reads) and
`out/ctp_dicom.json` (what was chosen and why). The header's frame interval (pixdim[4], seconds) is the
constant interval when the frames are evenly spaced; for a non-uniform protocol it is 0, so a reader that
ignores the CSV refuses the series instead of assuming a wrong constant interval. The three files appear
together or not at all: everything is read and checked first, then written to temporaries and renamed.
"""
from __future__ import annotations

import contextlib
import gzip
import struct
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np
import SimpleITK as sitk

from isles_pipeline.files import atomic_path, json_text
from isles_pipeline.imageio.dicom_ctp import DicomCtp, read_ctp_dicom

SERIES_NAME = "ctp.nii"
FRAME_TIMES_NAME = "ctp_frame_times.csv"
SIDECAR_NAME = "ctp_dicom.json"
_HEADER_BYTES = 352
_DIM_OFFSET = 40
_PIXDIM4_OFFSET = 76 + 4 * 4
_CHUNK = 1 << 24
_XYZT_UNITS_OFFSET = 123
_UNITS_MM_SECONDS = 2 | 8  # NIFTI_UNITS_MM | NIFTI_UNITS_SEC


def frame_times_csv(times_s) -> str:
    """The CSV text: a header line, then one time per line (microsecond resolution, as DICOM TM)."""
    return "time_s\n" + "".join(f"{float(t):.6f}".rstrip("0").rstrip(".") + "\n" for t in times_s)


def nifti_header(ctp: DicomCtp) -> bytes:
    """The 352-byte NIfTI-1 header of the series, as SimpleITK writes it (qform and sform from the exact grid),
    with dim[4] = the number of frames, pixdim[4] = the constant frame interval in seconds (0 when non-uniform).

    SimpleITK writes the header of a one-frame copy: writing the whole series through it would first copy the
    array into an ITK image (the memory of a second series) and take seconds longer. It also cannot store a zero
    4th spacing, hence the patched bytes.
    """
    one_frame = DicomCtp(ctp.folder, ctp.series[:1], ctp.times_s[:1], ctp.grid, ctp.label, "", "", [])
    with tempfile.TemporaryDirectory(prefix="isles_nifti_header_") as folder:
        path = Path(folder) / "header.nii"
        sitk.WriteImage(one_frame.image(), str(path), useCompression=False)
        header = bytearray(path.read_bytes()[:_HEADER_BYTES])
    if struct.unpack_from("<h", header, _DIM_OFFSET)[0] != 4 or struct.unpack_from("<f", header, 108)[0] != 352:
        raise RuntimeError("unexpected NIfTI header from SimpleITK (not 4D, or data not at byte 352)")
    struct.pack_into("<h", header, _DIM_OFFSET + 2 * 4, ctp.series.shape[0])
    struct.pack_into("<f", header, _PIXDIM4_OFFSET, float(ctp.frame_interval_s or 0.0))
    header[_XYZT_UNITS_OFFSET] = _UNITS_MM_SECONDS
    return bytes(header)


def write_series_nifti(ctp: DicomCtp, path: Path, compression_level: int = 1) -> None:
    """The 4D series as NIfTI-1 at `path` (gzipped when it ends .gz), written atomically."""
    path = Path(path)
    header = nifti_header(ctp)
    series = ctp.series.astype(ctp.series.dtype.newbyteorder("<"), copy=False)  # the header is little endian
    data = memoryview(np.ascontiguousarray(series)).cast("B")
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as raw:
            target = (gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=compression_level, mtime=0)
                      if path.name.endswith(".gz") else contextlib.nullcontext(raw))
            with target as handle:
                handle.write(header)
                for start in range(0, len(data), _CHUNK):
                    handle.write(data[start:start + _CHUNK])


def write_ctp_outputs(ctp: DicomCtp, out_folder: Path, compress: bool = False) -> list[Path]:
    """The three files of an imported series in `out_folder`, renamed into place only when all are complete."""
    out_folder = Path(out_folder)
    series_name = SERIES_NAME + (".gz" if compress else "")
    paths = [out_folder / series_name, out_folder / FRAME_TIMES_NAME, out_folder / SIDECAR_NAME]
    sidecar = json_text(ctp.summary())  # serialised before anything touches the disk
    with contextlib.ExitStack() as outputs:
        temporaries = [outputs.enter_context(atomic_path(path)) for path in paths]
        write_series_nifti(ctp, temporaries[0])
        temporaries[1].write_text(frame_times_csv(ctp.times_s))
        temporaries[2].write_text(sidecar)
    return paths


def dicom_to_nifti(folder: Path, out_folder: Path, series: Optional[str] = None, compress: bool = False) -> DicomCtp:
    """Read the CTP of a DICOM export folder and write it to `out_folder` (see the module docstring).

    Raises CaseError naming the folder for a bad export; nothing is written then.
    """
    ctp = read_ctp_dicom(folder, series)
    write_ctp_outputs(ctp, out_folder, compress)
    return ctp
