"""isles_predict on ISLES-layout and raw inputs: geometry kept (200 x 200 resampled internally, the real
fixture's identity-sform header), fold ensemble = mean of single folds, SMIR names from the CT_MTT id,
a corrupt case reported while the others are written, mixed folds refused, post-processing applied."""
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from predict_helpers import PLANS, TRAINER, model_with_roots, save_checkpoint

from isles_pipeline.cli.predict import main as predict_main
from isles_pipeline.components import label_components
from isles_pipeline.dataset_conversion.isles2018_layout import list_case_folders, read_case_layout
from isles_pipeline.imageio.nifti_io import has_identity_sform, read_image, write_with_isles_quirk
from isles_pipeline.inference.case_inputs import find_input_cases, prepare_case
from isles_pipeline.inference.ensemble import MixedFoldsError
from isles_pipeline.inference.postprocessing import keep_largest_component
from isles_pipeline.inference.predict import PredictionOptions, predict_folder
from isles_pipeline.inference.predictor import Predictor
from isles_pipeline.phantom.synthetic import SyntheticCase, move_off_origin_and_rotate, write_case


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    yield from model_with_roots(tmp_path_factory.mktemp("model"))


def _predict(inputs, out, **kwargs):
    options = PredictionOptions(**{k: kwargs.pop(k) for k in list(kwargs) if hasattr(PredictionOptions, k)})
    return predict_folder(inputs, out, 18, trainer=TRAINER, plans=PLANS, device="cpu", options=options, **kwargs)


def _same_grid(image, reference):
    assert image.GetSize() == reference.GetSize()
    assert np.allclose(image.GetSpacing(), reference.GetSpacing(), rtol=1e-6)
    assert np.allclose(image.GetOrigin(), reference.GetOrigin(), atol=1e-4)
    assert np.allclose(image.GetDirection(), reference.GetDirection(), atol=1e-6)


def test_isles_layout_smir_names_tables_and_extras(model, small_phantom_testing, tmp_path):
    out = tmp_path / "out"
    assert predict_main(["-i", str(small_phantom_testing), "-o", str(out), "-d", "18", "-f", "0", "1", "-tr",
                         TRAINER, "-p", PLANS, "-device", "cpu", "--smir_names", "--save_probabilities",
                         "--save_pseudo_dwi", "--overlays"]) == 0
    rows = list(csv.DictReader((out / "volumes.csv").open()))
    assert len(rows) == 3
    for case_dir in list_case_folders(small_phantom_testing):
        layout = read_case_layout(case_dir, require_label=False)
        mtt_id = layout.ids["CT_MTT"]
        written = out / f"SMIR.isles_pipeline.{mtt_id}.nii"
        assert written.is_file(), sorted(p.name for p in out.iterdir())
        ct = read_image(layout.files["CT"])
        _same_grid(read_image(written), ct)
        _same_grid(read_image(out / "probabilities" / f"{case_dir.name}.nii.gz"), ct)
        _same_grid(read_image(out / "pseudo_dwi" / f"{case_dir.name}.nii.gz"), ct)
        assert (out / "overlays" / f"{case_dir.name}.png").stat().st_size > 1000
        row = next(r for r in rows if r["case"] == case_dir.name)
        mask = sitk.GetArrayFromImage(read_image(written)) > 0
        assert float(row["core_volume_ml"]) == pytest.approx(mask.sum() * np.prod(ct.GetSpacing()) / 1000, abs=1e-3)
        assert int(row["lesion_count"]) == label_components(mask)[1] and int(row["ct_mtt_id"]) == mtt_id
    summary = json.loads((out / "predictions.json").read_text())
    assert summary["folds"] == [0, 1] and summary["failures"] == {}


def _rewrite_with_fixture_header(case_dir: Path, fixture: Path) -> sitk.Image:
    """Every image of an ISLES case re-written as .nii with the real fixture's grid and identity-sform quirk."""
    reference = read_image(fixture)
    for path in list(case_dir.rglob("*.nii*")):
        image = read_image(path)
        dim = image.GetDimension()
        direction = np.eye(dim)
        direction[:3, :3] = np.array(reference.GetDirection()).reshape(3, 3)
        image.SetSpacing(tuple(reference.GetSpacing()) + tuple(image.GetSpacing()[3:]))
        image.SetOrigin(tuple(reference.GetOrigin()) + (0.0,) * (dim - 3))
        image.SetDirection(tuple(direction.ravel()))
        path.unlink()
        write_with_isles_quirk(image, path.with_name(path.name.replace(".nii.gz", ".nii")))
    return reference


def test_identity_sform_and_200x200_inputs_keep_their_geometry(model, small_phantom_testing, real_isles_ct,
                                                               tmp_path):
    isles_in = tmp_path / "isles"
    shutil.copytree(small_phantom_testing / "case_1", isles_in / "case_1")
    reference = _rewrite_with_fixture_header(isles_in / "case_1", real_isles_ct)
    ct_file = read_case_layout(isles_in / "case_1", False).files["CT"]
    header = sitk.ImageFileReader()
    header.SetFileName(str(ct_file))
    header.ReadImageInformation()
    assert has_identity_sform({k: header.GetMetaData(k) for k in header.GetMetaDataKeys()})
    report = _predict(isles_in, tmp_path / "out_isles")
    assert report.failures == {}
    written = read_image(tmp_path / "out_isles" / "case_1.nii.gz")
    _same_grid(written, read_image(ct_file))
    assert np.allclose(written.GetSpacing(), reference.GetSpacing(), rtol=1e-6)  # true spacing, not 1 mm

    raw = tmp_path / "raw_ts"
    case = SyntheticCase("test_200", size_yx=(200, 200), slices=2, num_frames=30, spacing_xy=1.1)
    write_case(raw, case, "Ts", np.random.default_rng(0))
    move_off_origin_and_rotate(raw, "test_200*.nii.gz")  # so origin and direction are tested too
    dataset = {"channel_names": {"0": "CT", "1": "CBF", "2": "CBV", "3": "MTT", "4": "Tmax"},
               "file_ending": ".nii.gz", "cases": {"test_200": {"source_ids": {"CT_MTT": 4242}}}}
    (raw / "dataset.json").write_text(json.dumps(dataset))
    report = _predict(raw / "imagesTs", tmp_path / "out_raw", overlays=True, smir_names=True)
    assert report.failures == {}
    written = read_image(tmp_path / "out_raw" / "SMIR.isles_pipeline.4242.nii")  # CT_MTT id from dataset.json
    assert sitk.GetArrayViewFromImage(written).shape == (2, 200, 200)
    _same_grid(written, sitk.ReadImage(str(raw / "imagesTs" / "test_200_0000.nii.gz")))
    assert (tmp_path / "out_raw" / "overlays" / "test_200.png").is_file()  # truth from labelsTs drawn too


def test_ensemble_is_the_mean_of_single_fold_probabilities(model, small_phantom_testing, tmp_path):
    inputs = tmp_path / "in"
    shutil.copytree(small_phantom_testing / "case_2", inputs / "case_2")
    probabilities = {}
    for folds in ((0,), (1,), (2,), (0, 1, 2)):
        out = tmp_path / "_".join(map(str, folds))
        _predict(inputs, out, folds=list(folds), save_probabilities=True, disable_postprocessing=True)
        probabilities[folds] = sitk.GetArrayFromImage(read_image(out / "probabilities" / "case_2.nii.gz"))
    mean = (probabilities[(0,)] + probabilities[(1,)] + probabilities[(2,)]) / 3
    assert not np.allclose(probabilities[(0,)], probabilities[(1,)], atol=1e-3)  # the folds really differ
    np.testing.assert_allclose(probabilities[(0, 1, 2)], mean, atol=1e-5)
    mask = sitk.GetArrayFromImage(read_image(tmp_path / "0_1_2" / "case_2.nii.gz")) > 0
    assert np.array_equal(mask, probabilities[(0, 1, 2)] >= 0.5)


def test_corrupt_case_is_reported_and_the_others_written(model, small_phantom_testing, tmp_path, capsys):
    inputs = tmp_path / "in"
    shutil.copytree(small_phantom_testing, inputs, ignore=shutil.ignore_patterns("phantom_truth"))
    bad = read_case_layout(inputs / "case_2", False).files["CT_MTT"]
    bad.write_bytes(bad.read_bytes()[:400])  # truncated
    out = tmp_path / "out"
    assert predict_main(["-i", str(inputs), "-o", str(out), "-d", "18", "-tr", TRAINER, "-p", PLANS, "-f", "0",
                         "-device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "case_2" in err and bad.name in err and "truncated" in err
    assert (out / "case_1.nii.gz").is_file() and (out / "case_3.nii.gz").is_file()
    assert not (out / "case_2.nii.gz").exists()
    summary = json.loads((out / "predictions.json").read_text())
    assert list(summary["failures"]) == ["case_2"] and len(summary["cases"]) == 2


def test_mixed_folds_are_refused(model, small_phantom_testing, tmp_path, capsys):
    chain = json.loads((model / "plans.json").read_text())["configurations"]["2d"]["network"]["chain"]
    other = tmp_path / "mixed" / model.name
    shutil.copytree(model, other)
    save_checkpoint(other / "fold_1" / "checkpoint_final.pth", chain, 1, seed=1, trainer="OtherTrainer")
    with pytest.raises(MixedFoldsError, match="fold 0 .* fold 1"):
        predict_folder(small_phantom_testing, tmp_path / "out", folder=other, device="cpu")
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_saved_postprocessing_is_applied_unless_disabled(model, small_phantom_testing, tmp_path):
    inputs = tmp_path / "in"
    shutil.copytree(small_phantom_testing / "case_3", inputs / "case_3")
    steps = [{"name": "keep_largest_component"}]
    (model / "postprocessing.json").write_text(json.dumps({"steps": steps}))
    try:
        predictor = Predictor.from_model_folder(model, [0], device="cpu")
        assert Predictor.from_model_folder(model, [0], device="cpu", disable_postprocessing=True).postprocessing == []
        _predict(inputs, tmp_path / "pp", folds=[0])
    finally:
        (model / "postprocessing.json").unlink()
    assert predictor.postprocessing == steps
    assert json.loads((tmp_path / "pp" / "predictions.json").read_text())["postprocessing"] == steps
    prepared = prepare_case(find_input_cases(inputs)[0], predictor.configuration)
    data, properties = prepared.preprocessed.data, prepared.properties
    # random weights call nearly everything core at 0.5: a higher threshold gives a fragmented mask to clean
    predictor.threshold = float(np.percentile(predictor.predict(data, properties).probabilities, 85))
    processed = predictor.predict(data, properties).mask
    predictor.postprocessing = []
    unprocessed = predictor.predict(data, properties).mask
    assert label_components(unprocessed)[1] > 1
    assert label_components(processed)[1] == 1
    assert np.array_equal(processed, keep_largest_component(unprocessed))
