"""Files of `isles_perfusion_maps`: the 4D series and its frame times in, maps, aif.json and a QC picture out.

The series is a 4D NIfTI or a DICOM export folder (frame times from its headers). Frame times come from a CSV
(one time in seconds per frame, in order; commas or new lines; a non-numeric first line is a header) when
given, else from the DICOM headers or the 4D header: pixdim[4] in the header's time unit (seconds
when unset, as in ISLES 2018). A zero or absent interval is an error, never a default.
Maps are written on the series' exact 3D grid (size, spacing, origin, direction of its first three axes,
with the ISLES identity-sform quirk resolved by `nifti_io.read_image`).
"""
from __future__ import annotations

import re
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from isles_pipeline.errors import CaseError
from isles_pipeline.files import atomic_write_json
from isles_pipeline.imageio.nifti_io import raw_header, read_image, write_image
from isles_pipeline.imageio.nifti_scan import count_non_finite
from isles_pipeline.imageio.nifti_stream import TIME_UNIT_SECONDS
from isles_pipeline.perfusion.clinical import lesion_masks, volumes_of
from isles_pipeline.perfusion.compute import PerfusionResult
from isles_pipeline.perfusion.maps import MAP_NAMES
from isles_pipeline.perfusion.qc_figure import write_qc_figure
from isles_pipeline.perfusion.timing import uniform_frame_times


def read_frame_times_csv(path: Path) -> np.ndarray:
    """Frame times (s) from a CSV; CaseError naming the file when it holds anything but numbers."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise CaseError(str(path), f"cannot read frame times ({error.strerror})") from None
    fields = [f for f in re.split(r"[,;\s]+", text.strip()) if f]
    values = []
    for position, field in enumerate(fields):
        try:
            values.append(float(field))
        except ValueError:
            if position == 0 and not values:
                continue  # a header such as "time_s"
            raise CaseError(str(path), f"frame time {field!r} is not a number") from None
    if not values:
        raise CaseError(str(path), "no frame times in the file")
    return np.array(values)


def header_frame_interval(path: Path) -> float:
    """pixdim[4] of a NIfTI-1 header, in seconds (0.0 when absent or unreadable).

    Read from the header bytes: ITK reports a zero pixdim[4] as a 1 s spacing, which would invent a timing.
    """
    raw = raw_header(Path(path))
    if len(raw) < 348:
        return 0.0
    endian = "<" if struct.unpack_from("<i", raw, 0)[0] == 348 else ">"
    interval = struct.unpack_from(endian + "f", raw, 76 + 4 * 4)[0]
    units = raw[123] & 0x38
    return float(interval) * TIME_UNIT_SECONDS.get(units, 1.0)


def read_series(path: Path, frame_times_csv: Path | None = None,
                dicom_series: str | None = None) -> tuple[np.ndarray, sitk.Image, np.ndarray]:
    """(T, Z, Y, X) series, the 4D image (geometry), and the frame times in seconds.

    From a NIfTI the series is a read-only view of `image`'s own buffer in its stored type (int16 for most
    CTP): keep the image while the series is used. The engine converts one slice at a time; a whole float32
    copy cost the command ~0.3 s of its ~3 s (a 22 x 256 x 256 x 54 series: 311 MB allocated and converted).

    `path` may be a DICOM export folder: the series, its grid and its frame times then come from the headers
    (`imageio.dicom_ctp`; `dicom_series` picks among several 4D series); a CSV, when given, still wins."""
    path = Path(path)
    if path.is_dir():
        from isles_pipeline.imageio.dicom_ctp import read_engine_inputs  # pydicom only for DICOM input

        series, image, times = read_engine_inputs(path, dicom_series)
        return series, image, (read_frame_times_csv(frame_times_csv) if frame_times_csv is not None else times)
    image = read_image(path)
    if image.GetDimension() != 4:
        raise CaseError(str(path), f"expected a 4D CTP series, got a {image.GetDimension()}D image of size "
                                   f"{image.GetSize()}")
    bad = count_non_finite(path)  # ITK reads NaN and infinity as 0: look at the stored values
    if bad:
        raise CaseError(str(path), f"{bad} NaN or infinite value(s) in the 4D CTP series")
    series = sitk.GetArrayViewFromImage(image)
    if frame_times_csv is not None:
        times = read_frame_times_csv(frame_times_csv)
    else:
        times = uniform_frame_times(series.shape[0], header_frame_interval(path), str(path))
    return series, image, times


def reference_3d(image: sitk.Image) -> sitk.Image:
    """An empty 3D image with the spatial geometry of a 4D one (its first three axes)."""
    size = image.GetSize()[:3]
    reference = sitk.Image(size, sitk.sitkFloat32)
    reference.SetSpacing(image.GetSpacing()[:3])
    reference.SetOrigin(image.GetOrigin()[:3])
    direction = np.array(image.GetDirection()).reshape(4, 4)[:3, :3]
    reference.SetDirection(tuple(direction.ravel()))
    return reference


def write_outputs(result: PerfusionResult, image4d: sitk.Image, out_dir: Path, source: str = "",
                  qc: bool = True) -> list[Path]:
    """cbf/cbv/mtt/tmax/ttp.nii.gz, aif.json (with the AIF's quality), summary.json (clinical volumes, the
    AIF warning if any) and qc.png in `out_dir`, each written atomically."""
    out_dir = Path(out_dir)
    reference = reference_3d(image4d)
    def write_map(name):
        map_image = sitk.GetImageFromArray(result.maps[name])
        map_image.CopyInformation(reference)
        write_image(map_image, out_dir / f"{name}.nii.gz")
        return out_dir / f"{name}.nii.gz"

    with ThreadPoolExecutor(len(MAP_NAMES)) as pool:  # gzip and fsync release the GIL: the maps side by side
        written = list(pool.map(write_map, MAP_NAMES))
    units = {"cbf": "ml/100g/min", "cbv": "ml/100g", "mtt": "s", "tmax": "s", "ttp": "s from the first frame"}
    atomic_write_json(out_dir / "aif.json", {"source": source, "units": units, **result.summary(),
                                            **result.arterial.to_json()})
    written.append(out_dir / "aif.json")
    spacing = tuple(float(s) for s in image4d.GetSpacing()[2::-1])
    core, hypoperfusion, reference_cbf = lesion_masks(result.maps["cbf"], result.maps["tmax"], result.masks.valid)
    volumes = volumes_of(core, hypoperfusion, reference_cbf, spacing)
    quality = result.arterial.quality or {}
    atomic_write_json(out_dir / "summary.json", {
        "source": source, **volumes, "aif_plausible": quality.get("plausible", True),
        "warning": aif_warning(result), "warnings": result_warnings(result), "maps": result.summary()})
    written.append(out_dir / "summary.json")
    if qc:
        write_qc_figure(result, volumes, (core, hypoperfusion), out_dir / "qc.png")
        written.append(out_dir / "qc.png")
    return written


def result_warnings(result: PerfusionResult) -> list[str]:
    """Every warning of a result, one line each: the AIF's (`aif_warning`), then the series' (a short baseline,
    a scan ended during the first pass: `series_checks`)."""
    warning = aif_warning(result)
    return ([warning] if warning else []) + list(result.series_warnings)


def aif_warning(result: PerfusionResult) -> str | None:
    """One line naming why the chosen AIF is implausible, or None."""
    quality = result.arterial.quality or {}
    if quality.get("plausible", True):
        return None
    return "the AIF looks implausible (" + "; ".join(quality.get("reasons", [])) + "): check qc.png before use"
