"""The phantom is calibrated to published ISLES 2018 statistics (Hakim et al., Stroke 2021) and physics, and its
maps come from its series: measured by the report command on 40 cases at 128 x 128, built once, of a seed the
calibration did not use (HELD_OUT_SEED).

The realism bands are experiments.phantom_realism.BANDS, which every seed's 40 cases should meet: median lesion
10-25 ml, IQR at least 20 ml, threshold Dice 0.20-0.40 and |dV| 8-25 ml over lesion cases. Calibration used seeds
1-5; those and 10 held-out seeds (21, 33, 41-48) all meet them (documentation/results/phantom-realism-over-seeds.md,
section 7), seed 21 with 12.8 ml, 37.2 ml, 0.324 and 15.9 ml. The phantom before the stratified population fails
them on this seed (threshold Dice 0.193), and the first phantom by far (0.076)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from experiments.phantom_realism import seed_row
from isles_pipeline.cli import phantom_report as report_cli
from isles_pipeline.files import read_json
from isles_pipeline.imageio.nifti_io import read_array
from isles_pipeline.phantom import generate_phantom
from isles_pipeline.phantom.anatomy import build_anatomy, physical_grid
from isles_pipeline.phantom.generator import plan_cases
from isles_pipeline.phantom.lesion import INTERVAL_LOG_MEAN, INTERVAL_LOG_SD, Stroke, build_lesion
from isles_pipeline.phantom.population import patient_quantiles
from isles_pipeline.phantom.report import measure_case, phantom_report

NUM_CASES = 40
HELD_OUT_SEED = 21  # not among the calibration seeds (1-5)


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    folder = tmp_path_factory.mktemp("realism") / "TRAINING"
    generate_phantom(folder, num_cases=NUM_CASES, seed=HELD_OUT_SEED, size=128, num_processes=2)
    return folder


@pytest.fixture(scope="module")
def report(phantom):
    return phantom_report(phantom, own_maps=False, num_processes=2)


def test_the_held_out_seed_meets_every_realism_band(report):
    """Published: median 15.2 ml, IQR 5.7 to 45 ml; threshold baseline Dice 0.30, |dV| 15.3 ml."""
    row = seed_row(report["cases"])
    assert row["fails"] == [], row
    assert row["lesion_cases"] >= 25 and row["lesion_free_cases"] >= 1, row  # 32-38 and 2-8 over 15 seeds


def test_own_deconvolution_recovers_the_truth_at_least_as_well_as_the_delivered_maps(phantom, report):
    """The maps are computed from the series, so they cannot know more than the series does: the project's
    own deconvolution of the written series (on 8 cases, for time) does at least as well."""
    cases = [measure_case(str(phantom), f"case_{i}", True) for i in range(1, 9)]
    for name in ("cbf", "tmax"):
        own = np.median([c[f"own_{name}_spearman"] for c in cases])
        delivered = np.median([c[f"delivered_{name}_spearman"] for c in cases])
        assert own >= delivered - 0.02, (name, own, delivered)
    assert 0.2 <= report["summary"]["median_delivered_cbf_spearman"] <= 0.9  # informative, not the truth


def test_centres_differ_and_are_only_in_the_truth(phantom, report):
    centres = report["summary"]["centres"]
    assert len(centres) >= 3
    for case in phantom.glob("case_*"):
        assert "centre" not in next(case.glob("*.json")).read_text()
    noise = [row["noise_hu"] for row in centres.values()]
    assert max(noise) > 1.3 * min(noise), noise  # protocols differ in dose, slice and pixel size


def test_tissue_enhancement_and_noise_are_those_of_real_ctp(report):
    """Grey matter enhances more than white, 8-60 HU typically. Single cases vary more (bolus, protocol, lesion):
    over seeds 1-5 and 10 held-out seeds (40 cases each, the phantom of the module doc's section 7) the median over
    a seed's cases was 12.0-14.4 HU, single cases 4.7-59.7 HU, and white < grey held in 600 of 600 cases (in 279 of
    280 before the stratified population). Per-case bands held on seed 0 only, so the bands are on the median and
    on nearly every case."""
    cases = report["cases"]
    grey = np.array([case["grey_enhancement_hu"] for case in cases])
    white = np.array([case["white_enhancement_hu"] for case in cases])
    assert 8.0 <= np.median(grey) <= 60.0, grey
    assert np.all((grey >= 3.0) & (grey <= 60.0)), grey
    assert np.mean(white < grey) >= 0.9, (white, grey)
    for case in cases:
        assert 1.0 <= case["noise_hu"] <= 25.0, case


def test_delivered_maps_are_a_function_of_the_series_alone(phantom):
    """For a uniform-timing centre, the vendor applied to the written series gives the delivered maps back."""
    from isles_pipeline.phantom.centres import centre_by_name
    from isles_pipeline.phantom.vendor_maps import compute_vendor_maps

    checked = 0
    for case in sorted(phantom.glob("case_*")):
        truth = read_json(phantom / "phantom_truth" / case.name / "truth.json")
        if truth["resampled_to_1s"]:
            continue
        series, image = read_array(next(case.glob("SMIR.Brain.XX.O.CT_4DPWI.*/*.nii")))
        vendor = centre_by_name(truth["centre"]["name"]).vendor
        maps = compute_vendor_maps(series, np.array(truth["frame_times_s"]), vendor, image.GetSpacing()[0])
        for modality, array in maps.items():  # equal up to float32 rounding (BLAS threads differ)
            delivered = read_array(next(case.glob(f"SMIR.Brain.XX.O.{modality}.*/*.nii")))[0].astype(float)
            assert np.mean(np.abs(array - delivered) > 1e-3 * (1 + np.abs(delivered))) < 0.001, modality
        checked += 1
        if checked == 2:
            break
    assert checked == 2


def test_non_uniform_protocol_is_resampled_to_one_second_frames(phantom):
    found = False
    for case in sorted(phantom.glob("case_*")):
        truth = read_json(phantom / "phantom_truth" / case.name / "truth.json")
        if truth["resampled_to_1s"]:
            times = np.array(truth["frame_times_s"])
            assert len(set(np.round(np.diff(times), 3))) > 1
            series, image = read_array(next(case.glob("SMIR.Brain.XX.O.CT_4DPWI.*/*.nii")))
            assert image.GetSpacing()[3] == 1.0 and series.shape[0] == int(times[-1]) + 1
            found = True
    assert found, "no case of the non-uniform centre in 20 cases"


def test_report_command_prints_the_table(small_phantom, capsys, tmp_path):
    assert report_cli.main([str(small_phantom), "--no-own-maps", "-o", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "threshold baseline over lesion cases: Dice" in out and "lesion volume ml" in out
    assert read_json(tmp_path / "r.json")["summary"]["cases"] == 6
    assert report_cli.main([str(tmp_path)]) == 1
    assert "no phantom_truth" in capsys.readouterr().err


def test_interval_distribution_is_the_published_one():
    """CTP-to-MRI: median 36 min, IQR 25 to 79 (Hakim et al. 2021); the log-normal fitted to them, over a seed's
    stratified patients."""
    rng = np.random.default_rng(0)
    draws = np.array([Stroke.draw(rng, (0.0, 40.0), patient_quantiles(0, 1, k)).interval_min for k in range(1, 3001)])
    for quantile, published in ((25, 25.0), (50, 36.0), (75, 79.0)):
        assert abs(np.log(np.percentile(draws, quantile) / published)) < 0.2
    assert INTERVAL_LOG_SD > 0.5 and abs(np.exp(INTERVAL_LOG_MEAN) - 41.4) < 0.5


def _slab(case_number=2, size=64):
    spec = plan_cases(case_number, "TRAINING", 0, size, False)[case_number - 1]
    patient = spec.patient
    shape = (patient.num_slices, size, size)
    spacing = (patient.slice_mm, patient.pixel_mm, patient.pixel_mm)
    centre = patient.slab_centres_mm[spec.slab_index]
    anatomy = build_anatomy(np.random.default_rng(1), patient.head, shape, spacing, centre)
    z, y, x = physical_grid(shape, spacing, centre)
    coords = (z, y - patient.head.centre_shift[1], x - patient.head.centre_shift[0])
    return patient.stroke, anatomy, coords, spacing


def _lesion(stroke, anatomy, coords, spacing, **changes):
    return build_lesion(np.random.default_rng(2), dataclasses.replace(stroke, **changes), anatomy, coords, spacing)


def test_infarct_grows_with_the_interval_and_poor_collaterals_and_shrinks_with_reperfusion():
    stroke, anatomy, coords, spacing = _slab()
    assert stroke.kind != "none"
    base = dict(kind="M1", emboli=(), misregistration_mm=(0.0, 0.0), reperfused=False)
    early = _lesion(stroke, anatomy, coords, spacing, interval_min=10.0, collaterals=0.5, **base)
    late = _lesion(stroke, anatomy, coords, spacing, interval_min=300.0, collaterals=0.5, **base)
    poor = _lesion(stroke, anatomy, coords, spacing, interval_min=10.0, collaterals=0.1, **base)
    reperfused = _lesion(stroke, anatomy, coords, spacing, interval_min=10.0, collaterals=0.5,
                         **dict(base, reperfused=True))
    assert early.core.sum() > 0
    assert late.dwi.sum() > 1.1 * early.dwi.sum()
    assert poor.core.sum() > early.core.sum()
    assert reperfused.dwi.sum() < early.core.sum()
    # the DWI lesion is brighter where damage is deeper: damage varies inside the lesion
    assert late.damage[late.dwi].std() > 0.05


def test_dwi_grades_the_lesion_and_shows_old_infarcts(small_phantom):
    from isles_pipeline.phantom.anatomy import OLD_INFARCT, WHITE
    from isles_pipeline.phantom.case import _dwi
    from isles_pipeline.phantom.lesion import Lesion

    labels = np.full((2, 40, 40), WHITE, np.uint8)
    labels[:, :8] = OLD_INFARCT
    damage = np.zeros(labels.shape, np.float32)
    dwi_mask = np.zeros(labels.shape, bool)
    dwi_mask[:, 20:30] = True
    damage[:, 20:25] = 0.1
    damage[:, 25:30] = 0.9
    zeros = np.zeros(labels.shape, np.float32)
    lesion = Lesion(zeros, zeros, zeros, zeros, dwi_mask, dwi_mask, dwi_mask, damage)
    dwi = _dwi(np.random.default_rng(0), labels, lesion, (5.0, 1.0, 1.0))
    normal = dwi[:, 10:18].mean()
    assert dwi[:, 25:30].mean() > dwi[:, 20:25].mean() > normal  # graded by damage
    assert dwi[:, :8].mean() > normal  # T2 shine-through of an old infarct, not labelled


def _case_arrays(phantom, name):
    case = phantom / name
    truth_dir = phantom / "phantom_truth" / name
    arrays = {m: read_array(next(case.glob(f"SMIR.Brain.XX.O.{m}.*/*.nii")))[0] for m in ("CT_Tmax", "CT_CBF")}
    for mask in ("core", "penumbra", "tissue_labels"):
        arrays[mask] = read_array(truth_dir / f"{mask}.nii.gz")[0]
    return arrays, read_json(truth_dir / "truth.json")


def test_hypoperfused_tissue_has_tmax_above_six_seconds_and_normal_tissue_below(phantom):
    checked = 0
    for case in sorted(phantom.glob("case_*")):
        arrays, _ = _case_arrays(phantom, case.name)
        core, penumbra = arrays["core"].astype(bool), arrays["penumbra"].astype(bool)
        measured = arrays["CT_CBF"] > 0
        normal = (arrays["tissue_labels"] == 3) & ~penumbra & ~core & measured
        assert np.median(arrays["CT_Tmax"][normal]) < 6.0, case.name
        if (core & measured).sum() >= 200:
            assert np.median(arrays["CT_Tmax"][core & measured]) > 6.0, case.name
            checked += 1
    assert checked >= 5


def test_the_arterial_input_arrives_when_the_truth_says(phantom):
    for case in phantom.glob("case_*"):
        truth = read_json(phantom / "phantom_truth" / case.name / "truth.json")
        aif, times = np.array(truth["aif"]), np.array(truth["frame_times_s"])
        first_rise = times[np.argmax(aif > 0.01 * aif.max())]
        assert abs(first_rise - truth["aif_arrival_s"]) <= np.diff(times)[:20].max() + 0.5
