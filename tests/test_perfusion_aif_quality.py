"""What is not an artery is not an AIF: shape checks, moved frames bridged, the warning, clinical volumes."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from isles_pipeline.perfusion import aif_quality
from isles_pipeline.perfusion.clinical import clinical_volumes
from isles_pipeline.perfusion.moved_frames import bridge_moved_frames, moved_frames

TIMES = np.arange(50.0)


def gamma(peak, arrival=8.0, alpha=3.0, beta=1.5):
    s = np.clip(TIMES - arrival, 0, None)
    return peak * (s / (alpha * beta)) ** alpha * np.exp(alpha - s / beta)


def box(peak, first, frames):
    curve = np.zeros_like(TIMES)
    curve[first: first + frames] = peak
    return curve


@pytest.mark.parametrize("peak,beta", [(150.0, 1.3), (460.0, 1.5), (700.0, 2.0)])
def test_a_first_pass_passes_every_check(peak, beta):
    curves = gamma(peak, beta=beta)[:, None]
    assert aif_quality.plausible(curves, 1.0, tissue_peak_s=20.0).all()
    report = aif_quality.quality_report(curves[:, 0], curves, 1.0, 20.0, 1.0, 3.0, 10, 0)
    assert report["plausible"] and report["reasons"] == []


@pytest.mark.parametrize("curve,reason", [
    (box(1900.0, 24, 2), "wide"),  # bone moving in for two frames (the case that beat every artery)
    (box(600.0, 12, 5), "between two frames"),  # a five-frame motion box below the brightness limit
    (gamma(1500.0), "blood stays below"),  # a bolus shape, but brighter than blood gets
    (gamma(400.0, arrival=25.0), "after the tissue"),  # a vein, not an artery
])
def test_what_is_not_an_artery_fails_and_says_why(curve, reason):
    assert not aif_quality.plausible(curve[:, None], 1.0, tissue_peak_s=18.0).any()
    report = aif_quality.quality_report(curve, curve[:, None], 1.0, 18.0, 1.0, 3.0, 10, 0)
    assert not report["plausible"] and any(reason in text for text in report["reasons"]), report["reasons"]


def test_a_large_venous_rescaling_is_reported():
    report = aif_quality.quality_report(gamma(300.0), gamma(300.0)[:, None], 1.0, 20.0, 2.4, 3.0, 10, 0)
    assert not report["plausible"] and "venous" in report["reasons"][0]


def test_a_venous_curve_cut_by_the_end_of_the_scan_is_measured_by_a_fit_or_reported():
    """A partial-volumed AIF (0.6x the artery, the VOF carrying the artery's area): the summed areas over the whole
    scan, a fit once the scan ends during the venous washout, and a warning when it ends before the venous peak."""
    from isles_pipeline.perfusion.aif import venous_to_arterial_area

    artery = gamma(400.0)
    aif, vof = 0.6 * artery, gamma(400.0 / 1.6, arrival=13.0, beta=1.5 * 1.6)  # equal areas, as a first pass has
    assert vof[-1] < 0.01 * vof.max()
    ratio, how = venous_to_arterial_area(aif, vof, 1.0)
    assert how == "summed" and ratio == pytest.approx(1 / 0.6, rel=0.02)
    venous_peak = int(np.argmax(vof))  # frame 24
    for end in (venous_peak + 3, venous_peak + 6):  # the scan ends with the VOF at ~85 % and ~55 % of its peak
        ratio, how = venous_to_arterial_area(aif[:end], vof[:end], 1.0)
        assert how == "gamma-variate fit" and ratio == pytest.approx(1 / 0.6, rel=0.05), (end, ratio)
    ratio, how = venous_to_arterial_area(aif[:venous_peak + 1], vof[:venous_peak + 1], 1.0)
    assert how == "cut short" and ratio is None
    report = aif_quality.quality_report(aif, aif[:, None], 1.0, 20.0, 1.0, 3.0, 10, 0, "gamma-variate fit")
    assert report["plausible"], report["reasons"]
    report = aif_quality.quality_report(aif, aif[:, None], 1.0, 20.0, 1.0, 3.0, 10, 0, "cut short")
    assert not report["plausible"] and any("truncated" in text for text in report["reasons"]), report["reasons"]


def _head(shift_frames=(), shift_px=3):
    """(T, 1, 40, 40): a skull ring at 1200 HU around 35 HU tissue, shifted by `shift_px` in some frames."""
    yy, xx = np.mgrid[:40, :40]
    radius = np.hypot(yy - 20, xx - 20)
    frame = np.where(radius < 15, 35.0, -1000.0)
    frame[(radius >= 15) & (radius < 18)] = 1200.0
    series = np.repeat(frame[None, None], len(TIMES), axis=0).astype(np.float32)
    series[:, 0, radius < 12] += gamma(20.0)[:, None]  # tissue enhancement
    for t in shift_frames:
        series[t, 0] = np.roll(series[t, 0], shift_px, axis=1)
    return series


def test_moved_frames_are_found_and_bridged_still_ones_left_alone():
    still = _head()
    assert not moved_frames(still).any()
    assert bridge_moved_frames(still, TIMES)[0] is still  # nothing moved: the same array, no copy
    moved = _head(shift_frames=(20, 21, 22))
    np.testing.assert_array_equal(np.flatnonzero(moved_frames(moved)), [20, 21, 22])
    bridged, frames = bridge_moved_frames(moved, TIMES)
    assert frames == [20, 21, 22]
    np.testing.assert_allclose(bridged[21], 0.5 * (moved[19] + moved[23]), atol=1e-4)
    np.testing.assert_array_equal(bridged[19], moved[19])


def test_a_read_only_stored_series_is_bridged_in_a_copy_and_the_threads_agree():
    """`io.read_series` hands the engine a read-only int16 view of ITK's buffer: bridging must copy it, not
    write into it, and counting the moved frames slice by slice on threads gives the same frames."""
    moved = _head(shift_frames=(20, 21, 22))
    moved = np.concatenate([moved, moved], axis=1)  # two slices, so the threads have something to share
    stored = np.round(moved).astype(np.int16)
    stored.flags.writeable = False
    with ThreadPoolExecutor(2) as pool:
        np.testing.assert_array_equal(moved_frames(stored, pool), moved_frames(stored))
        bridged, frames = bridge_moved_frames(stored, TIMES, pool=pool)
    assert frames == [20, 21, 22] and bridged.dtype == np.float32 and not np.shares_memory(bridged, stored)
    np.testing.assert_allclose(bridged[21], 0.5 * (stored[19] + stored[23].astype(np.float32)), atol=1e-3)


def test_clinical_volumes_follow_the_rules():
    shape = (2, 20, 20)
    valid = np.ones(shape, bool)
    cbf = np.full(shape, 50.0, np.float32)
    tmax = np.zeros(shape, np.float32)
    tmax[:, :, 15:] = 8.0  # 2 x 20 x 5 = 200 voxels hypoperfused on the x >= 10 side
    cbf[:, :5, 15:] = 10.0  # 50 of them below 30 % of the healthy side's 50
    volumes = clinical_volumes(cbf, tmax, valid, (2.0, 1.0, 1.0))  # 2 ul voxels: x 0.002 ml
    assert volumes["hypoperfusion_ml"] == pytest.approx(0.4) and volumes["core_ml"] == pytest.approx(0.1)
    assert volumes["mismatch_ml"] == pytest.approx(0.3) and volumes["mismatch_ratio"] == pytest.approx(4.0)
    assert volumes["reference_cbf"] == pytest.approx(50.0)
    assert "Campbell" in volumes["rule"] and "DEFUSE 3" in volumes["rule"]


def test_a_bright_box_instead_of_an_artery_gives_one_warning_line_and_a_flagged_summary(tmp_path, capsys):
    """No artery, only a two-frame 700 HU box (what an edge moving in looks like; at 800 HU and above the frames
    would count as moved and be bridged): the maps are written, the command prints one warning line, and
    summary.json and aif.json say the AIF is implausible."""
    from test_perfusion_cli import synthetic_head, write_series

    from isles_pipeline.cli.perfusion_maps import main
    from isles_pipeline.files import read_json

    series = synthetic_head(arteries=False)
    series[20:22, :, 19:21, 10:30] += 700.0
    path = write_series(tmp_path / "ctp.nii.gz", series)
    assert main(["-i", str(path), "-o", str(tmp_path / "out"), "-device", "cpu"]) == 0
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "warning" in error[0] and "implausible" in error[0], error
    summary = read_json(tmp_path / "out" / "summary.json")
    assert summary["aif_plausible"] is False and "wide" in summary["warning"]
    assert {"core_ml", "hypoperfusion_ml", "mismatch_ml", "mismatch_ratio", "rule"} <= set(summary)
    assert read_json(tmp_path / "out" / "aif.json")["quality"]["plausible"] is False


def test_a_real_artery_gives_no_warning(tmp_path, capsys):
    from test_perfusion_cli import synthetic_head, write_series

    from isles_pipeline.cli.perfusion_maps import main
    from isles_pipeline.files import read_json

    path = write_series(tmp_path / "ctp.nii.gz", synthetic_head())
    assert main(["-i", str(path), "-o", str(tmp_path / "out"), "-device", "cpu", "--no_qc"]) == 0
    assert capsys.readouterr().err.strip() == ""
    summary = read_json(tmp_path / "out" / "summary.json")
    assert summary["aif_plausible"] is True and summary["warning"] is None


@pytest.mark.parametrize("end", [20, 24, 50])
def test_a_first_pass_area_is_fitted_through_noise_and_recirculation(end):
    """The gamma variate's area (known in closed form) from a noisy curve with a recirculation bump, whole or
    cut during its fall; a curve that ends at its peak has no fit."""
    from isles_pipeline.perfusion.first_pass import fit_first_pass

    first_pass = gamma(300.0, beta=2.0)  # peaks at frame 14
    curve = first_pass + gamma(40.0, arrival=22.0, beta=3.0) + np.random.default_rng(3).normal(0, 8.0, TIMES.size)
    fitted = fit_first_pass(curve[:end], 1.0)
    assert fitted is not None and fitted.area == pytest.approx(first_pass.sum(), rel=0.06), fitted
    assert fit_first_pass(curve[:15], 1.0) is None


def test_frames_bridged_at_the_end_of_the_scan_are_not_measurements():
    from isles_pipeline.perfusion.moved_frames import last_measured_time

    times = np.arange(10.0) * 2.0
    assert last_measured_time(times, []) is None and last_measured_time(times, [3, 4]) is None
    assert last_measured_time(times, [8, 9]) == 14.0 and last_measured_time(times, [6, 9]) == 16.0


@pytest.mark.parametrize("frames_after_venous_peak,expected", [(None, "summed"), (5, "gamma-variate fit"),
                                                                (0, "cut short")])
def test_compute_maps_scales_a_partial_volumed_aif_on_whole_and_cut_scans(frames_after_venous_peak, expected):
    """A head whose arteries read 0.6x the arterial curve and whose sinus carries the same indicator mass later:
    the AIF is scaled back to the artery on the whole scan and on one cut during the venous washout; a scan cut
    at the venous peak keeps the AIF as measured and says why."""
    from test_perfusion_cli import BOLUS, synthetic_head

    from isles_pipeline.perfusion import compute_maps
    from isles_pipeline.phantom.physiology import Bolus

    frames = 50
    series = synthetic_head(frames=frames, arteries=False)
    times = np.arange(frames, dtype=float)
    artery = BOLUS(times)
    vein = Bolus(BOLUS.arrival_s + 5.0, BOLUS.alpha, BOLUS.beta_s * 1.6, BOLUS.peak_hu / 1.6,
                 BOLUS.recirculation_delay_s, BOLUS.recirculation_fraction)(times)
    series[:, :, 19:21, 12:22] += (0.6 * artery)[:, None, None, None]  # partial-volumed arteries
    series[:, :, 27:29, 16:24] += vein[:, None, None, None]
    end = frames if frames_after_venous_peak is None else int(np.argmax(vein)) + frames_after_venous_peak + 1
    result = compute_maps(series[:end], times[:end], (5.0, 0.9, 0.9), device="cpu", denoise=False)
    arterial = result.arterial
    assert arterial.quality["vof_area"] == expected, arterial.quality
    if expected == "cut short":
        assert arterial.scale == 1.0 and not arterial.quality["plausible"]
    else:
        assert arterial.scaled_aif.max() == pytest.approx(artery.max(), rel=0.1), arterial.scale
        assert arterial.quality["plausible"], arterial.quality["reasons"]
