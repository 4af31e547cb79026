"""plan-and-preprocess end to end on small synthetic raw datasets: layout, resumability, geometry round
trip, patient splits and bad input."""
import json

import numpy as np
import pytest
import SimpleITK as sitk

from isles_pipeline.cli.plan_and_preprocess import main as cli_main
from isles_pipeline.errors import CaseFailures
from isles_pipeline.phantom.synthetic import SyntheticCase, move_off_origin_and_rotate, write_synthetic_dataset
from isles_pipeline.planners import api
from isles_pipeline.planners.plans import get_configuration, load_plans
from isles_pipeline.preprocessing.case_preprocessor import preprocess_case
from isles_pipeline.preprocessing.resampling import restore_original_geometry, to_original_image
from isles_pipeline.preprocessing.storage import load_preprocessed_case
from isles_pipeline.raw_format import find_raw_cases


def use_roots(monkeypatch, root):
    for name in ("raw", "preprocessed", "results"):
        monkeypatch.setenv(f"ISLES_{name}", str(root / name))


def good_cases():
    """6 cases of 4 patients (two patients in slabs A and B), one with a DWI, one without lesion."""
    patients = ["p1", "p1", "p2", "p2", "p3", "p4"]
    return [SyntheticCase(f"train_{i + 1:03d}", patient=p, slab="AB"[i % 2] if i < 4 else "", arrival_s=4.0 + 2 * i,
                          with_dwi=(i == 0), lesion=(i != 5)) for i, p in enumerate(patients)]


@pytest.fixture(scope="module")
def good_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    mp = pytest.MonkeyPatch()
    use_roots(mp, root)
    write_synthetic_dataset(root / "raw", good_cases())
    result = api.plan_and_preprocess(18, "ISLESPlanner", num_processes=2)
    yield root, result
    mp.undo()


def data_folder(root):
    return root / "preprocessed" / "Dataset018_ISLES2018" / "ISLESPlans_2d"


def test_layout_dtypes_and_memory_mapping(good_dataset):
    root, result = good_dataset
    assert result.failures == {} and sorted(result.report.processed) == [f"train_{i:03d}" for i in range(1, 7)]
    case = load_preprocessed_case(data_folder(root), "train_001")
    assert isinstance(case["data"], np.memmap) and case["data"].dtype == np.float16
    assert case["data"].shape == (3, 17, 64, 64)
    assert case["seg"].dtype == np.uint8 and case["seg"].shape == (3, 64, 64)
    assert case["weight"].dtype == np.float16 and case["dwi"].dtype == np.float16
    props = case["properties"]
    assert props["channels"][11:] == ["CBF", "CBV", "MTT", "Tmax", "PWImax_o", "PWImax_p"]
    assert props["lesion_slices"] == [1, 2] and props["ct_mtt_id"] == 104
    assert props["original_geometry"]["size"] == [64, 64, 3]
    assert load_preprocessed_case(data_folder(root), "train_002")["dwi"] is None


def test_weight_map_and_normalisation_in_stored_cases(good_dataset):
    root, _ = good_dataset
    case = load_preprocessed_case(data_folder(root), "train_003", mmap=False)
    weight = case["weight"].astype(np.float32)
    assert np.all(weight[0] == 1.0)  # no lesion on the first slice
    assert weight[1][case["seg"][1] > 0].min() == pytest.approx(5.0, rel=1e-3)
    data = case["data"].astype(np.float32)
    assert np.isfinite(data).all() and np.abs(data).max() < 50
    no_lesion = load_preprocessed_case(data_folder(root), "train_006")
    assert np.all(no_lesion["weight"] == 1.0) and no_lesion["properties"]["lesion_slices"] == []


def test_splits_keep_slabs_of_a_patient_together(good_dataset):
    root, _ = good_dataset
    splits = json.loads((root / "preprocessed" / "Dataset018_ISLES2018" / "splits_final.json").read_text())
    assert len(splits) == 4
    for fold in splits:
        assert ("train_001" in fold["val"]) == ("train_002" in fold["val"])
        assert ("train_003" in fold["val"]) == ("train_004" in fold["val"])
    assert sorted(c for f in splits for c in f["val"]) == [f"train_{i:03d}" for i in range(1, 7)]


def test_the_bolus_window_brackets_the_synthetic_arrival(good_dataset):
    root, _ = good_dataset
    for i, case in enumerate(good_cases()):
        timing = load_preprocessed_case(data_folder(root), case.name)["properties"]["temporal"]
        assert timing["onset_s"] <= case.arrival_s <= timing["end_s"]
        assert len(timing["frame_times_s"]) == 11


def test_rerun_without_clean_rewrites_nothing(good_dataset, monkeypatch):
    root, _ = good_dataset
    use_roots(monkeypatch, root)
    files = sorted(p for p in (root / "preprocessed").rglob("*") if p.is_file())
    before = {p: p.stat().st_mtime_ns for p in files}
    assert cli_main(["-d", "18", "-np", "1"]) == 0
    assert {p: p.stat().st_mtime_ns for p in files} == before
    assert sorted(p for p in (root / "preprocessed").rglob("*") if p.is_file()) == files


def test_predictor_preprocesses_a_case_without_label_the_same_way(good_dataset):
    root, _ = good_dataset
    configuration = get_configuration(load_plans(18))
    raw = find_raw_cases(root / "raw" / "Dataset018_ISLES2018")[2]
    result = preprocess_case(raw.images, raw.ctp, configuration, case="test_001")
    stored = load_preprocessed_case(data_folder(root), raw.name)
    assert result.seg is None and result.weight is None
    assert np.array_equal(result.data, stored["data"])


def test_a_200x200_case_maps_back_to_its_original_geometry(tmp_path, monkeypatch):
    use_roots(monkeypatch, tmp_path)
    cases = [SyntheticCase("train_001", size_yx=(256, 256), slices=2, num_frames=30, spacing_xy=0.9),
             SyntheticCase("train_002", size_yx=(200, 200), slices=2, num_frames=30, spacing_xy=1.1)]
    folder = write_synthetic_dataset(tmp_path / "raw", cases)
    move_off_origin_and_rotate(folder, "train_002*.nii.gz")  # so origin and direction are tested too
    result = api.plan_and_preprocess(18, num_processes=1)
    assert result.failures == {}
    case = load_preprocessed_case(data_folder(tmp_path), "train_002")
    assert case["data"].shape == (2, 17, 256, 256) and case["properties"]["resampled"]
    restored = restore_original_geometry(case["seg"].astype(np.float32), case["properties"]) >= 0.5
    assert restored.shape == (2, 200, 200)
    image = to_original_image(restored.astype(np.uint8), case["properties"])
    reference = sitk.ReadImage(str(folder / "labelsTr" / "train_002.nii.gz"))
    assert image.GetSize() == reference.GetSize()
    assert np.allclose(image.GetSpacing(), reference.GetSpacing())
    assert np.allclose(image.GetOrigin(), reference.GetOrigin())
    assert np.allclose(image.GetDirection(), reference.GetDirection())
    truth = sitk.GetArrayFromImage(reference) > 0
    dice = 2 * (truth & restored).sum() / (truth.sum() + restored.sum())
    assert dice > 0.95
    geometry = case["properties"]["preprocessed_geometry"]
    assert geometry["spacing"][0] == pytest.approx(1.1 * 200 / 256, rel=1e-5)


BAD = {"train_003": "no 4D CTP series", "train_004": "NaN", "train_005": "does not match the CT grid",
       "train_006": "no contrast bolus"}


@pytest.fixture()
def bad_dataset(tmp_path, monkeypatch):
    use_roots(monkeypatch, tmp_path)
    cases = [SyntheticCase(f"train_{i:03d}", patient=f"p{i}", slices=2, num_frames=25, flat=(i == 6))
             for i in range(1, 7)]
    folder = write_synthetic_dataset(tmp_path / "raw", cases)
    (folder / "ctpTr" / "train_003.nii.gz").unlink()
    cbf = sitk.ReadImage(str(folder / "imagesTr" / "train_004_0003.nii.gz"))
    array = sitk.GetArrayFromImage(cbf)
    array[0, 10, 10] = np.nan
    nan_image = sitk.GetImageFromArray(array)
    nan_image.CopyInformation(cbf)
    sitk.WriteImage(nan_image, str(folder / "imagesTr" / "train_004_0003.nii.gz"))
    small = sitk.GetImageFromArray(np.zeros((2, 32, 32), np.uint16))
    sitk.WriteImage(small, str(folder / "imagesTr" / "train_005_0001.nii.gz"))
    return tmp_path


def test_bad_cases_are_named_in_one_line_each_and_the_rest_processed(bad_dataset, capsys):
    assert cli_main(["-d", "18", "-np", "1"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ERROR")]
    assert len(errors) == len(BAD)
    for case, reason in BAD.items():
        assert any(case in line and reason in line for line in errors), (case, errors)
    stored = sorted(p.stem for p in data_folder(bad_dataset).glob("*.json"))
    assert stored == ["train_001", "train_002"]
    assert not list(data_folder(bad_dataset).glob(".*"))  # no temporary files left


def test_api_raises_listing_the_failed_cases(bad_dataset):
    with pytest.raises(CaseFailures) as error:
        api.plan_and_preprocess(18)
    assert set(error.value.failures) == set(BAD)
    assert "train_004: NaN or infinite values in MTT" in str(error.value)


def test_verify_dataset_integrity_stops_before_writing(bad_dataset, capsys):
    assert cli_main(["-d", "18", "-np", "1", "--verify_dataset_integrity"]) == 1
    err = capsys.readouterr().err
    assert "train_003" in err and "train_005" in err
    assert not (bad_dataset / "preprocessed" / "Dataset018_ISLES2018" / "ISLESPlans.json").exists()


def test_unknown_dataset_id_is_one_clear_line(tmp_path, monkeypatch, capsys):
    use_roots(monkeypatch, tmp_path)
    assert cli_main(["-d", "77"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no dataset with id 77" in err[0]
