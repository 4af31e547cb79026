"""isles_predict's DICOM input: a folder of one study or of several, each study's series staged for the network."""
import numpy as np
import SimpleITK as sitk
from pydicom.uid import generate_uid

from isles_pipeline.inference.dicom_cases import find_dicom_studies, read_study, uniform_series
from isles_pipeline.phantom.dicom_export import source_series, write_clutter, write_ctp_export, write_volume


def test_a_folder_of_studies_gives_one_case_per_study_named_by_its_folder(tmp_path):
    series, origin, spacing, direction, times = source_series()
    for name in ("patient_a", "patient_b"):
        uid = generate_uid()
        write_ctp_export(tmp_path / name / "DICOM" / "SE1", series, origin, spacing, direction, times,
                         "temporal_index", study_uid=uid)
        write_volume(tmp_path / name / "DICOM" / "SE2", np.zeros((3, 8, 8)), origin, spacing, np.eye(3),
                     description="NCCT", series_number=2, study_uid=uid)
    write_volume(tmp_path / "prior", np.zeros((3, 8, 8)), origin, spacing, np.eye(3), description="old head CT",
                 series_number=2, study_uid=generate_uid())  # a study without a 4D series: left out
    studies = find_dicom_studies(tmp_path)
    assert sorted(s.name for s in studies) == ["patient_a", "patient_b"]
    np.testing.assert_array_equal(read_study(studies[0]).series, series)


def test_one_study_is_one_case_named_after_the_folder(tmp_path):
    series, origin, spacing, direction, times = source_series()
    write_ctp_export(tmp_path / "study7", series, origin, spacing, direction, times, "series_per_time_point",
                     shuffle=True)
    write_clutter(tmp_path / "study7")
    assert [s.name for s in find_dicom_studies(tmp_path / "study7")] == ["study7"]


def test_non_uniform_times_are_interpolated_onto_the_engines_grid(tmp_path):
    series, origin, spacing, direction, times = source_series()
    ramp = np.broadcast_to(4 * times[:, None, None, None], series.shape).astype(np.float32)  # 4 HU per s
    write_ctp_export(tmp_path, ramp, origin, spacing, direction, times, "times_only")
    ctp = read_study(find_dicom_studies(tmp_path)[0])
    uniform, step = uniform_series(ctp)
    assert step == 1.0  # the median interval (1.5 s) capped at 1 s
    assert uniform.shape[0] == int(times[-1]) + 1
    np.testing.assert_allclose(uniform[:, 0, 0, 0], 4 * np.arange(uniform.shape[0]) * step, atol=1e-3)
    image = sitk.GetImageFromArray(uniform[0])
    assert image.GetSize() == ctp.grid.size
