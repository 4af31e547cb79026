"""The converter: exact round trip, nnU-Net-shaped output, patients, and every kind of bad input."""
from __future__ import annotations

import csv
import gzip
import json
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from isles_pipeline.dataset_conversion.convert import convert_isles2018
from isles_pipeline.imageio.case_images import Geometry, geometry_mismatch
from isles_pipeline.imageio.nifti_io import read_array, read_image, write_with_isles_quirk

CHANNEL_SOURCES = ("CT", "CT_CBF", "CT_CBV", "CT_MTT", "CT_Tmax")


def _file(case_dir, modality):
    (path,) = case_dir.glob(f"SMIR.Brain.XX.O.{modality}.*/*.nii*")
    return path


@pytest.fixture(scope="module")
def converted(small_phantom, small_phantom_testing, tmp_path_factory):
    out = tmp_path_factory.mktemp("raw")
    result = convert_isles2018(small_phantom, small_phantom_testing, 18, "ISLES2018", 2, None, out)
    return result, small_phantom, small_phantom_testing


def test_round_trip_preserves_every_voxel_and_the_geometry(converted):
    result, training, _ = converted
    assert result.failures == [] and len(result.converted) == 9
    folder = result.dataset_folder
    for number in range(1, 7):
        case = training / f"case_{number}"
        name = f"train_{number:03d}"
        pairs = [(_file(case, m), folder / "imagesTr" / f"{name}_{i:04d}.nii.gz")
                 for i, m in enumerate(CHANNEL_SOURCES)]
        pairs += [(_file(case, "OT"), folder / "labelsTr" / f"{name}.nii.gz"),
                  (_file(case, "CT_4DPWI"), folder / "ctpTr" / f"{name}.nii.gz"),
                  (_file(case, "MR_DWI"), folder / "dwiTr" / f"{name}.nii.gz")]
        for source, target in pairs:
            a, a_image = read_array(source)
            b, b_image = read_array(target)
            assert b.dtype == a.dtype and np.array_equal(a, b), target.name
            assert b_image.GetSpacing() == pytest.approx(a_image.GetSpacing(), rel=1e-6)
            assert b_image.GetOrigin() == pytest.approx(a_image.GetOrigin(), abs=1e-6)
            assert b_image.GetDirection() == pytest.approx(a_image.GetDirection())
    assert sorted(p.name for p in (folder / "imagesTs").iterdir())[:5] == [f"test_001_{i:04d}.nii.gz" for i in range(5)]
    assert not (folder / "labelsTs").exists()
    assert not list(folder.rglob(".*tmp*"))


def test_dataset_json_has_nnunet_keys_and_case_records(converted):
    result, training, _ = converted
    dataset = json.loads((result.dataset_folder / "dataset.json").read_text())
    assert dataset["channel_names"] == {"0": "CT", "1": "CBF", "2": "CBV", "3": "MTT", "4": "Tmax"}
    assert dataset["labels"] == {"background": 0, "core": 1}
    assert dataset["numTraining"] == 6 and dataset["file_ending"] == ".nii.gz"
    record = dataset["cases"]["train_001"]
    truth = json.loads((training / "phantom_truth" / "case_1" / "truth.json").read_text())
    assert record["source_ids"]["CT_MTT"] == truth["ids"]["CT_MTT"]
    assert record["num_frames"] == truth["num_frames"] and record["frame_interval_s"] == 1.0
    assert record["has_dwi"] and record["has_label"]
    assert dataset["cases"]["test_002"]["split"] == "Ts" and not dataset["cases"]["test_002"]["has_label"]


def test_nnunet_integrity_rules_hold(converted):
    """What nnU-Net's verify_dataset_integrity checks: every channel and the label on one exact grid,
    labels within dataset.json's values, one file per channel and case."""
    result, _, _ = converted
    folder = result.dataset_folder
    for label_path in (folder / "labelsTr").iterdir():
        name = label_path.name[: -len(".nii.gz")]
        label = sitk.ReadImage(str(label_path))
        assert set(np.unique(sitk.GetArrayViewFromImage(label))) <= {0, 1}
        for channel in range(5):
            image = sitk.ReadImage(str(folder / "imagesTr" / f"{name}_{channel:04d}.nii.gz"))
            assert image.GetSize() == label.GetSize()
            assert image.GetSpacing() == label.GetSpacing() and image.GetOrigin() == label.GetOrigin()
            assert image.GetDirection() == label.GetDirection()
    assert len(list((folder / "imagesTr").iterdir())) == 5 * 6


def test_patients_come_from_the_metadata(converted):
    result, training, _ = converted
    dataset = json.loads((result.dataset_folder / "dataset.json").read_text())
    assert result.patient_source["Tr"] == "metadata"
    for number in range(1, 7):
        truth = json.loads((training / "phantom_truth" / f"case_{number}" / "truth.json").read_text())
        record = dataset["cases"][f"train_{number:03d}"]
        assert record["patient"] + (f"_{record['slab']}" if record["slab"] else "") == truth["patient"]
    assert dataset["cases"]["train_001"]["patient"] == dataset["cases"]["train_002"]["patient"] == "Train_01"


def _copy_without_metadata(source, target):
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("phantom_truth", "*.json"))


def test_patients_from_heuristic_and_from_a_table(small_phantom, tmp_path):
    _copy_without_metadata(small_phantom, tmp_path / "TRAINING")
    result = convert_isles2018(tmp_path / "TRAINING", output_root=tmp_path / "raw_h")
    assert result.patient_source["Tr"] == "heuristic"
    cases = json.loads((result.dataset_folder / "dataset.json").read_text())["cases"]
    patients = [cases[f"train_{i:03d}"]["patient"] for i in range(1, 7)]
    assert patients[0] == patients[1] != patients[2] == patients[3]
    assert len(set(patients[4:])) == 2 and patients[4] not in patients[:4]

    table = tmp_path / "patients.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case", "patient", "slab"])
        for i in range(1, 7):
            writer.writerow([f"case_{i}", f"P{(i + 1) // 3}", ""])
    result = convert_isles2018(tmp_path / "TRAINING", patients_csv=table, output_root=tmp_path / "raw_t")
    cases = json.loads((result.dataset_folder / "dataset.json").read_text())["cases"]
    assert result.patient_source["Tr"] == "table"
    assert [cases[f"train_{i:03d}"]["patient"] for i in range(1, 7)] == ["P0", "P1", "P1", "P1", "P2", "P2"]


def _rewrite(path, array, like):
    image = sitk.GetImageFromArray(array, isVector=False)
    image.CopyInformation(like) if image.GetDimension() == like.GetDimension() else None
    write_with_isles_quirk(image, path)


def _break_missing_modality(case):
    shutil.rmtree(_file(case, "CT_CBV").parent)


def _break_two_images(case):
    path = _file(case, "CT_MTT")
    shutil.copy(path, path.with_name("second.nii"))


def _break_map_shape(case):
    path = _file(case, "CT_CBF")
    array, image = read_array(path)
    _rewrite(path, np.ascontiguousarray(array[:, :-16, :]), sitk.Image([64, 48, array.shape[0]], sitk.sitkUInt16))


def _break_map_spacing(case):
    path = _file(case, "CT_Tmax")
    image = read_image(path)
    image.SetSpacing([s * 1.5 for s in image.GetSpacing()])
    write_with_isles_quirk(image, path)


def _break_label_values(case):
    path = _file(case, "OT")
    array, image = read_array(path)
    array[0, 0, 0] = 2
    _rewrite(path, array, image)


def _break_nan(case):
    path = _file(case, "CT_MTT")
    array, image = read_array(path)
    array[0, 10, 10] = np.nan
    _rewrite(path, array, image)


def _break_inf(case):
    path = _file(case, "CT_Tmax")
    array, image = read_array(path)
    array[0, 10, 10] = np.inf
    _rewrite(path, array, image)


def _break_series_grid(case):
    path = _file(case, "CT_4DPWI")
    array, image = read_array(path)
    smaller = sitk.GetImageFromArray(np.ascontiguousarray(array[:, :, :32, :]), isVector=False)
    smaller.SetSpacing(image.GetSpacing())
    write_with_isles_quirk(smaller, path)


def _break_few_frames(case):
    path = _file(case, "CT_4DPWI")
    array, image = read_array(path)
    short = sitk.GetImageFromArray(np.ascontiguousarray(array[:4]), isVector=False)
    short.SetSpacing(image.GetSpacing())
    short.SetDirection(image.GetDirection())
    write_with_isles_quirk(short, path)


def _break_truncated(case):
    path = _file(case, "CT_CBF")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _break_unreadable(case):
    _file(case, "CT").write_bytes(b"this is not a NIfTI file" * 20)


BREAKERS = {
    "missing modality": (_break_missing_modality, "CT_CBV"),
    "two images": (_break_two_images, "2 images"),
    "map shape": (_break_map_shape, "differs from the CT"),
    "map spacing": (_break_map_spacing, "differs from the CT"),
    "label values": (_break_label_values, "outside {0, 1}"),
    "NaN": (_break_nan, "NaN or infinite"),
    "inf": (_break_inf, "NaN or infinite"),
    "series grid": (_break_series_grid, "differs from the CT"),
    "few frames": (_break_few_frames, "4 frame(s)"),
    "truncated": (_break_truncated, "cannot read"),
    "unreadable": (_break_unreadable, "cannot read"),
}


@pytest.fixture(scope="module")
def broken_conversion(small_phantom, tmp_path_factory):
    """One good case followed by one copy of it per kind of damage; converted once through the CLI."""
    root = tmp_path_factory.mktemp("broken")
    training = root / "TRAINING"
    training.mkdir()
    shutil.copytree(small_phantom / "case_5", training / "case_1")
    expectations = {}
    for number, (kind, (breaker, message)) in enumerate(BREAKERS.items(), start=2):
        case = training / f"case_{number}"
        shutil.copytree(small_phantom / "case_5", case)
        breaker(case)
        expectations[kind] = (case.name, message)
    (training / "__MACOSX" / "case_1").mkdir(parents=True)
    (training / "__MACOSX" / "case_1" / "._junk.nii").write_bytes(b"\0" * 10)
    ct_folder = _file(training / "case_1", "CT").parent
    (ct_folder / f"._{ct_folder.name}.nii").write_bytes(b"\0" * 10)  # AppleDouble file: not a second image
    gz = _file(training / "case_1", "CT_CBF")  # .nii.gz input is accepted
    gz.with_name(gz.name + ".gz").write_bytes(gzip.compress(gz.read_bytes()))
    gz.unlink()
    raw = root / "raw"
    run = subprocess.run([sys.executable, "-m", "isles_pipeline.cli.convert_isles2018", "-i", str(training)],
                         env={"ISLES_raw": str(raw), "PATH": ""}, capture_output=True, text=True)
    return run, raw / "Dataset018_ISLES2018", expectations


@pytest.mark.parametrize("kind", list(BREAKERS))
def test_each_bad_input_gets_one_line_and_no_output(broken_conversion, kind):
    run, folder, expectations = broken_conversion
    case, message = expectations[kind]
    lines = [line for line in run.stderr.splitlines() if line.strip().startswith(case + ":")]
    assert len(lines) == 1, run.stderr
    assert message in lines[0]
    name = f"train_{int(case.split('_')[1]):03d}"
    assert not list(folder.rglob(f"{name}*")), f"output left for broken {case}"


def test_bad_cases_do_not_stop_the_good_one(broken_conversion):
    run, folder, _ = broken_conversion
    assert run.returncode == 1
    assert f"{len(BREAKERS)} case(s) failed" in run.stderr
    assert sorted(p.name for p in (folder / "imagesTr").iterdir()) == [f"train_001_{i:04d}.nii.gz" for i in range(5)]
    assert json.loads((folder / "dataset.json").read_text())["numTraining"] == 1
    assert "Traceback" not in run.stderr


def test_rerunning_is_idempotent(small_phantom, tmp_path):
    first = convert_isles2018(small_phantom, output_root=tmp_path)
    snapshot = {p: p.read_bytes() for p in first.dataset_folder.rglob("*") if p.is_file()}
    second = convert_isles2018(small_phantom, output_root=tmp_path, num_processes=2)
    again = {p: p.read_bytes() for p in second.dataset_folder.rglob("*") if p.is_file()}
    assert snapshot.keys() == again.keys() and all(snapshot[p] == again[p] for p in snapshot)


def test_nifti_header_of_output_is_consistent(converted):
    """Written files carry a real sform (no quirk): nibabel-style readers get the true spacing too."""
    result, _, _ = converted
    path = result.dataset_folder / "imagesTr" / "train_001_0000.nii.gz"
    raw = gzip.open(path).read(348)
    sform = np.array(struct.unpack_from("<12f", raw, 280)).reshape(3, 4)
    assert np.allclose(np.abs(np.diag(sform[:, :3])), read_image(path).GetSpacing(), rtol=1e-5)


def test_a_table_for_training_only_leaves_testing_to_the_other_rules(small_phantom, small_phantom_testing, tmp_path):
    _copy_without_metadata(small_phantom, tmp_path / "TRAINING")
    _copy_without_metadata(small_phantom_testing, tmp_path / "TESTING")
    table = tmp_path / "patients.csv"
    table.write_text("case,patient\n" + "".join(f"TRAINING/case_{i},P{i}\n" for i in range(1, 7)))
    result = convert_isles2018(tmp_path / "TRAINING", tmp_path / "TESTING", patients_csv=table,
                               output_root=tmp_path / "raw")
    assert result.patient_source == {"Tr": "table", "Ts": "heuristic"} and result.failures == []
    half = tmp_path / "half.csv"
    half.write_text("case,patient\nTRAINING/case_1,P1\n")
    with pytest.raises(ValueError, match="covers 1 of the 6 cases"):
        convert_isles2018(tmp_path / "TRAINING", patients_csv=half, output_root=tmp_path / "raw_half")
    assert not (tmp_path / "raw_half").exists()


def test_reconverting_removes_outputs_the_source_no_longer_has(small_phantom, tmp_path):
    shutil.copytree(small_phantom, tmp_path / "TRAINING", ignore=shutil.ignore_patterns("phantom_truth"))
    first = convert_isles2018(tmp_path / "TRAINING", output_root=tmp_path / "raw")
    assert (first.dataset_folder / "dwiTr" / "train_001.nii.gz").is_file()
    shutil.rmtree(_file(tmp_path / "TRAINING" / "case_1", "MR_DWI").parent)
    second = convert_isles2018(tmp_path / "TRAINING", output_root=tmp_path / "raw")
    assert not (second.dataset_folder / "dwiTr" / "train_001.nii.gz").exists()
    assert json.loads((second.dataset_folder / "dataset.json").read_text())["cases"]["train_001"]["has_dwi"] is False


def test_case_folders_with_the_same_number_are_refused(small_phantom, tmp_path):
    shutil.copytree(small_phantom / "case_1", tmp_path / "TRAINING" / "case_1")
    shutil.copytree(small_phantom / "case_1", tmp_path / "TRAINING" / "case_01")
    with pytest.raises(ValueError, match="same number"):
        convert_isles2018(tmp_path / "TRAINING", output_root=tmp_path / "raw")


def test_a_patient_table_given_explicitly_wins_over_the_smir_metadata(small_phantom, tmp_path, caplog):
    table = tmp_path / "patients.csv"
    table.write_text("case,patient,slab\n" + "".join(f"case_{i},P{i},\n" for i in range(1, 7)))
    result = convert_isles2018(small_phantom, patients_csv=table, output_root=tmp_path / "raw")
    cases = json.loads((result.dataset_folder / "dataset.json").read_text())["cases"]
    assert result.patient_source["Tr"] == "table"
    assert [cases[f"train_{i:03d}"]["patient"] for i in range(1, 7)] == [f"P{i}" for i in range(1, 7)]
    assert "using the table" in caplog.text  # the metadata grouped case_1 and case_2; the override is said


def test_the_converter_and_preprocessing_share_one_grid_tolerance(small_phantom, tmp_path):
    """A map 0.015 mm off the CT, far from the origin: image_io's rule (0.01 mm) refuses it, and so must the
    converter (it used to add numpy's relative tolerance, 0.01 mm per 1000 mm of origin)."""
    case = tmp_path / "TRAINING" / "case_1"
    shutil.copytree(small_phantom / "case_5", case)
    for path in case.rglob("*.nii"):
        image = read_image(path)
        shift = 0.015 if "CT_CBV" in path.name else 0.0
        image.SetOrigin((-1000.0 + shift, -1000.0, -1000.0) + tuple(image.GetOrigin()[3:]))
        write_with_isles_quirk(image, path)
    cbv = _file(case, "CT_CBV")
    problem = geometry_mismatch(Geometry.of(read_image(_file(case, "CT"))), Geometry.of(read_image(cbv)))
    assert problem is not None and problem.startswith("origin")
    result = convert_isles2018(tmp_path / "TRAINING", output_root=tmp_path / "raw")
    assert len(result.failures) == 1 and cbv.name in result.failures[0] and "differs from the CT" in result.failures[0]
