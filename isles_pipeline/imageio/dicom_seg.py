"""The infarct core mask as a DICOM Segmentation (binary SEG, highdicom) referencing the source CTP series.

A viewer overlays a SEG on the images it references, so the SEG's frames are the mask's slices referenced to
the slices of one CTP time point (the first: every time point covers the same positions). The mask must be on
the CTP's own grid ((Z, Y, X) with z sorted along the slice normal, as `dicom_ctp` reads it): each of its slices
then lands on one source file, frame by frame, with no resampling; after a gantry tilt (the series was shifted
in-plane onto an orthogonal grid) each mask slice is shifted back onto its source slice (nearest neighbour).
Empty slices are kept, so a reader sees the whole slab.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from scipy import ndimage

from isles_pipeline.errors import CaseError
from isles_pipeline.files import atomic_path
from isles_pipeline.imageio.dicom_geometry import Grid

INFARCT = Code("55641003", "SCT", "Infarct")
BRAIN = Code("12738006", "SCT", "Brain")
SEG_NAME = "core_seg.dcm"
# Type 2 patient/study attributes highdicom copies from the sources: de-identified exports often drop them.
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
          "ReferringPhysicianName", "StudyID", "AccessionNumber")


def source_header(path: Path) -> pydicom.Dataset:
    """A source slice's header, with absent Type 2 patient/study attributes present and empty (de-identified
    exports drop them; highdicom copies them). In memory only: the file is not touched."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    for keyword in _TYPE2:
        if keyword not in ds:
            setattr(ds, keyword, "")
    return ds


def core_segment(algorithm_version: str = "") -> hd.seg.SegmentDescription:
    """Segment 1: infarct core (a morphologically abnormal structure, brain), found by this software."""
    algorithm = hd.AlgorithmIdentificationSequence(name="isles_pipeline", version=algorithm_version or "unknown",
                                                   family=codes.cid7162.ArtificialIntelligence)
    return hd.seg.SegmentDescription(segment_number=1, segment_label="infarct core",
                                     segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
                                     segmented_property_type=INFARCT, algorithm_type="AUTOMATIC",
                                     algorithm_identification=algorithm, anatomic_regions=[BRAIN])


def mask_on_source_slices(mask: np.ndarray, grid: Grid) -> np.ndarray:
    """A (Z, Y, X) mask on a tilted series' orthogonal grid moved back onto its source slices."""
    if not grid.shifts:
        return mask
    moved = np.zeros_like(mask)
    for z, (rows, columns) in enumerate(grid.shifts):
        moved[z] = ndimage.shift(mask[z].astype(np.uint8), (-rows, -columns), order=0, mode="constant") > 0
    return moved


def write_core_seg(mask: np.ndarray, source_files: Sequence[Path], path: Path, grid: Grid | None = None,
                   series_number: int = 9901, algorithm_version: str = "") -> Path:
    """Write `mask` ((Z, Y, X), nonzero = core, on the grid `dicom_ctp` read) as a binary SEG on `source_files`
    (one per z, in z order); `grid`: the series' grid, needed only after a gantry tilt.

    Raises CaseError naming the first source file when the mask does not fit the source slices.
    """
    if len(set(map(str, source_files))) != len(source_files):
        raise CaseError(str(source_files[0]), "the source is an enhanced multi-frame object: a SEG is written only "
                                              "on single-frame source slices")
    mask = np.asarray(mask) > 0
    if grid is not None and mask.shape == grid.size[::-1]:
        mask = mask_on_source_slices(mask, grid)
    source_files = [Path(p) for p in source_files]
    sources = [source_header(p) for p in source_files]
    first = sources[0]
    if mask.shape != (len(sources), int(first.Rows), int(first.Columns)):
        raise CaseError(str(source_files[0]), f"core mask of shape {mask.shape} does not fit {len(sources)} source "
                                              f"slices of {first.Rows}x{first.Columns}")
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=mask.astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[core_segment(algorithm_version)], series_instance_uid=hd.UID(),
        series_number=series_number, sop_instance_uid=hd.UID(), instance_number=1, manufacturer="isles_pipeline",
        manufacturer_model_name="isles_pipeline", software_versions=algorithm_version or "unknown",
        device_serial_number="none", series_description="Infarct core (isles_pipeline)", omit_empty_frames=False)
    path = Path(path)
    with atomic_path(path) as temporary:
        seg.save_as(temporary)
    return path


def read_core_seg(path: Path) -> dict[str, np.ndarray]:
    """{source SOPInstanceUID: (rows, columns) bool mask} of a SEG written by `write_core_seg`."""
    seg = hd.seg.segread(Path(path))
    uids = [uid for _, _, uid in seg.get_source_image_uids()]
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[1])
    return {uid: pixels[i, ..., 0] > 0 for i, uid in enumerate(uids)}
