"""The converter computes perfusion maps for a case without vendor maps, and for every case on request."""
import shutil

import numpy as np
import SimpleITK as sitk

from isles_pipeline.dataset_conversion.convert import convert_isles2018
from isles_pipeline.files import read_json
from isles_pipeline.imageio.nifti_io import read_image


def _two_cases(small_phantom, target):
    target.mkdir(parents=True)
    for name in ("case_1", "case_2"):
        shutil.copytree(small_phantom / name, target / name)
    for folder in (target / "case_1").glob("SMIR.Brain.XX.O.CT_[CMT]*"):  # CBF, CBV, MTT, Tmax: all gone
        if "4DPWI" not in folder.name:
            shutil.rmtree(folder)
    return target


def test_case_without_maps_gets_computed_ones(small_phantom, tmp_path):
    source = _two_cases(small_phantom, tmp_path / "TRAINING")
    assert len([p for p in (source / "case_1").iterdir() if p.is_dir()]) == 4  # CT, CT_4DPWI, OT, MR_DWI
    result = convert_isles2018(source, None, 18, "ISLES2018", 1, None, tmp_path / "raw")
    assert result.failures == [] and len(result.converted) == 2
    cases = read_json(result.dataset_folder / "dataset.json")["cases"]
    assert cases["train_001"]["map_source"] == "computed"
    assert cases["train_002"]["map_source"] == "vendor"
    ct = read_image(result.dataset_folder / "imagesTr" / "train_001_0000.nii.gz")
    for channel in range(1, 5):
        image = read_image(result.dataset_folder / "imagesTr" / f"train_001_{channel:04d}.nii.gz")
        assert image.GetSize() == ct.GetSize() and image.GetSpacing() == ct.GetSpacing()
        values = sitk.GetArrayFromImage(image)
        assert np.isfinite(values).all() and values.max() > 0
    assert not (result.dataset_folder / "mapsComputedTr").exists()


def test_compute_maps_flag_adds_computed_maps_for_every_case(small_phantom, tmp_path):
    source = _two_cases(small_phantom, tmp_path / "TRAINING")
    result = convert_isles2018(source, None, 18, "ISLES2018", 1, None, tmp_path / "raw", compute_maps=True)
    assert result.failures == []
    cases = read_json(result.dataset_folder / "dataset.json")["cases"]
    assert all(record["has_computed_maps"] for record in cases.values())
    vendor = sitk.GetArrayFromImage(read_image(result.dataset_folder / "imagesTr" / "train_002_0001.nii.gz"))
    computed = sitk.GetArrayFromImage(
        read_image(result.dataset_folder / "mapsComputedTr" / "train_002_0001.nii.gz"))
    assert vendor.dtype == np.uint16 and computed.dtype == np.float32  # vendor channel kept as delivered
    assert computed.shape == vendor.shape and computed.max() > 0


def test_predictor_computes_maps_for_a_case_without_them(small_phantom_testing, tmp_path, monkeypatch):
    import torch
    from predict_helpers import build_model, use_roots

    from isles_pipeline.inference.case_inputs import find_input_cases, prepare_case
    from isles_pipeline.inference.predictor import Predictor

    use_roots(monkeypatch, tmp_path / "roots")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        predictor = Predictor.from_model_folder(build_model(tmp_path / "roots"), [0], device="cpu")
        inputs = tmp_path / "in"
        shutil.copytree(small_phantom_testing / "case_1", inputs / "case_1")
        for folder in list((inputs / "case_1").glob("SMIR.Brain.XX.O.CT_*")):
            if folder.name.split(".")[4] in ("CT_CBF", "CT_CBV", "CT_MTT", "CT_Tmax"):
                shutil.rmtree(folder)
        prepared = prepare_case(find_input_cases(inputs)[0], predictor.configuration)
        with_vendor = prepare_case(find_input_cases(small_phantom_testing)[0], predictor.configuration)
    finally:
        torch.set_num_threads(threads)
    data, reference = prepared.preprocessed.data, with_vendor.preprocessed.data
    assert data.shape == reference.shape and np.isfinite(data).all()
    assert not np.allclose(data, reference)  # the map channels come from our deconvolution, not the vendor's
    mask = predictor.predict(data, prepared.properties).mask
    assert mask.shape == predictor.predict(reference, with_vendor.properties).mask.shape
