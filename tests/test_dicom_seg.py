"""The core mask as a DICOM SEG lands on the right voxels of the source CTP series when read back."""
import numpy as np
import pydicom
import pytest

from isles_pipeline.errors import CaseError
from isles_pipeline.imageio.dicom_ctp import read_ctp_dicom
from isles_pipeline.imageio.dicom_seg import read_core_seg, write_core_seg
from isles_pipeline.phantom.dicom_export import source_series, write_ctp_export


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


def test_after_gantry_tilt_the_seg_lands_on_the_source_slices(tmp_path):
    series, origin, spacing, direction, times = source_series()
    files = write_ctp_export(tmp_path / "export", series, origin, spacing, direction, times, "temporal_index")
    for path in files:  # 2 rows further per slice: the importer shifts slice z by 2z rows onto its grid
        ds = pydicom.dcmread(path)
        z = int(path.stem.split("_")[2])
        position = np.array([float(v) for v in ds.ImagePositionPatient]) + direction[:, 1] * spacing[1] * 2 * z
        ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
        ds.save_as(path)
    ctp = read_ctp_dicom(tmp_path / "export")
    mask = np.zeros(series.shape[1:], bool)
    mask[:, 14:20, 10:30] = True  # the same world block on every grid slice
    back = read_core_seg(write_core_seg(mask, ctp.files[0], tmp_path / "seg.dcm", grid=ctp.grid))
    for z, path in enumerate(ctp.files[0]):
        expected = np.zeros(mask.shape[1:], bool)
        expected[14 - 2 * z:20 - 2 * z, 10:30] = True  # on the source slice the block sits 2z rows higher
        np.testing.assert_array_equal(back[pydicom.dcmread(path).SOPInstanceUID], expected)
