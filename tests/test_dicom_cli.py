"""isles_dicom_to_nifti: the 4D NIfTI and frame times it writes are the source's, and read back as the engine
reads them; compared with dcm2niix on the same export."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from isles_pipeline.cli.dicom_to_nifti import main
from isles_pipeline.imageio.dicom_ctp import read_ctp_dicom
from isles_pipeline.imageio.nifti_io import read_image
from isles_pipeline.perfusion.io import header_frame_interval, read_frame_times_csv, read_series
from isles_pipeline.phantom.dicom_export import source_series, write_clutter, write_ctp_export

DCM2NIIX = shutil.which("dcm2niix") or shutil.which("dcm2niix", path=str(Path(sys.executable).parent))


def index_to_world(image: sitk.Image) -> np.ndarray:
    """4 x 4 affine from a (x, y, z) index to LPS world of the first three axes."""
    dimension = image.GetDimension()
    direction = np.array(image.GetDirection()).reshape(dimension, dimension)[:3, :3]
    affine = np.eye(4)
    affine[:3, :3] = direction * np.array(image.GetSpacing()[:3])
    affine[:3, 3] = image.GetOrigin()[:3]
    return affine


@pytest.mark.parametrize("uniform", [False, True])
def test_writes_the_series_and_its_frame_times_as_the_engine_reads_them(tmp_path, capsys, uniform):
    series, origin, spacing, direction, times = source_series()
    if uniform:
        times = np.arange(len(times)) * 1.25
    write_ctp_export(tmp_path / "export", series, origin, spacing, direction, times, "times_only", shuffle=True)
    write_clutter(tmp_path / "export" / "more")
    out = tmp_path / "out"
    name = "ctp.nii.gz" if uniform else "ctp.nii"
    assert main(["-i", str(tmp_path / "export"), "-o", str(out)] + (["--compress"] if uniform else [])) == 0
    assert name in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted([name, "ctp_dicom.json", "ctp_frame_times.csv"])
    image = read_image(out / name)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), series)
    np.testing.assert_allclose(image.GetOrigin()[:3], origin, atol=1e-4)
    np.testing.assert_allclose(image.GetSpacing()[:3], spacing, atol=1e-5)
    np.testing.assert_allclose(np.array(image.GetDirection()).reshape(4, 4)[:3, :3], direction, atol=1e-6)
    np.testing.assert_array_equal(read_frame_times_csv(out / "ctp_frame_times.csv"), times)
    sidecar = json.loads((out / "ctp_dicom.json").read_text())
    assert sidecar["frame_times_s"] == list(times) and "Head NCCT" in " ".join(sidecar["other_series"])
    if uniform:  # the header alone gives the engine the right times
        assert header_frame_interval(out / name) == pytest.approx(1.25)
        np.testing.assert_allclose(read_series(out / name)[2], times)
    else:  # the header holds no invented constant interval: without the CSV the engine refuses the series
        assert header_frame_interval(out / name) == 0.0
        with pytest.raises(ValueError, match="timing is unknown"):
            read_series(out / name)
        np.testing.assert_array_equal(read_series(out / name, out / "ctp_frame_times.csv")[2], times)


@pytest.mark.skipif(DCM2NIIX is None, reason="dcm2niix is not installed (pip install dcm2niix)")
def test_same_voxels_in_the_world_as_dcm2niix_and_where_we_differ(tmp_path):
    series, origin, spacing, direction, times = source_series()
    write_ctp_export(tmp_path / "export", series, origin, spacing, direction, times, "temporal_index")
    assert main(["-i", str(tmp_path / "export"), "-o", str(tmp_path / "ours")]) == 0
    (tmp_path / "theirs").mkdir()
    subprocess.run([DCM2NIIX, "-z", "n", "-f", "ctp", "-o", str(tmp_path / "theirs"), str(tmp_path / "export")],
                   check=True, capture_output=True)
    ours, theirs = read_image(tmp_path / "ours" / "ctp.nii"), sitk.ReadImage(str(tmp_path / "theirs" / "ctp.nii"))
    # every voxel of ours, through the world, lands on a voxel of theirs holding the same value
    mapping = np.linalg.inv(index_to_world(theirs)) @ index_to_world(ours)
    x, y, z = np.meshgrid(*(np.arange(n) for n in ours.GetSize()[:3]), indexing="ij")
    index = np.stack([x.ravel(), y.ravel(), z.ravel(), np.ones(x.size)])
    mapped = mapping @ index
    np.testing.assert_allclose(mapped, np.round(mapped), atol=1e-3)
    mapped = np.round(mapped).astype(int)
    ours_array, theirs_array = sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(theirs)
    np.testing.assert_array_equal(ours_array[:, index[2].astype(int), index[1].astype(int), index[0].astype(int)],
                                  theirs_array[:, mapped[2], mapped[1], mapped[0]])
    # they flip the row axis (their grid starts at the other end of the y axis); we keep DICOM's order
    assert not np.allclose(ours.GetOrigin()[:3], theirs.GetOrigin()[:3])
    # timing: both keep the exact times (their JSON FrameTimesStart, our CSV), but their header's interval is the
    # mean interval (2.25 s), a constant the protocol never had; ours is 0, so nothing can use it by mistake
    sidecar = json.loads((tmp_path / "theirs" / "ctp.json").read_text())
    np.testing.assert_allclose(sidecar["FrameTimesStart"], times)
    assert theirs.GetSpacing()[3] == pytest.approx(times[-1] / (len(times) - 1))
    assert header_frame_interval(tmp_path / "ours" / "ctp.nii") == 0.0


@pytest.mark.parametrize("style", ["series_per_time_point", "temporal_index"])
def test_each_time_point_matches_gdcm_reading_its_files(tmp_path, style):
    """An independent reader: SimpleITK's GDCM series reader on one time point's files gives the same voxels
    and world grid as the importer's frame."""
    series, origin, spacing, direction, times = source_series()
    write_ctp_export(tmp_path, series, origin, spacing, direction, times, style, shuffle=True)
    ctp = read_ctp_dicom(tmp_path)
    reader = sitk.ImageSeriesReader()
    for t in (0, 7):
        reader.SetFileNames([str(p) for p in ctp.files[t]])
        gdcm = reader.Execute()
        np.testing.assert_array_equal(sitk.GetArrayFromImage(gdcm), ctp.series[t])
        np.testing.assert_allclose(gdcm.GetOrigin(), ctp.grid.origin, atol=1e-4)
        np.testing.assert_allclose(gdcm.GetSpacing(), ctp.grid.spacing, atol=1e-4)
        np.testing.assert_allclose(gdcm.GetDirection(), ctp.grid.direction, atol=1e-6)


@pytest.mark.skipif(DCM2NIIX is None, reason="dcm2niix is not installed (pip install dcm2niix)")
def test_where_dcm2niix_loses_the_4d_series_or_its_times(tmp_path):
    """The differences the how-to states: one series per time point -> dcm2niix writes one 3D file per series;
    times only in TriggerTime -> no times and a 1 s interval in its header. We read both as the source."""
    series, origin, spacing, direction, times = source_series()
    for style in ("series_per_time_point", "trigger_time"):
        write_ctp_export(tmp_path / style, series, origin, spacing, direction, times, style)
        (tmp_path / f"{style}_out").mkdir()
        subprocess.run([DCM2NIIX, "-z", "n", "-f", "%s", "-o", str(tmp_path / f"{style}_out"), str(tmp_path / style)],
                       check=True, capture_output=True)
        np.testing.assert_array_equal(read_ctp_dicom(tmp_path / style).times_s, times)
    per_series = sorted((tmp_path / "series_per_time_point_out").glob("*.nii"))
    assert len(per_series) == len(times) and all(sitk.ReadImage(str(p)).GetDimension() == 3 for p in per_series)
    trigger = sitk.ReadImage(str(next((tmp_path / "trigger_time_out").glob("*.nii"))))
    assert trigger.GetSize()[3] == len(times) and trigger.GetSpacing()[3] == 1.0
    sidecar = json.loads(next((tmp_path / "trigger_time_out").glob("*.json")).read_text())
    assert "FrameTimesStart" not in sidecar
