"""A 4D CT perfusion series read straight from a DICOM export folder: voxels in HU, world grid, frame times.

`read_ctp_dicom(folder)` finds the CTP among everything the folder holds (`dicom_scan`, `dicom_series`), takes
the largest 4D CT series (the others are logged; `series=` picks another by SeriesInstanceUID, SeriesNumber,
SeriesDescription or FrameOfReferenceUID), and reads its pixels with pydicom, whose handlers decode the
compressed transfer syntaxes (RLE natively; JPEG lossless, JPEG-LS and JPEG 2000 through pylibjpeg/pyjpegls).
HU = stored value x RescaleSlope + RescaleIntercept, per slice; the series stays int16 when that is exact
(half the memory of float32), else float32. A bad export raises CaseError naming the folder and the problem.
"""
from __future__ import annotations

import logging
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.pixels import pixel_array
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from isles_pipeline.errors import CaseError
from isles_pipeline.imageio.dicom_codecs import missing_decoder
from isles_pipeline.imageio.dicom_geometry import GeometryError, Grid, resample_tilted, stack_grid
from isles_pipeline.imageio.dicom_scan import scan_folder
from isles_pipeline.imageio.dicom_series import MIN_TIME_POINTS, Candidate, find_candidates, organise

logger = logging.getLogger(__name__)

UNIFORM_TOLERANCE_S = 1e-3  # intervals this close are one constant frame interval (header times have ms steps)
_INT16 = np.iinfo(np.int16)


@dataclass
class DicomCtp:
    """A CTP series read from DICOM. `series` is (T, Z, Y, X) HU; `files[t][z]` the file of each slice."""

    folder: Path
    series: np.ndarray
    times_s: np.ndarray
    grid: Grid
    label: str
    time_source: str
    time_key: str
    files: list
    others: list = field(default_factory=list)
    series_uids: list = field(default_factory=list)

    @property
    def frame_interval_s(self) -> Optional[float]:
        """The constant interval when the frames are evenly spaced in time, else None (non-uniform protocol)."""
        if len(self.times_s) < 2:
            return None
        steps = np.diff(self.times_s)
        return float(steps.mean()) if np.ptp(steps) <= UNIFORM_TOLERANCE_S else None

    def image(self, dtype=None) -> sitk.Image:
        """The series as a 4D SimpleITK image (x, y, z, t) on its exact world grid; 4th spacing: the frame
        interval when uniform, else 1 (the per-frame times are `times_s`)."""
        array = self.series if dtype is None else self.series.astype(dtype, copy=False)
        image = sitk.GetImageFromArray(array, isVector=False)
        image.SetSpacing(tuple(self.grid.spacing) + (self.frame_interval_s or 1.0,))
        image.SetOrigin(tuple(self.grid.origin) + (0.0,))
        direction = np.eye(4)
        direction[:3, :3] = np.array(self.grid.direction).reshape(3, 3)
        image.SetDirection(tuple(direction.ravel()))
        return image

    def reference_3d(self) -> sitk.Image:
        """An empty float32 3D image on the series' spatial grid (for maps and masks)."""
        reference = sitk.Image(self.grid.size, sitk.sitkFloat32)
        reference.SetSpacing(self.grid.spacing)
        reference.SetOrigin(self.grid.origin)
        reference.SetDirection(self.grid.direction)
        return reference

    def summary(self) -> dict:
        """What the import decided, for a JSON sidecar and the log."""
        return {"source_folder": str(self.folder), "series": self.label, "time_points": int(self.series.shape[0]),
                "slices": int(self.series.shape[1]), "frame_times_s": [float(t) for t in self.times_s],
                "frame_interval_s": self.frame_interval_s, "time_source": self.time_source,
                "time_points_from": self.time_key, "origin_lps_mm": list(self.grid.origin),
                "spacing_mm": list(self.grid.spacing), "direction": list(self.grid.direction),
                "gantry_tilt_deg": self.grid.tilt_deg,
                "series_instance_uids": list(self.series_uids),
                "other_series": list(self.others)}


def choose_candidate(folder: Path, candidates: list[Candidate], others: list[str],
                     series: Optional[str] = None) -> Candidate:
    """The 4D CT candidate to read: `series` when given, else the largest; CaseError naming the folder."""
    everything = [c.label for c in candidates] + others
    if series is not None:
        matching = [c for c in candidates if str(series) in c.names]
        if not matching:
            raise CaseError(str(folder), f"no 4D series matches {series!r}; 4D series found: "
                                         + ("; ".join(c.label for c in candidates) or "none"))
        if len(matching) > 1:
            raise CaseError(str(folder), f"{len(matching)} 4D series match {series!r}: "
                                         + "; ".join(c.label for c in matching) + " (give a SeriesInstanceUID)")
        chosen = matching[0]
    else:
        ct = [c for c in candidates if c.modality == "CT"]
        if not ct:
            if candidates:
                raise CaseError(str(folder), f"the only 4D series is not CT: {candidates[0].label}")
            raise CaseError(str(folder), f"no 4D series (the same slice positions at {MIN_TIME_POINTS} or more "
                                         "time points); found: " + ("; ".join(everything) or "no image slices"))
        ct.sort(key=lambda c: c.size, reverse=True)
        studies = {c.slices[0].study_uid for c in ct}
        if len(studies) > 1:
            raise CaseError(str(folder), f"4D series of {len(studies)} studies: give the folder of one study (or pick "
                                         "a series with -series); isles_predict takes a folder of studies")
        if len(ct) > 1 and ct[0].size == ct[1].size:
            raise CaseError(str(folder), f"two equally large 4D series: {ct[0].label} and {ct[1].label}; "
                                         "pick one with -series")
        chosen = ct[0]
    if chosen.modality != "CT":
        raise CaseError(str(folder), f"{chosen.label} is {chosen.modality or 'of no modality'}, not CT")
    for other in everything:
        if other != chosen.label:
            logger.info("%s: also found %s", folder, other)
    return chosen


def find_ctp(folder: Path, series: Optional[str] = None, slices: Optional[list] = None) -> tuple[Candidate, list]:
    """The organised CTP candidate of an export folder (or of `slices` already scanned from it, e.g. one study
    of several) and the labels of the other series found."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CaseError(str(folder), "not a folder")
    if slices is None:
        slices = scan_folder(folder).slices
    try:
        candidates, others = find_candidates(slices)
    except GeometryError as error:
        raise CaseError(str(folder), str(error)) from None
    chosen = organise(choose_candidate(folder, candidates, others, series))
    if chosen.problem:
        raise CaseError(str(folder), f"{chosen.label}: {chosen.problem}")
    return chosen, [c.label for c in candidates if c is not chosen] + others


def _read_pixels(path: Path) -> np.ndarray:
    """The stored values of a file: (rows, columns), or (frames, rows, columns) for a multi-frame object.

    pydicom's `pixel_array(path)` parses only what decoding needs (twice as fast as a full dcmread); files it
    cannot take (no preamble, no file meta) go through a forced dcmread."""
    with open(path, "rb") as handle:
        preamble = handle.read(132)[128:132] == b"DICM"
    if preamble:
        try:
            return pixel_array(path)
        except (AttributeError, KeyError, ValueError):
            pass  # e.g. a transfer syntax missing from the file meta: the full read below names the problem
    ds = pydicom.dcmread(path, force=not preamble)
    if "TransferSyntaxUID" not in ds.file_meta:  # no file meta (no preamble): the encoding pydicom detected
        implicit, little = ds.original_encoding
        ds.file_meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit else
                                          ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    return ds.pixel_array


def _decode_problem(path: Path, error: Exception) -> str:
    """What to tell about a failed decode: the package to install when a plugin is missing, else the error."""
    try:
        syntax = pydicom.dcmread(path, stop_before_pixels=True, force=True).file_meta.get("TransferSyntaxUID", "")
    except Exception:  # the file itself is unreadable: report the original error
        syntax = ""
    advice = missing_decoder(syntax) if syntax else None
    text = str(error).splitlines()[0] if str(error) else ""
    return advice or f"{type(error).__name__}: {text}"


def _bounded_map(pool: ThreadPoolExecutor, function, items: list, window: int):
    """`pool.map` with at most `window` results waiting: decoded slices must not pile up in memory when the
    consumer falls behind the readers (on a loaded machine they did, by hundreds of MB)."""
    pending = deque()
    for item in items:
        pending.append(pool.submit(function, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _to_int16_hu(stored: np.ndarray, slope: float, intercept: float, out: np.ndarray) -> bool:
    """Write stored x slope + intercept into the int16 `out` when that is exact; False (nothing written) if not.

    The common case (slope 1, values and intercept within int16) is one int16 addition: mixed-type arithmetic
    through int32 took ten times longer and most of the import's time."""
    if not (float(slope).is_integer() and float(intercept).is_integer()):
        return False
    slope, intercept = int(slope), int(intercept)
    low, high = int(stored.min()), int(stored.max())
    ends = (low * slope + intercept, high * slope + intercept)
    if min(ends) < _INT16.min or max(ends) > _INT16.max:
        return False
    if slope == 1 and _INT16.min <= low and high <= _INT16.max and _INT16.min <= intercept <= _INT16.max:
        np.add(stored.astype(np.int16, copy=False), np.int16(intercept), out=out)
    else:
        np.add(np.multiply(stored, slope, dtype=np.int64), intercept, out=out, casting="unsafe")
    return True


def _fill(series: np.ndarray, frames: list, folder: Path, threads: int) -> np.ndarray:
    """Decode every slice into `series` as HU (int16 while exact, else switching to float32).

    Files are read in parallel threads (the decoders and numpy release the GIL); a multi-frame file once."""
    by_file: dict = {}
    for t, frame in enumerate(frames):
        for z, header in enumerate(frame):
            by_file.setdefault(header.path, []).append((t, z, header))
    rows, columns = series.shape[2:]

    def read(item):
        path, slices = item
        try:
            stored = _read_pixels(path)
        except Exception as error:  # any decoder failure: one line naming the file
            raise CaseError(str(folder), f"cannot read the pixels of {path} ({_decode_problem(path, error)})") from None
        if slices[0][2].frame is None:
            return [(slices[0], stored)]
        return [(entry, stored[entry[2].frame] if stored.ndim == 3 else stored) for entry in slices]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for decoded in _bounded_map(pool, read, list(by_file.items()), 4 * threads):
            for (t, z, header), stored in decoded:
                if stored.shape != (rows, columns):
                    raise CaseError(str(folder), f"{header.path}: pixel data of shape {stored.shape}, header says "
                                                 f"{rows}x{columns}")
                if series.dtype == np.int16 and _to_int16_hu(stored, header.slope, header.intercept, series[t, z]):
                    continue
                if series.dtype == np.int16:
                    series = series.astype(np.float32)
                series[t, z] = stored.astype(np.float32) * np.float32(header.slope) + np.float32(header.intercept)
    return series


def _first_time_point_grid(folder: Path, chosen) -> Grid:
    """The world grid of the chosen series' first time point; CaseError naming the folder when it has none."""
    first = chosen.frames[0]
    try:
        return stack_grid(np.array([h.position for h in first]), first[0].orientation, first[0].pixel_spacing,
                          first[0].rows, first[0].columns, first[0].slice_thickness)
    except GeometryError as error:
        raise CaseError(str(folder), f"{chosen.label}: {error}") from None


def read_ctp_dicom(folder: Path, series: Optional[str] = None, threads: Optional[int] = None,
                   slices: Optional[list] = None) -> DicomCtp:
    """The CTP series of a DICOM export folder (see the module docstring); CaseError on a bad export."""
    folder = Path(folder)
    chosen, others = find_ctp(folder, series, slices)
    first = chosen.frames[0]
    grid = _first_time_point_grid(folder, chosen)
    exact = all(float(h.slope).is_integer() and float(h.intercept).is_integer() for h in chosen.slices)
    shape = (len(chosen.frames), len(first), first[0].rows, first[0].columns)
    array = np.empty(shape, np.int16 if exact else np.float32)
    array = _fill(array, chosen.frames, folder, threads or min(4, os.cpu_count() or 1))
    if grid.shifts:
        logger.warning("%s: gantry tilt of %.2f degrees: slices shifted in their planes onto an orthogonal grid "
                       "(linear interpolation)", folder, grid.tilt_deg)
        array = resample_tilted(array, grid)
    logger.info("%s: read %s (%d time points over %.1f s; time points from %s, times from %s)", folder,
                chosen.label, shape[0], chosen.times_s[-1], chosen.time_key, chosen.time_source)
    return DicomCtp(folder, array, chosen.times_s, grid, chosen.label, chosen.time_source, chosen.time_key,
                    [[h.path for h in frame] for frame in chosen.frames], others,
                    sorted({h.series_uid for h in chosen.slices}))


def read_engine_inputs(folder: Path, series: Optional[str] = None) -> tuple[np.ndarray, sitk.Image, np.ndarray]:
    """What the perfusion engine reads from a 4D NIfTI, from a DICOM export instead: the (T, Z, Y, X) float32
    series in HU, the 4D image (its grid), and the frame times in seconds from the headers."""
    ctp = read_ctp_dicom(folder, series)
    image = ctp.image()
    return ctp.series.astype(np.float32, copy=False), image, np.asarray(ctp.times_s, float)


def source_slices(folder: Path, series: Optional[str] = None) -> tuple[list, Grid]:
    """The first time point's files (z order) and the grid of an export's CTP, from the headers only: what
    DICOM outputs (SEG, parametric maps) refer to."""
    chosen, _ = find_ctp(folder, series)
    first = chosen.frames[0]
    grid = _first_time_point_grid(folder, chosen)
    return [h.path for h in first], grid
