"""isles_evaluate: folder pairing, true spacing (the ISLES identity-sform quirk included), CSV, and geometry
mismatch as an error naming both files."""
import json
import math

import numpy as np
import pytest
import SimpleITK as sitk

from isles_pipeline.cli.evaluate import main as evaluate_main
from isles_pipeline.evaluation.evaluate import GeometryMismatchError, evaluate_folders, evaluate_pairs
from isles_pipeline.imageio.nifti_io import read_image, write_image, write_with_isles_quirk


def _write(array, path, spacing=(0.8, 0.8, 6.0), origin=(0.0, 0.0, 0.0)):
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    write_image(image, path)


def test_summary_values_csv_and_cli(tmp_path, capsys):
    ref = np.zeros((2, 10, 10), np.uint8)
    pred = np.zeros((2, 10, 10), np.uint8)
    ref[0, 2:4, 2:4] = 1
    pred[0, 2:4, 2:5] = 1  # 4 ref voxels, 6 predicted, 4 shared
    _write(ref, tmp_path / "ref" / "a.nii.gz")
    _write(pred, tmp_path / "pred" / "a.nii.gz")
    _write(np.zeros_like(ref), tmp_path / "ref" / "b.nii.gz")
    _write(np.zeros_like(ref), tmp_path / "pred" / "b.nii.gz")
    _write(ref, tmp_path / "ref" / "c.nii.gz")  # no prediction: scored as an empty one, flagged
    _write(ref, tmp_path / "pred" / "z.nii.gz")  # no reference: listed as ignored, not scored
    out = tmp_path / "summary.json"
    assert evaluate_main(["-ref", str(tmp_path / "ref"), "-pred", str(tmp_path / "pred"), "-o", str(out),
                          "--csv"]) == 0
    summary = json.loads(out.read_text())
    rows = {row["case"]: row["metrics"] for row in summary["metric_per_case"]}
    assert rows["a"]["dice"] == pytest.approx(8 / 10)
    assert rows["a"]["abs_volume_diff_ml"] == pytest.approx(2 * 0.8 * 0.8 * 6.0 / 1000)
    assert rows["a"]["hd95_mm"] == pytest.approx(0.8)
    assert rows["b"]["dice"] == 1.0 and rows["b"]["hd95_mm"] == 0.0
    # the empty/empty case b is not in the lesion mean: it is reported as a lesion-free case; the missing c
    # counts as a miss (Dice 0)
    assert rows["c"]["dice"] == 0.0 and rows["c"]["hd95_mm"] is None
    assert [row["missing_prediction"] for row in summary["metric_per_case"]] == [False, False, True]
    assert summary["num_cases"] == 3 and summary["num_missing_predictions"] == 1
    assert summary["lesion_cases"]["n"] == 2 and summary["lesion_cases"]["dice"]["mean"] == pytest.approx(0.4)
    assert summary["lesion_free_cases"]["cases"] == ["b"]
    assert summary["lesion_free_cases"]["false_positive_volume_ml"]["mean"] == 0.0
    assert summary["predictions_without_reference"] == ["z"] and "z" not in rows
    printed = capsys.readouterr()
    assert "Cases with a reference lesion (n=2)" in printed.out and "Lesion-free cases (n=1)" in printed.out
    assert "3 case(s), 1 of them without a prediction" in printed.out
    assert "without a reference, ignored: z" in printed.err and "scored as empty predictions: c" in printed.err
    assert summary["missing_predictions"] == ["c"]
    lines = (tmp_path / "summary.csv").read_text().splitlines()
    assert lines[0].startswith("case,dice,hd95_mm") and len(lines) == 4 and lines[3].endswith(",1")


def test_one_empty_side_gives_null_hd95_excluded_from_mean(tmp_path):
    ref = np.zeros((2, 10, 10), np.uint8)
    ref[1, 5, 5] = 1
    _write(ref, tmp_path / "ref" / "a.nii.gz")
    _write(np.zeros_like(ref), tmp_path / "pred" / "a.nii.gz")
    summary = evaluate_folders(tmp_path / "ref", tmp_path / "pred", tmp_path / "s.json")
    assert summary["metric_per_case"][0]["metrics"]["hd95_mm"] is None
    hd95 = summary["lesion_cases"]["hd95_mm"]
    assert hd95["mean"] is None and hd95["n_undefined"] == 1
    assert json.loads((tmp_path / "s.json").read_text())["lesion_cases"]["dice"]["mean"] == 0.0


def test_mismatched_geometry_names_both_files(tmp_path, capsys):
    ref = np.zeros((2, 10, 10), np.uint8)
    _write(ref, tmp_path / "ref" / "a.nii.gz")
    _write(ref, tmp_path / "pred" / "a.nii.gz", spacing=(0.9, 0.9, 6.0))
    with pytest.raises(GeometryMismatchError) as error:
        evaluate_folders(tmp_path / "ref", tmp_path / "pred")
    assert str(tmp_path / "ref" / "a.nii.gz") in str(error.value)
    assert str(tmp_path / "pred" / "a.nii.gz") in str(error.value)
    assert evaluate_main(["-ref", str(tmp_path / "ref"), "-pred", str(tmp_path / "pred")]) == 1
    assert "different grids" in capsys.readouterr().err


def test_identity_sform_reference_uses_true_spacing(tmp_path, real_isles_ct):
    ct = read_image(real_isles_ct)
    spacing = ct.GetSpacing()
    assert not np.allclose(spacing, 1.0)  # the fixture's point: the sform says 1 mm, the truth differs
    mask = np.zeros(sitk.GetArrayViewFromImage(ct).shape, np.uint8)
    mask[0, 100:110, 100:110] = 1
    label = sitk.GetImageFromArray(mask)
    label.CopyInformation(ct)
    write_with_isles_quirk(label, tmp_path / "ref" / "a.nii")
    write_image(label, tmp_path / "pred" / "a.nii.gz")
    empty = sitk.GetImageFromArray(np.zeros_like(mask))
    empty.CopyInformation(ct)
    write_image(empty, tmp_path / "pred2" / "a.nii.gz")
    summary = evaluate_folders(tmp_path / "ref", tmp_path / "pred")
    assert summary["metric_per_case"][0]["metrics"]["dice"] == 1.0
    summary = evaluate_folders(tmp_path / "ref", tmp_path / "pred2")
    expected_ml = 100 * spacing[0] * spacing[1] * spacing[2] / 1000
    assert summary["metric_per_case"][0]["metrics"]["abs_volume_diff_ml"] == pytest.approx(expected_ml, rel=1e-5)
    assert not math.isclose(expected_ml, 0.1)


def test_explicit_pairs_with_other_file_names(tmp_path):
    """The demo pairs predictions with phantom truth files that are not named after the case."""
    ref = np.zeros((2, 10, 10), np.uint8)
    ref[0, 0, 0] = 1
    _write(ref, tmp_path / "truth" / "case_1" / "lesion_dwi.nii.gz")
    _write(np.zeros_like(ref), tmp_path / "pred" / "case_1.nii.gz")
    summary = evaluate_pairs({"case_1": (tmp_path / "truth" / "case_1" / "lesion_dwi.nii.gz",
                                         tmp_path / "pred" / "case_1.nii.gz")}, tmp_path / "s.json", write_csv=True)
    assert summary["metric_per_case"][0]["metrics"]["recall"] == 0.0
    assert (tmp_path / "s.csv").read_text().splitlines()[1].split(",")[2] == ""  # HD95 undefined: empty cell


@pytest.mark.parametrize("layout", ["no reference", "empty prediction folder", "names that do not pair"])
def test_evaluating_nothing_is_a_one_line_error(tmp_path, capsys, layout):
    (tmp_path / "ref").mkdir()
    (tmp_path / "pred").mkdir()
    mask = np.zeros((2, 10, 10), np.uint8)
    if layout != "no reference":
        _write(mask, tmp_path / "ref" / "case_1.nii.gz")
    if layout != "empty prediction folder":
        _write(mask, tmp_path / "pred" / "patient_1.nii.gz")
    out = tmp_path / "summary.json"
    assert evaluate_main(["-ref", str(tmp_path / "ref"), "-pred", str(tmp_path / "pred"), "-o", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "no reference" in captured.err or "no prediction matches a reference" in captured.err
    assert not out.exists()
