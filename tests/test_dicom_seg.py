"""The core mask as a DICOM SEG lands on the right voxels of the source CTP series when read back."""
import numpy as np
import pydicom
import pytest

from dicom_exports import source_series, write_ctp_export
from isles_pipeline.imageio.dicom_ctp import read_ctp_dicom
from isles_pipeline.imageio.dicom_seg import read_core_seg, write_core_seg
from isles_pipeline.preprocessing.errors import CaseError


@pytest.mark.parametrize("style", ["temporal_index", "series_per_time_point"])
def test_seg_round_trip_lands_on_the_source_slices(tmp_path, style):
    series, origin, spacing, direction, times = source_series()
    write_ctp_export(tmp_path / "export", series, origin, spacing, direction, times, style, shuffle=True)
    ctp = read_ctp_dicom(tmp_path / "export")
    rng = np.random.default_rng(1)
    mask = np.zeros(series.shape[1:], bool)
    mask[1, 5:12, 7:20] = True  # an asymmetric block: a flip or transpose would move it
    mask[2] = rng.random(mask.shape[1:]) > 0.7
    path = write_core_seg(mask, ctp.files[0], tmp_path / "seg" / "core_seg.dcm")
    back = read_core_seg(path)
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in ctp.files[0]]
    assert set(back) == {s.SOPInstanceUID for s in sources}
    seg = pydicom.dcmread(path)
    assert seg.Modality == "SEG"
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == sources[0].SeriesInstanceUID
    positions = {tuple(np.round([float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient], 4))
                 for f in seg.PerFrameFunctionalGroupsSequence}
    for z, source in enumerate(sources):
        np.testing.assert_array_equal(back[source.SOPInstanceUID], mask[z])
        # the voxel at (z, y, x) of the mask is at the world position of that slice's pixel (y, x)
        assert tuple(np.round([float(v) for v in source.ImagePositionPatient], 4)) in positions
        world = np.array([float(v) for v in source.ImagePositionPatient])
        np.testing.assert_allclose(world, ctp.grid.index_to_world((0, 0, z)), atol=1e-4)


def test_a_mask_on_another_grid_is_refused(tmp_path):
    series, origin, spacing, direction, times = source_series()
    write_ctp_export(tmp_path / "export", series, origin, spacing, direction, times, "temporal_index")
    ctp = read_ctp_dicom(tmp_path / "export")
    with pytest.raises(CaseError, match="does not fit"):
        write_core_seg(np.zeros((4, 40, 32)), ctp.files[0], tmp_path / "seg.dcm")
    assert not (tmp_path / "seg.dcm").exists()
