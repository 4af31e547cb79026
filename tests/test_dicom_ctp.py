"""The DICOM CTP importer reads every vendor layout to the same voxels, world grid and frame times."""
import logging

import numpy as np
import pytest
from pydicom.uid import JPEG2000Lossless, JPEGLosslessSV1, JPEGLSLossless, RLELossless

from isles_pipeline.imageio.dicom_ctp import read_ctp_dicom
from isles_pipeline.phantom.dicom_export import source_series, write_clutter, write_ctp_export


def assert_same_series(ctp, series, origin, spacing, direction, times):
    assert ctp.series.shape == series.shape
    np.testing.assert_array_equal(ctp.series, series)
    np.testing.assert_allclose(ctp.grid.origin, origin, atol=1e-5)
    np.testing.assert_allclose(ctp.grid.spacing, spacing, atol=1e-5)
    np.testing.assert_allclose(np.array(ctp.grid.direction).reshape(3, 3), direction, atol=1e-9)
    np.testing.assert_array_equal(ctp.times_s, times)


@pytest.mark.parametrize("style, syntax", [
    ("temporal_index", None),
    ("series_per_time_point", None),
    ("times_only", RLELossless),
    ("trigger_time", None),
    ("acquisition_number", JPEGLSLossless),
    ("temporal_index", JPEG2000Lossless),
    ("series_per_time_point", JPEGLosslessSV1),
])
def test_every_vendor_style_reads_to_the_source(tmp_path, style, syntax):
    series, origin, spacing, direction, times = source_series()
    write_ctp_export(tmp_path, series, origin, spacing, direction, times, style, transfer_syntax=syntax,
                     shuffle=True)
    write_clutter(tmp_path / "other")
    ctp = read_ctp_dicom(tmp_path)
    assert_same_series(ctp, series, origin, spacing, direction, times)
    assert ctp.series.dtype == np.int16
    assert ctp.frame_interval_s is None  # non-uniform: kept as per-frame times
    image = ctp.image()
    world = image.TransformContinuousIndexToPhysicalPoint((39.0, 31.0, 3.0, 0.0))[:3]
    expected = np.array(origin) + direction @ (np.array(spacing) * [39, 31, 3])
    np.testing.assert_allclose(world, expected, atol=1e-4)


def test_unsigned_storage_and_a_fractional_slope_give_the_same_hu(tmp_path):
    series, origin, spacing, direction, times = source_series()
    write_ctp_export(tmp_path / "unsigned", series, origin, spacing, direction, times, "temporal_index", signed=False,
                     intercept=-1024.0)
    unsigned = read_ctp_dicom(tmp_path / "unsigned")
    assert unsigned.series.dtype == np.int16
    np.testing.assert_array_equal(unsigned.series, series)
    write_ctp_export(tmp_path / "slope", series, origin, spacing, direction, times, "temporal_index", slope=0.5,
                     intercept=-1024.0)
    scaled = read_ctp_dicom(tmp_path / "slope")
    assert scaled.series.dtype == np.float32
    np.testing.assert_array_equal(scaled.series, series)


def test_uniform_times_give_a_frame_interval(tmp_path):
    series, origin, spacing, direction, _ = source_series()
    times = np.arange(series.shape[0]) * 1.6
    write_ctp_export(tmp_path, series, origin, spacing, direction, times, "times_only")
    ctp = read_ctp_dicom(tmp_path)
    assert ctp.frame_interval_s == pytest.approx(1.6, abs=1e-6)
    np.testing.assert_allclose(ctp.times_s, times, atol=1e-6)


def test_largest_series_is_taken_the_other_named_and_selectable(tmp_path, caplog):
    series, origin, spacing, direction, times = source_series()
    write_ctp_export(tmp_path / "a", series, origin, spacing, direction, times, "temporal_index", series_number=5,
                     description="CTP wide")
    write_ctp_export(tmp_path / "b", series[:, :3], origin, spacing, direction, times, "temporal_index",
                     series_number=7, description="CTP narrow")
    with caplog.at_level(logging.INFO):
        largest = read_ctp_dicom(tmp_path)
    assert largest.series.shape[1] == 4 and "CTP wide" in largest.label
    assert any("also found" in r.message and "CTP narrow" in r.message for r in caplog.records)
    for name in ("7", "CTP narrow"):
        picked = read_ctp_dicom(tmp_path, series=name)
        np.testing.assert_array_equal(picked.series, series[:, :3])


def test_frames_are_ordered_by_time_whatever_the_file_order(tmp_path):
    series, origin, spacing, direction, times = source_series()
    write_ctp_export(tmp_path, series[::-1], origin, spacing, direction, times[-1] - times[::-1], "times_only",
                     shuffle=True, seed=3)
    ctp = read_ctp_dicom(tmp_path)
    np.testing.assert_array_equal(ctp.series, series[::-1])
    np.testing.assert_allclose(ctp.times_s, times[-1] - times[::-1], atol=1e-6)


def test_files_without_preamble_are_read_and_strays_ignored(tmp_path):
    """Old PACS write DICOM without the 128-byte preamble and 'DICM' (and without a transfer syntax: implicit VR)."""
    import pydicom
    from pydicom.uid import ImplicitVRLittleEndian

    series, origin, spacing, direction, times = source_series()
    for path in write_ctp_export(tmp_path, series, origin, spacing, direction, times, "temporal_index"):
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        ds.save_as(path, implicit_vr=True, little_endian=True, enforce_file_format=False)
        raw = path.read_bytes()
        path.write_bytes(raw[raw.index(b"\x08\x00", 132):] if raw[128:132] == b"DICM" else raw)
    (tmp_path / "notes.bin").write_bytes(bytes(range(256)) * 4)
    assert pydicom.dcmread(next(tmp_path.glob("IM_*")), force=True).Rows == 32
    ctp = read_ctp_dicom(tmp_path)
    assert_same_series(ctp, series, origin, spacing, direction, times)


def test_gantry_tilt_is_resampled_onto_the_orthogonal_grid(tmp_path):
    """Slices stacked 3 rows further along the column direction per slice (a tilt of atan(2.7/5) = 28.4 deg): an
    integer shift, so the resampled voxels are exactly the source voxels moved by 3 rows per slice."""
    import pydicom

    series, origin, spacing, direction, times = source_series()
    files = write_ctp_export(tmp_path, series, origin, spacing, direction, times, "temporal_index")
    for path in files:
        ds = pydicom.dcmread(path)
        z = int(path.stem.split("_")[2])
        position = np.array([float(v) for v in ds.ImagePositionPatient]) + direction[:, 1] * spacing[1] * 3 * z
        ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
        ds.save_as(path)
    ctp = read_ctp_dicom(tmp_path)
    assert ctp.grid.tilt_deg == pytest.approx(np.degrees(np.arctan2(3 * spacing[1], spacing[2])), abs=1e-3)
    np.testing.assert_allclose(np.array(ctp.grid.direction).reshape(3, 3), direction, atol=1e-9)
    np.testing.assert_allclose(ctp.grid.spacing, spacing, atol=1e-5)
    for z in range(series.shape[1]):  # grid row y holds the slice's row y - 3z
        np.testing.assert_allclose(ctp.series[:, z, 3 * z:], series[:, z, : series.shape[2] - 3 * z], atol=1e-3)
        assert (ctp.series[:, z, : 3 * z] == series[:, z].min(axis=(1, 2))[:, None, None]).all()


def test_an_enhanced_multiframe_ct_object_reads_to_the_source(tmp_path):
    from isles_pipeline.phantom.dicom_export import write_enhanced_ct

    series, origin, spacing, direction, times = source_series()
    write_enhanced_ct(tmp_path / "export" / "CTP.dcm", series, origin, spacing, direction, times)
    write_clutter(tmp_path / "export" / "other")
    ctp = read_ctp_dicom(tmp_path / "export")
    assert_same_series(ctp, series, origin, spacing, direction, times)
    assert ctp.time_source == "AcquisitionDateTime"


def test_values_beyond_int16_switch_the_series_to_float32(tmp_path):
    series, origin, spacing, direction, times = source_series()
    series[5:] += 30000  # unsigned storage up to 33000 HU from the sixth frame on: int16 no longer holds them
    write_ctp_export(tmp_path, series, origin, spacing, direction, times, "temporal_index", signed=False,
                     intercept=-1024.0)
    ctp = read_ctp_dicom(tmp_path, threads=1)
    assert ctp.series.dtype == np.float32
    np.testing.assert_array_equal(ctp.series, series)


def test_a_missing_decoder_is_named_with_the_package_to_install(monkeypatch):
    from isles_pipeline.imageio import dicom_codecs

    assert dicom_codecs.missing_decoder(JPEGLSLossless) is None  # installed: the tests above decode JPEG-LS
    monkeypatch.setattr(dicom_codecs, "installed_plugins", lambda: set())
    assert "pip install pyjpegls" in dicom_codecs.missing_decoder(JPEGLSLossless)
    assert "pip install pylibjpeg-openjpeg" in dicom_codecs.missing_decoder(JPEG2000Lossless)
    assert dicom_codecs.missing_decoder(RLELossless) is None  # pydicom decodes RLE itself


def test_a_derived_series_at_the_same_positions_is_no_time_point(tmp_path):
    """A temporal MIP exported beside one-series-per-time-point frames shares their positions and frame of
    reference; it is left out by its ImageType DERIVED."""
    import pydicom

    from isles_pipeline.phantom.dicom_export import write_volume

    series, origin, spacing, direction, times = source_series()
    files = write_ctp_export(tmp_path, series, origin, spacing, direction, times, "series_per_time_point")
    frame_of_reference = pydicom.dcmread(files[0]).FrameOfReferenceUID
    write_volume(tmp_path / "tmip", series.max(axis=0), origin, spacing, direction, description="TMIP",
                 series_number=40, image_type=("DERIVED", "SECONDARY", "AXIAL"),
                 frame_of_reference=frame_of_reference)
    ctp = read_ctp_dicom(tmp_path)
    assert_same_series(ctp, series, origin, spacing, direction, times)
    assert any("TMIP" in other for other in ctp.others)


def test_slices_of_a_time_point_at_different_times_give_its_mean_time(tmp_path, caplog):
    """A shuttle protocol: the table sweeps back and forth, 0.3 s per slice, so every slice has its own time; a
    frame's time is its slices' mean, the time points are still told apart at each position, and the log says
    that a frame spans more than half the shortest interval (0.9 of 1.5 s)."""
    series, origin, spacing, direction, times = source_series()
    write_ctp_export(tmp_path, series, origin, spacing, direction, times, "times_only", shuttle_s=0.3, shuffle=True)
    with caplog.at_level(logging.WARNING):
        ctp = read_ctp_dicom(tmp_path)
    assert any("span up to 0.90 s" in record.message for record in caplog.records)
    np.testing.assert_array_equal(ctp.series, series)
    np.testing.assert_allclose(ctp.times_s, times, atol=1e-6)  # the sweep's mean offset is the same every frame


def test_a_constant_temporal_index_falls_back_to_the_times(tmp_path):
    """Some exports write TemporalPositionIndex 1 (and AcquisitionNumber 1) on every slice: no key tells the time
    points apart, the times do."""
    import pydicom

    series, origin, spacing, direction, times = source_series()
    for path in write_ctp_export(tmp_path, series, origin, spacing, direction, times, "temporal_index"):
        ds = pydicom.dcmread(path)
        ds.TemporalPositionIndex, ds.AcquisitionNumber = 1, 1
        ds.save_as(path)
    ctp = read_ctp_dicom(tmp_path)
    assert_same_series(ctp, series, origin, spacing, direction, times)
    assert ctp.time_key == "AcquisitionTime at each slice position"
