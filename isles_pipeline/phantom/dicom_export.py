"""A known 4D series written as a DICOM export the way different scanners and PACS do: what the DICOM importer
is tested and benchmarked on, and a way to try the DICOM path on a phantom case.

The source is a (T, Z, Y, X) HU array on a known ITK grid (origin, spacing, direction, LPS) with known frame
times; the writer turns it into single-frame CT files in one vendor style, optionally with the other objects
an export holds (localizer, non-contrast CT, dose report, DICOMDIR, a text file), shuffled random file names
and nested folders, and a compressed transfer syntax.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEGLosslessSV1,
    generate_uid,
)

STYLES = ("temporal_index", "series_per_time_point", "times_only", "trigger_time", "acquisition_number")
START_S = 10 * 3600 + 15 * 60 + 30.25  # 10:15:30.25


def tm(seconds: float) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{int(hours):02d}{int(minutes):02d}{secs:09.6f}"


def ds_text(value: float) -> str:
    """A DS value within the standard's 16 characters, as precise as they allow (as careful scanners write)."""
    for digits in range(15, 0, -1):
        text = f"{float(value):.{digits}g}"
        if len(text) <= 16:
            return text
    raise ValueError(value)


def _base(modality: str = "CT", sop_class=CTImageStorage) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = modality
    ds.PatientName = "Phantom^CTP"
    ds.PatientID = "PHANTOM01"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.StudyDate = "20261206"
    ds.Manufacturer = "isles_pipeline tests"
    return ds


def slice_dataset(stored: np.ndarray, origin, direction, spacing, *, signed=True, slope=1.0, intercept=0.0,
                  modality="CT", series_uid="", frame_of_reference="", description="") -> Dataset:
    """One CT image slice: `stored` (rows, columns) values; position `origin` (LPS); ITK `direction` columns."""
    ds = _base(modality)
    direction = np.asarray(direction, float).reshape(3, 3)
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelSpacing = [ds_text(spacing[1]), ds_text(spacing[0])]
    ds.SliceThickness = ds_text(spacing[2])
    ds.ImageOrientationPatient = [f"{v:.10f}" for v in list(direction[:, 0]) + list(direction[:, 1])]
    ds.ImagePositionPatient = [ds_text(v) for v in origin]
    ds.RescaleSlope, ds.RescaleIntercept = ds_text(slope), ds_text(intercept)
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.FrameOfReferenceUID = frame_of_reference or generate_uid()
    ds.SeriesDescription = description
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PixelData = stored.astype(np.int16 if signed else np.uint16).tobytes()
    return ds


def write_ctp_export(folder: Path, series: np.ndarray, origin, spacing, direction, times_s, style: str,
                     *, signed=True, slope=1.0, intercept=0.0, transfer_syntax=None, shuffle=False, seed=0,
                     description="CTP 4D", series_number=5, whole_seconds=False, study_uid=None,
                     shuttle_s=0.0) -> list[Path]:
    """The 4D HU `series` (T, Z, Y, X) as files in `folder` in one of STYLES; returns the files written.

    `shuttle_s`: each slice stamped that much later than the one before, in alternating directions (a table
    moving back and forth), so a time point's slices carry different times."""
    folder = Path(folder)
    rng = random.Random(seed)
    direction = np.asarray(direction, float).reshape(3, 3)
    frame_of_reference = generate_uid()
    series_uid = generate_uid()
    per_time_uids = [generate_uid() for _ in times_s]
    written = []
    for t, time in enumerate(times_s):
        stamp = START_S + float(time)
        if whole_seconds:
            stamp = float(int(stamp))
        for z in range(series.shape[1]):
            stored = np.round((series[t, z] - intercept) / slope)
            stamp_z = stamp + shuttle_s * (z if t % 2 == 0 else series.shape[1] - 1 - z)
            position = np.asarray(origin, float) + direction[:, 2] * spacing[2] * z
            uid = per_time_uids[t] if style == "series_per_time_point" else series_uid
            ds = slice_dataset(stored, position, direction, spacing, signed=signed, slope=slope, intercept=intercept,
                               series_uid=uid, frame_of_reference=frame_of_reference, description=description)
            ds.StudyInstanceUID = study_uid or ds.StudyInstanceUID
            ds.SeriesNumber = series_number + (t if style == "series_per_time_point" else 0)
            ds.InstanceNumber = z + 1 + (0 if style == "series_per_time_point" else t * series.shape[1])
            if style == "temporal_index":
                ds.TemporalPositionIndex = t + 1
                ds.AcquisitionNumber = t + 1
            if style == "acquisition_number":
                ds.AcquisitionNumber = t + 1
            if style == "trigger_time":
                ds.TriggerTime = ds_text(float(time) * 1000.0)
                ds.AcquisitionNumber = 1
            else:
                ds.AcquisitionTime = tm(stamp_z)
                ds.ContentTime = tm(stamp_z + 5.0)
                ds.AcquisitionNumber = ds.get("AcquisitionNumber", 1)
            if transfer_syntax == JPEGLosslessSV1:  # pydicom has no encoder for it; GDCM (in SimpleITK) has
                _compress_jpeg_lossless(ds, stored.astype(np.int16 if signed else np.uint16))
            elif transfer_syntax is not None:
                ds.compress(transfer_syntax)
            name = (f"{rng.getrandbits(64):016X}" if shuffle else f"IM_{t:03d}_{z:03d}.dcm")
            sub = folder / (f"{rng.randrange(3):02d}" if shuffle else "") / ("S1" if shuffle else "")
            sub.mkdir(parents=True, exist_ok=True)
            ds.save_as(sub / name, enforce_file_format=True)
            written.append(sub / name)
    return written


def _compress_jpeg_lossless(ds: Dataset, stored: np.ndarray) -> None:
    """Replace the pixel data by GDCM's JPEG lossless (process 14, selection value 1) encoding of `stored`."""
    import tempfile

    import pydicom
    import SimpleITK as sitk

    with tempfile.TemporaryDirectory() as folder:
        writer = sitk.ImageFileWriter()
        writer.SetImageIO("GDCMImageIO")
        writer.SetFileName(str(Path(folder) / "slice.dcm"))
        writer.SetUseCompression(True)
        writer.SetCompressor("JPEG")
        writer.Execute(sitk.GetImageFromArray(stored[None]))
        encoded = pydicom.dcmread(Path(folder) / "slice.dcm")
    if encoded.file_meta.TransferSyntaxUID != JPEGLosslessSV1:
        raise RuntimeError(f"GDCM wrote {encoded.file_meta.TransferSyntaxUID}, not JPEG lossless SV1")
    ds.PixelData = encoded.PixelData
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1


def write_volume(folder: Path, volume: np.ndarray, origin, spacing, direction, *, description: str,
                 series_number: int, image_type=("ORIGINAL", "PRIMARY", "AXIAL"), modality="CT",
                 study_uid=None, frame_of_reference=None) -> list[Path]:
    """A 3D series (Z, Y, X) HU, e.g. a non-contrast CT, or a localizer (one slice, ImageType LOCALIZER)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    direction = np.asarray(direction, float).reshape(3, 3)
    uid, frame = generate_uid(), frame_of_reference or generate_uid()
    written = []
    for z in range(volume.shape[0]):
        position = np.asarray(origin, float) + direction[:, 2] * spacing[2] * z
        ds = slice_dataset(volume[z], position, direction, spacing, series_uid=uid, frame_of_reference=frame,
                           description=description, modality=modality)
        ds.ImageType = list(image_type)
        ds.StudyInstanceUID = study_uid or ds.StudyInstanceUID
        ds.SeriesNumber, ds.InstanceNumber = series_number, z + 1
        ds.AcquisitionTime = tm(START_S - 300 + z)
        path = folder / f"{description.replace(' ', '_')}_{z:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        written.append(path)
    return written


def write_clutter(folder: Path) -> None:
    """What else an export holds: a localizer, a non-contrast CT, a dose report (no pixels), a DICOMDIR, text."""
    folder = Path(folder)
    axial = np.eye(3)
    write_volume(folder / "LOC", np.zeros((1, 32, 32)), (-100.0, -100.0, 0.0), (6.0, 6.0, 1.0),
                 [[1, 0, 0], [0, 0, 1], [0, -1, 0]], description="Topogram", series_number=1,
                 image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    write_volume(folder / "NCCT", np.full((6, 16, 16), 40.0), (-60.0, -60.0, -20.0), (7.5, 7.5, 5.0), axial,
                 description="Head NCCT", series_number=2)
    report = _base("SR", "1.2.840.10008.5.1.4.1.1.88.67")  # X-Ray Radiation Dose SR
    report.SeriesInstanceUID = generate_uid()
    report.SeriesNumber = 999
    report.save_as(folder / "DOSE_REPORT", enforce_file_format=True)
    directory = _base("", "1.2.840.10008.1.3.10")
    directory.save_as(folder / "DICOMDIR", enforce_file_format=True)
    (folder / "README.TXT").write_text("Exported by PACS\n")


NON_UNIFORM_TIMES = (0.0, 1.5, 3.0, 4.5, 6.0, 7.5, 9.25, 11.0, 13.0, 16.0, 19.5, 24.75)


def source_series(seed: int = 0, frames: int = len(NON_UNIFORM_TIMES)):
    """(series (T, Z, Y, X) HU, origin, spacing, direction, times): 4 oblique slices of 32 x 40, every voxel a
    different random HU value, so any transposed, flipped or misordered axis shows."""
    rng = np.random.default_rng(seed)
    series = rng.integers(-1024, 3000, size=(frames, 4, 32, 40)).astype(np.float32)
    angle_x, angle_z = np.radians(12.0), np.radians(-20.0)
    rot_x = np.array([[1, 0, 0], [0, np.cos(angle_x), -np.sin(angle_x)], [0, np.sin(angle_x), np.cos(angle_x)]])
    rot_z = np.array([[np.cos(angle_z), -np.sin(angle_z), 0], [np.sin(angle_z), np.cos(angle_z), 0], [0, 0, 1]])
    times = np.array(NON_UNIFORM_TIMES[:frames]) if frames <= len(NON_UNIFORM_TIMES) else np.arange(frames) * 1.5
    return series, (-50.25, 30.5, 12.0), (0.8, 0.9, 5.0), rot_z @ rot_x, times


def write_enhanced_ct(path: Path, series: np.ndarray, origin, spacing, direction, times_s, seed: int = 0) -> Path:
    """The whole 4D series as one enhanced CT object: frames in a shuffled order, each with its position,
    TemporalPositionIndex and FrameAcquisitionDateTime in its per-frame functional group."""
    from pydicom.sequence import Sequence

    enhanced = "1.2.840.10008.5.1.4.1.1.2.1"
    direction = np.asarray(direction, float).reshape(3, 3)
    ds = _base("CT", enhanced)
    ds.SeriesInstanceUID, ds.FrameOfReferenceUID = generate_uid(), generate_uid()
    ds.SeriesNumber, ds.InstanceNumber, ds.SeriesDescription = 8, 1, "CTP enhanced"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    ds.Rows, ds.Columns = series.shape[2:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    shared = Dataset()
    orientation, measures, transform = Dataset(), Dataset(), Dataset()
    orientation.ImageOrientationPatient = [f"{v:.10f}" for v in list(direction[:, 0]) + list(direction[:, 1])]
    measures.PixelSpacing = [ds_text(spacing[1]), ds_text(spacing[0])]
    measures.SliceThickness = ds_text(spacing[2])
    transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = "1", "-1024", "HU"
    shared.PlaneOrientationSequence = Sequence([orientation])
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.PixelValueTransformationSequence = Sequence([transform])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    order = [(t, z) for t in range(series.shape[0]) for z in range(series.shape[1])]
    random.Random(seed).shuffle(order)
    per_frame, pixels = [], []
    for t, z in order:
        item, position, content = Dataset(), Dataset(), Dataset()
        position.ImagePositionPatient = [ds_text(v) for v in np.asarray(origin) + direction[:, 2] * spacing[2] * z]
        content.TemporalPositionIndex = t + 1
        content.FrameAcquisitionDateTime = "20261206" + tm(START_S + float(times_s[t]))
        item.PlanePositionSequence, item.FrameContentSequence = Sequence([position]), Sequence([content])
        per_frame.append(item)
        pixels.append((series[t, z] + 1024).astype(np.int16))
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.NumberOfFrames = len(order)
    ds.PixelData = np.stack(pixels).tobytes()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return Path(path)


def export_nifti_series(path: Path, folder: Path, style: str = "temporal_index", times_s=None, **options) -> list:
    """A 4D NIfTI series (e.g. a phantom case's CT_4DPWI) written as a DICOM export in `style`, on its exact grid;
    times: `times_s`, else the header's frame interval. For trying the DICOM path end to end."""
    import SimpleITK as sitk

    from isles_pipeline.imageio.nifti_io import read_image

    image = read_image(Path(path))
    series = sitk.GetArrayFromImage(image).astype(np.float32)
    times = np.arange(series.shape[0]) * image.GetSpacing()[3] if times_s is None else np.asarray(times_s, float)
    direction = np.array(image.GetDirection()).reshape(4, 4)[:3, :3]
    return write_ctp_export(folder, np.round(series), image.GetOrigin()[:3], image.GetSpacing()[:3], direction,
                            times, style, **options)
