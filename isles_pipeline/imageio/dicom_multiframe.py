"""Enhanced (multi-frame) CT objects as slices: each frame's attributes flattened out of the functional groups.

An enhanced CT object keeps what a single-frame file has at the top level in functional group sequences: the
shared group (usually orientation, pixel spacing, rescale) and one per-frame group each (usually position,
temporal position, frame time). Flattening every frame into a dataset that looks like a single-frame header lets
the rest of the importer treat frames and files alike.
"""
from __future__ import annotations

from pydicom.dataset import Dataset

# functional group -> the attributes it carries, and the name a single-frame header gives each
_GROUPS = {
    "PlanePositionSequence": {"ImagePositionPatient": "ImagePositionPatient"},
    "PlaneOrientationSequence": {"ImageOrientationPatient": "ImageOrientationPatient"},
    "PixelMeasuresSequence": {"PixelSpacing": "PixelSpacing", "SliceThickness": "SliceThickness"},
    "PixelValueTransformationSequence": {"RescaleSlope": "RescaleSlope", "RescaleIntercept": "RescaleIntercept"},
    "FrameContentSequence": {"TemporalPositionIndex": "TemporalPositionIndex",
                             "FrameAcquisitionDateTime": "AcquisitionDateTime",
                             "FrameAcquisitionNumber": "AcquisitionNumber"},
}
_TOP_LEVEL = ("SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "FrameOfReferenceUID", "Modality",
              "SOPInstanceUID", "Rows", "Columns", "StudyInstanceUID", "InstanceNumber", "SOPClassUID")


def flat_frames(ds: Dataset) -> list[Dataset]:
    """One single-frame-like dataset per frame, in stored frame order (per-frame values win over shared)."""
    shared = ds.get("SharedFunctionalGroupsSequence")
    shared = shared[0] if shared else Dataset()
    frames = []
    for per_frame in ds.PerFrameFunctionalGroupsSequence:
        flat = Dataset()
        for keyword in _TOP_LEVEL:
            if keyword in ds:
                setattr(flat, keyword, ds.data_element(keyword).value)
        for group in (shared, per_frame):
            for sequence, attributes in _GROUPS.items():
                items = group.get(sequence)
                if not items:
                    continue
                for source, target in attributes.items():
                    if source in items[0]:
                        setattr(flat, target, items[0].data_element(source).value)
        frames.append(flat)
    return frames
