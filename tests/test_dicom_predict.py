"""isles_predict on DICOM: a folder of studies, each study's core mask on its CTP grid, a DICOM SEG that lands on
the same voxels, and a broken study reported in one line while the others are written."""
import csv

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from predict_helpers import PLANS, TRAINER, model_with_roots
from pydicom.uid import generate_uid

from isles_pipeline.cli.predict import main as predict_main
from isles_pipeline.imageio.dicom_ctp import read_ctp_dicom
from isles_pipeline.imageio.dicom_seg import read_core_seg
from isles_pipeline.imageio.nifti_io import read_image
from isles_pipeline.phantom.dicom_export import export_nifti_series, write_clutter


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    yield from model_with_roots(tmp_path_factory.mktemp("model"), folds=(0,))


def export_case(case_dir, folder, times=None):
    """A phantom case's 4D series as a DICOM study (its own StudyInstanceUID), with the usual clutter."""
    files = export_nifti_series(next(case_dir.glob("*CT_4DPWI*/*.nii")), folder, "times_only", times_s=times,
                                shuffle=True, study_uid=generate_uid())
    write_clutter(folder / "other")
    return files


def test_a_folder_of_studies_is_predicted_with_segs(model, small_phantom_testing, tmp_path, capsys):
    studies = tmp_path / "export"
    export_case(small_phantom_testing / "case_1", studies / "patient_1")
    frames = read_image(next((small_phantom_testing / "case_2").glob("*CT_4DPWI*/*.nii"))).GetSize()[3]
    non_uniform = np.where(np.arange(frames) < 30, np.arange(frames), 30 + 2 * (np.arange(frames) - 30.0))
    export_case(small_phantom_testing / "case_2", studies / "patient_2", times=non_uniform)
    broken = export_case(small_phantom_testing / "case_3", studies / "patient_3")
    broken[40].unlink()  # a time point missing a slice
    out = tmp_path / "out"
    code = predict_main(["-i", str(studies), "-o", str(out), "-d", "18", "-f", "0", "-tr", TRAINER, "-p", PLANS,
                         "-device", "cpu", "--dicom_seg"])
    error = capsys.readouterr().err
    assert code == 1 and "patient_3" in error and "a time point is missing a slice" in error
    assert not (out / "patient_3.nii.gz").exists() and not (out / "patient_3_core_seg.dcm").exists()
    rows = {row["case"]: row for row in csv.DictReader((out / "volumes.csv").open())}
    assert sorted(rows) == ["patient_1", "patient_2"]
    for name in rows:
        ctp = read_ctp_dicom(studies / name)
        mask_image = read_image(out / f"{name}.nii.gz")
        assert mask_image.GetSize() == ctp.grid.size
        np.testing.assert_allclose(mask_image.GetOrigin(), ctp.grid.origin, atol=1e-4)
        np.testing.assert_allclose(mask_image.GetSpacing(), ctp.grid.spacing, rtol=1e-6)
        np.testing.assert_allclose(mask_image.GetDirection(), ctp.grid.direction, atol=1e-6)
        mask = sitk.GetArrayFromImage(mask_image) > 0
        assert 0 < mask.sum() < mask.size  # (a random model's mask) a misplaced slice or flip would show
        seg = read_core_seg(out / f"{name}_core_seg.dcm")
        for z, path in enumerate(ctp.files[0]):
            np.testing.assert_array_equal(seg[pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID],
                                          mask[z])
