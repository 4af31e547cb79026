"""A phantom's CTP exported as DICOM gives the same perfusion maps as its NIfTI (with the same frame times)."""
import json

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import RLELossless

from isles_pipeline.cli.perfusion_maps import main
from isles_pipeline.imageio.nifti_io import read_image
from isles_pipeline.perfusion import MAP_NAMES
from isles_pipeline.phantom.dicom_export import write_clutter, write_ctp_export


@pytest.fixture(scope="module")
def phantom_series(tmp_path_factory):
    """(NIfTI path, series (T, Z, Y, X), non-uniform frame times: 1 s for the first pass, then 2 s) of one
    small phantom case."""
    from isles_pipeline.phantom import generate_phantom

    folder = tmp_path_factory.mktemp("dicom_maps") / "TESTING"
    generate_phantom(folder, num_cases=1, split="TESTING", seed=4, size=64)
    path = next((folder / "case_1").glob("*CT_4DPWI*/*.nii"))
    series = sitk.GetArrayFromImage(read_image(path))
    frames = np.arange(series.shape[0], dtype=float)
    return path, series, np.where(frames < 30, frames, 30 + 2 * (frames - 30))


@pytest.mark.parametrize("uniform", [True, False])
def test_dicom_in_gives_the_maps_of_the_nifti_in(tmp_path, phantom_series, uniform):
    nifti, series, non_uniform = phantom_series
    image = read_image(nifti)
    times = np.arange(series.shape[0]) * image.GetSpacing()[3] if uniform else non_uniform
    assert np.array_equal(series, np.round(series))  # integral HU: DICOM stores them exactly
    direction = np.array(image.GetDirection()).reshape(4, 4)[:3, :3]
    export = tmp_path / "export"
    write_ctp_export(export, series, image.GetOrigin()[:3], image.GetSpacing()[:3], direction, times,
                     "temporal_index" if uniform else "times_only", transfer_syntax=None if uniform else RLELossless,
                     shuffle=True)
    write_clutter(export / "other")
    arguments = ["-device", "cpu", "--no_qc"]
    if not uniform:
        csv = tmp_path / "times.csv"
        csv.write_text("\n".join(str(t) for t in times))
        arguments += ["-frame_times", str(csv)]
    assert main(["-i", str(nifti), "-o", str(tmp_path / "from_nifti"), *arguments]) == 0
    assert main(["-i", str(export), "-o", str(tmp_path / "from_dicom"), "-device", "cpu", "--no_qc"]
                + (["--dicom_maps"] if uniform else [])) == 0
    for name in MAP_NAMES:
        ours = read_image(tmp_path / "from_dicom" / f"{name}.nii.gz")
        reference = read_image(tmp_path / "from_nifti" / f"{name}.nii.gz")
        np.testing.assert_allclose(ours.GetOrigin(), reference.GetOrigin(), atol=1e-4)
        np.testing.assert_allclose(ours.GetSpacing(), reference.GetSpacing(), atol=1e-5)
        np.testing.assert_allclose(ours.GetDirection(), reference.GetDirection(), atol=1e-6)
        np.testing.assert_allclose(sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(reference), rtol=1e-5,
                                   atol=1e-5, err_msg=name)
    aif = json.loads((tmp_path / "from_dicom" / "aif.json").read_text())
    assert aif["source"] == str(export)
    if uniform:  # the parametric maps hold the NIfTI maps' values, slice by slice in z order
        cbf = sitk.GetArrayFromImage(read_image(tmp_path / "from_dicom" / "cbf.nii.gz"))
        parametric = pydicom.dcmread(tmp_path / "from_dicom" / "dicom" / "cbf.dcm")
        depth = [float(np.dot(f.PlanePositionSequence[0].ImagePositionPatient, direction[:, 2]))
                 for f in parametric.PerFrameFunctionalGroupsSequence]
        np.testing.assert_array_equal(parametric.pixel_array[np.argsort(depth)], cbf)


def test_dicom_maps_need_dicom_input(tmp_path, phantom_series, capsys):
    assert main(["-i", str(phantom_series[0]), "-o", str(tmp_path / "out"), "--dicom_maps"]) == 1
    assert "needs a DICOM export folder" in capsys.readouterr().err and not (tmp_path / "out").exists()
