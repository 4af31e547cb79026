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
import shutil
import struct
from pathlib import Path
from typing import Optional

import SimpleITK as sitk

from isles_pipeline.files import atomic_path, json_text, temporary_sibling
from isles_pipeline.imageio.dicom_ctp import DicomCtp, read_ctp_dicom

SERIES_NAME = "ctp.nii"
FRAME_TIMES_NAME = "ctp_frame_times.csv"
SIDECAR_NAME = "ctp_dicom.json"
_PIXDIM4_OFFSET = 76 + 4 * 4
_XYZT_UNITS_OFFSET = 123
_UNITS_MM_SECONDS = 2 | 8  # NIFTI_UNITS_MM | NIFTI_UNITS_SEC


def frame_times_csv(times_s) -> str:
    """The CSV text: a header line, then one time per line (microsecond resolution, as DICOM TM)."""
    return "time_s\n" + "".join(f"{float(t):.6f}".rstrip("0").rstrip(".") + "\n" for t in times_s)


def write_series_nifti(image: sitk.Image, path: Path, frame_interval_s: Optional[float]) -> None:
    """A 4D NIfTI with pixdim[4] = `frame_interval_s` (0 when None) in seconds, gzipped when `path` ends .gz.

    SimpleITK cannot store a zero 4th spacing, so the header field is set in the bytes it wrote.
    """
    path = Path(path)
    with atomic_path(path) as temporary:
        plain = temporary_sibling(path.with_name(path.name.removesuffix(".gz")))
        try:
            sitk.WriteImage(image, str(plain), useCompression=False)
            with open(plain, "r+b") as handle:
                handle.seek(_PIXDIM4_OFFSET)
                handle.write(struct.pack("<f", float(frame_interval_s or 0.0)))
                handle.seek(_XYZT_UNITS_OFFSET)
                handle.write(bytes([_UNITS_MM_SECONDS]))
            if not path.name.endswith(".gz"):
                shutil.move(plain, temporary)
                return
            with open(plain, "rb") as source, open(temporary, "wb") as raw_target:
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw_target, compresslevel=1, mtime=0) as target:
                    shutil.copyfileobj(source, target, length=1 << 22)
        finally:
            plain.unlink(missing_ok=True)


def write_ctp_outputs(ctp: DicomCtp, out_folder: Path, compress: bool = False) -> list[Path]:
    """The three files of an imported series in `out_folder`, renamed into place only when all are complete."""
    out_folder = Path(out_folder)
    series_name = SERIES_NAME + (".gz" if compress else "")
    paths = [out_folder / series_name, out_folder / FRAME_TIMES_NAME, out_folder / SIDECAR_NAME]
    sidecar = json_text(ctp.summary())  # serialised before anything touches the disk
    image = ctp.image()
    with contextlib.ExitStack() as outputs:
        temporaries = [outputs.enter_context(atomic_path(path)) for path in paths]
        write_series_nifti(image, temporaries[0], ctp.frame_interval_s)
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
