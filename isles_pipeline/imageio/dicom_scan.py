"""The positioned image slices of a DICOM export folder, one header record each, without their pixels.

An export from PACS holds much besides images: DICOMDIR, dose reports and other non-image objects, stray
non-DICOM files, nested folders, random file names. Only single-frame objects with pixels, a position and an
orientation can be a slice of a CTP series; everything else is counted (by reason) and set aside, never an
error. Localizers are set aside by their ImageType. Headers are read without pixel data (fast, little memory);
the chosen series' pixels are read later (`dicom_ctp`).
"""
from __future__ import annotations

import datetime
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pydicom
from pydicom.errors import InvalidDicomError

logger = logging.getLogger(__name__)

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
ENHANCED_CT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.2.1"
TIME_SOURCES = ("AcquisitionDateTime", "AcquisitionTime", "TriggerTime", "ContentTime")

_TAGS = ["SOPClassUID", "SOPInstanceUID", "Modality", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription",
         "FrameOfReferenceUID", "ImageType", "Rows", "Columns", "PixelSpacing", "ImageOrientationPatient",
         "ImagePositionPatient", "RescaleSlope", "RescaleIntercept", "TemporalPositionIndex", "AcquisitionNumber",
         "InstanceNumber", "AcquisitionDate", "AcquisitionTime", "AcquisitionDateTime", "ContentDate",
         "ContentTime", "TriggerTime", "SeriesDate", "StudyDate", "NumberOfFrames", "BitsAllocated",
         "PixelRepresentation", "SamplesPerPixel", "GantryDetectorTilt", "StudyInstanceUID", "SliceThickness",
         "SpacingBetweenSlices", "PixelPaddingValue", "SharedFunctionalGroupsSequence",
         "PerFrameFunctionalGroupsSequence"]


@dataclass(frozen=True)
class SliceHeader:
    """What grouping, ordering and geometry need from one single-frame image file."""

    path: Path
    series_uid: str
    series_number: Optional[int]
    series_description: str
    frame_of_reference: str
    modality: str
    sop_instance_uid: str
    rows: int
    columns: int
    pixel_spacing: tuple[float, float]  # (between rows, between columns), mm
    orientation: tuple[float, ...]  # row direction cosines, then column direction cosines (LPS)
    position: tuple[float, float, float]  # first pixel's centre (LPS, mm)
    slope: float
    intercept: float
    temporal_index: Optional[int]
    acquisition_number: Optional[int]
    instance_number: Optional[int]
    times: dict = field(default_factory=dict, compare=False)  # source -> seconds (of the day, + date)
    slice_thickness: Optional[float] = None
    study_uid: str = ""
    frame: Optional[int] = None  # the frame of a multi-frame object (0-based); None for a single-frame file
    derived: bool = False  # ImageType DERIVED (a MIP, a subtraction, a reformat), not an acquired image


@dataclass
class FolderScan:
    """The image slices of a folder and the count of files set aside, by reason."""

    folder: Path
    slices: list[SliceHeader]
    skipped: Counter

    def summary(self) -> str:
        parts = [f"{len(self.slices)} image slice(s)"] + [f"{n} {reason}" for reason, n in sorted(self.skipped.items())]
        return ", ".join(parts)


def iter_files(folder: Path):
    """Every regular file below `folder` (nested folders too), in a stable order; hidden files skipped."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name


def _number(value, kind=float):
    if value is None or value == "":
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


def _or(value, default):
    return default if value is None else value


def parse_time(text) -> Optional[float]:
    """DICOM TM (`HHMMSS.FFFFFF`, also the old `HH:MM:SS.frac`) in seconds of the day; None when absent."""
    text = str(text or "").strip().replace(":", "")
    if not text:
        return None
    whole, _, fraction = text.partition(".")
    if not whole.isdigit() or len(whole) not in (2, 4, 6) or (fraction and not fraction.isdigit()):
        return None
    hours, minutes, seconds = int(whole[:2]), int(whole[2:4] or 0), int(whole[4:6] or 0)
    return hours * 3600 + minutes * 60 + seconds + (float(f"0.{fraction}") if fraction else 0.0)


_EPOCH_DAY = datetime.date(2000, 1, 1).toordinal()  # a near epoch keeps microseconds exact in a float64


def _day_seconds(date) -> float:
    """Seconds from 2000-01-01 to the start of a DICOM DA date (0 when absent), so times cross midnight."""
    text = str(date or "").strip()
    if len(text) != 8 or not text.isdigit():
        return 0.0
    try:
        days = datetime.date(int(text[:4]), int(text[4:6]), int(text[6:])).toordinal() - _EPOCH_DAY
        return float(days) * 86400.0
    except ValueError:
        return 0.0


def _datetime_seconds(text) -> Optional[float]:
    """DICOM DT `YYYYMMDDHHMMSS.FFFFFF[&ZZXX]` in seconds from a fixed epoch; None unless it has a time."""
    text = str(text or "").strip()
    for sign in "+-":
        text = text.split(sign)[0]
    if len(text) < 10:
        return None
    time = parse_time(text[8:])
    return None if time is None else _day_seconds(text[:8]) + time


def slice_times(ds) -> dict:
    """Every time the header carries, in seconds: dates added where given, TriggerTime (ms) converted."""
    times = {}
    stamp = _datetime_seconds(ds.get("AcquisitionDateTime"))
    if stamp is not None:
        times["AcquisitionDateTime"] = stamp
    for name, date in (("AcquisitionTime", "AcquisitionDate"), ("ContentTime", "ContentDate")):
        time = parse_time(ds.get(name))
        if time is not None:
            times[name] = _day_seconds(ds.get(date) or ds.get("SeriesDate") or ds.get("StudyDate")) + time
    trigger = _number(ds.get("TriggerTime"))
    if trigger is not None:
        times["TriggerTime"] = trigger / 1000.0
    return times


def _skip_reason(path: Path, ds) -> Optional[str]:
    """Why a DICOM object cannot be a CTP slice (None when it can)."""
    sop_class = str(ds.get("SOPClassUID", ""))
    if path.name.upper() == "DICOMDIR" or sop_class == DICOMDIR_SOP_CLASS:
        return "DICOMDIR"
    if "Rows" not in ds or "Columns" not in ds:
        return "non-image object(s)"
    if _number(ds.get("NumberOfFrames"), int) not in (None, 1) and sop_class != ENHANCED_CT_SOP_CLASS:
        return "multi-frame object(s) other than enhanced CT"
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        return "colour image(s)"
    image_type = [str(v).upper() for v in (ds.get("ImageType") or [])]
    if "LOCALIZER" in image_type:
        return "localizer(s)"
    if sop_class != ENHANCED_CT_SOP_CLASS and any(
            ds.get(tag) in (None, "") for tag in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")):
        return "image(s) without position or orientation"
    return None


def looks_like_dicom(head: bytes) -> bool:
    """The 'DICM' marker after the 128-byte preamble, or (old exports without a preamble) a first element in
    group 0008 (little endian), which plain text and images do not start with."""
    return head[128:132] == b"DICM" or head[:2] == b"\x08\x00" and len(head) >= 8


def read_headers(path: Path) -> tuple[list, Optional[str]]:
    """([SliceHeader, ...], None) for an image (one per frame of an enhanced CT object), ([], reason) else."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
        if not looks_like_dicom(head):
            return [], "non-DICOM file(s)"
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_TAGS, force=head[128:132] != b"DICM")
    except (InvalidDicomError, EOFError):
        return [], "non-DICOM file(s)"
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        logger.debug("%s: unreadable DICOM (%s)", path, error)
        return [], "unreadable DICOM file(s)"
    reason = _skip_reason(path, ds)
    if reason is not None:
        return [], reason
    try:
        if str(ds.get("SOPClassUID", "")) == ENHANCED_CT_SOP_CLASS:
            from isles_pipeline.imageio.dicom_multiframe import flat_frames

            headers = [header_from(path, frame_ds, frame) for frame, frame_ds in enumerate(flat_frames(ds))]
        else:
            headers = [header_from(path, ds)]
    except (TypeError, ValueError, AttributeError, IndexError) as error:
        logger.debug("%s: malformed geometry (%s)", path, error)
        return [], "image(s) with malformed geometry tags"
    if any(len(h.pixel_spacing) != 2 or len(h.orientation) != 6 or len(h.position) != 3 for h in headers):
        return [], "image(s) with malformed geometry tags"
    return headers, None


def header_from(path: Path, ds, frame: Optional[int] = None) -> SliceHeader:
    """The record of one slice from its (or its frame's flattened) attributes."""
    return SliceHeader(
        path=path, series_uid=str(ds.get("SeriesInstanceUID", "")), series_number=_number(ds.get("SeriesNumber"), int),
        series_description=str(ds.get("SeriesDescription", "")).strip(),
        frame_of_reference=str(ds.get("FrameOfReferenceUID", "")), modality=str(ds.get("Modality", "")).upper(),
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")), rows=int(ds.Rows), columns=int(ds.Columns),
        pixel_spacing=tuple(float(v) for v in ds.PixelSpacing),
        orientation=tuple(float(v) for v in ds.ImageOrientationPatient),
        position=tuple(float(v) for v in ds.ImagePositionPatient),
        slope=_or(_number(ds.get("RescaleSlope")), 1.0), intercept=_or(_number(ds.get("RescaleIntercept")), 0.0),
        temporal_index=_number(ds.get("TemporalPositionIndex"), int),
        acquisition_number=_number(ds.get("AcquisitionNumber"), int),
        instance_number=_number(ds.get("InstanceNumber"), int), times=slice_times(ds),
        slice_thickness=_number(ds.get("SliceThickness")), study_uid=str(ds.get("StudyInstanceUID", "")), frame=frame,
        derived=str((ds.get("ImageType") or [""])[0]).upper() == "DERIVED")


def scan_folder(folder: Path) -> FolderScan:
    """Header records of every image slice below `folder`; other files counted by reason."""
    folder = Path(folder)
    slices, skipped = [], Counter()
    for path in iter_files(folder):
        headers, reason = read_headers(path)
        if reason is not None:
            skipped[reason] += 1
        slices.extend(headers)
    scan = FolderScan(folder, slices, skipped)
    logger.info("%s: %s", folder, scan.summary())
    return scan
