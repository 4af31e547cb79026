"""experiments.centre_smoothing: a vendor setting changed in memory changes only the maps, not the series."""
from experiments.centre_smoothing import main, score_case
from isles_pipeline.phantom.centres import centre_by_name
from isles_pipeline.phantom.generator import plan_cases


def _lesion_spec():
    for spec in plan_cases(6, "TRAINING", 3, 64, False):
        if spec.patient.stroke.kind in ("M1", "ICA"):
            return spec
    raise AssertionError("no territorial stroke among the first cases")


def test_the_shipped_value_reproduces_the_case_and_another_changes_only_the_maps():
    spec = _lesion_spec()
    shipped = spec.patient.centre.vendor.smoothing_mm
    as_shipped = score_case((spec, "smoothing_mm", None, 64))
    assert as_shipped == score_case((spec, "smoothing_mm", shipped, 64))
    other = score_case((spec, "smoothing_mm", shipped + 4.0, 64))
    assert other["dice_true_cbf"] != as_shipped["dice_true_cbf"] or other["dice"] != as_shipped["dice"]
    assert other["true_rcbf_in_lesion"] != as_shipped["true_rcbf_in_lesion"]  # the reference region follows Tmax
    for row in (as_shipped, other):
        assert all(0.0 <= row[key] <= 1.0 for key in ("dice", "dice_true_cbf", "dice_true_tmax"))
    assert centre_by_name(spec.patient.centre.name).vendor.smoothing_mm == shipped  # nothing shipped was changed


def test_the_command_prints_one_row_per_value(capsys):
    centre = _lesion_spec().patient.centre.name
    assert main(["-centre", centre, "-values", "1", "6", "-seeds", "3", "-num_cases", "6", "-size", "64",
                 "-np", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(f"centre {centre}, smoothing_mm") and len(lines) == 4
    assert lines[2].startswith("1 | ") and lines[3].startswith("6 | ")
