"""Bolus timing and the temporal resampling, on curves and series with known answers."""
import numpy as np
import pytest

from isles_pipeline.errors import CaseError
from isles_pipeline.perfusion.bolus_timing import (
    TemporalParameters,
    find_bolus_timing,
    gaussian_sigma,
    global_curve,
    interpolation_matrix,
    smoothing_matrix,
)
from isles_pipeline.phantom.synthetic import gamma_variate
from isles_pipeline.preprocessing.temporal import preprocess_series, temporal_operator

NO_LEAD = TemporalParameters(onset_lead_s=0.0)


def trapezoid(n=40, rise=(10, 14), fall=(18, 24), baseline=100.0, height=50.0):
    """Flat, linear rise, plateau, linear fall back to baseline: thresholds are easy to compute by hand."""
    t = np.arange(n, dtype=float)
    up = np.clip((t - rise[0]) / (rise[1] - rise[0]), 0, 1)
    down = np.clip((fall[1] - t) / (fall[1] - fall[0]), 0, 1)
    return baseline + height * np.minimum(up, down)


def test_kernel_of_five_taps_matches_opencv_sigma():
    assert gaussian_sigma(5) == pytest.approx(1.1)
    matrix = smoothing_matrix(20, 5)
    row = matrix[10]
    assert np.count_nonzero(row) == 5
    assert row.sum() == pytest.approx(1.0)
    assert np.allclose(matrix @ np.full(20, 3.0), 3.0)  # edges repeated: a constant stays constant


def test_onset_and_end_on_a_trapezoid():
    timing = find_bolus_timing(trapezoid(), 1.0, NO_LEAD)
    # smoothed curve first exceeds 10 % of the step at frame 11 (rise starts after frame 10) -> onset 10
    assert timing.onset_position == 10
    # falls below 20 % (baseline + 10) on the way down at frame 23 (smoothing changes no crossing here)
    assert timing.end_position == 23
    assert timing.baseline_value == pytest.approx(100.0)
    assert 14 <= timing.peak_frame <= 18
    assert timing.warnings == []


def test_onset_lead_is_in_seconds_so_frame_timing_matters():
    curve = trapezoid()
    one_second = find_bolus_timing(curve, 1.0, TemporalParameters(onset_lead_s=3.0))
    two_seconds = find_bolus_timing(curve, 2.0, TemporalParameters(onset_lead_s=3.0))
    assert one_second.onset_position == 7.0
    assert two_seconds.onset_position == 8.5
    assert two_seconds.to_json(11)["onset_s"] == pytest.approx(17.0)
    assert two_seconds.to_json(11)["end_s"] == pytest.approx(46.0)


def test_recirculation_minimum_ends_the_first_pass():
    t = np.arange(60, dtype=float)
    curve = 50 + 40 * gamma_variate(t, 10) + 12 * gamma_variate(t, 20, beta=2.0)
    timing = find_bolus_timing(curve, 1.0, NO_LEAD)
    smooth = smoothing_matrix(60, 5) @ curve
    end = int(timing.end_position)
    assert timing.peak_frame < end < 30
    assert smooth[end] <= smooth[end - 1]
    assert smooth[end] < smooth[end + 1]  # a local minimum, reached before the 20 % level
    assert smooth[end] > 50 + 0.2 * (smooth.max() - 50)


def test_late_bolus_window_ends_at_last_frame_with_warning():
    t = np.arange(40, dtype=float)
    curve = 80 + 30 * gamma_variate(t, 31)
    timing = find_bolus_timing(curve, 1.0, NO_LEAD)
    assert timing.end_position == 39
    assert 30 <= timing.onset_position <= 32
    assert any("last frame" in w for w in timing.warnings)


@pytest.mark.parametrize("seed", range(5))
def test_noise_moves_onset_and_end_by_at_most_a_frame(seed):
    t = np.arange(50, dtype=float)
    clean = 40 + 20 * gamma_variate(t, 12, beta=2.0)
    noisy = clean + np.random.default_rng(seed).normal(0, 1.0, t.size)
    exact, found = find_bolus_timing(clean, 1.0, NO_LEAD), find_bolus_timing(noisy, 1.0, NO_LEAD)
    assert abs(found.onset_position - exact.onset_position) <= 1
    assert abs(found.end_position - exact.end_position) <= 1


def test_flat_curve_is_an_error_naming_the_case():
    noise = np.random.default_rng(0).normal(0, 1.0, 45)
    for curve in (np.full(45, 30.0), 30.0 + noise):
        with pytest.raises(CaseError, match="train_042: no contrast bolus"):
            find_bolus_timing(curve, 1.0, TemporalParameters(), "train_042")


def test_non_finite_curve_is_an_error():
    curve = trapezoid()
    curve[5] = np.nan
    with pytest.raises(CaseError, match="NaN"):
        find_bolus_timing(curve, 1.0, TemporalParameters(), "c")


def test_interpolation_matrix_is_linear_in_time():
    matrix = interpolation_matrix(np.array([0.0, 1.5, 3.0]), 4)
    x = np.array([10.0, 20.0, 30.0, 40.0])
    assert np.allclose(matrix @ x, [10.0, 25.0, 40.0])


def _series(curve_tissue, shape=(2, 16, 16), base=30.0):
    """(T, Z, Y, X) with air outside a central square of tissue enhancing by `curve_tissue`."""
    z, y, x = shape
    mask = np.zeros(shape, bool)
    mask[:, 4:12, 4:12] = True
    series = np.zeros((len(curve_tissue),) + shape, np.float32)
    series[:, mask] = base + np.asarray(curve_tissue, np.float32)[:, None]
    return series, mask


@pytest.mark.parametrize("frames", [1, 3, 8, 11, 43, 64])
def test_any_frame_count_gives_eleven_frames(frames):
    t = np.arange(frames, dtype=float) * (40.0 / max(frames - 1, 1))
    series, mask = _series(20 * gamma_variate(t, 8.0))
    result = preprocess_series(series, mask, 40.0 / max(frames - 1, 1), TemporalParameters(), "c")
    assert result.frames.shape == (2, 11, 16, 16)
    assert np.isfinite(result.frames).all()
    if frames < 11:
        assert result.timing.warnings, "fewer frames than needed must warn"


def test_pwimax_p_is_the_max_of_the_preprocessed_series_and_pwimax_o_of_the_original():
    t = np.arange(40, dtype=float)
    series, mask = _series(20 * gamma_variate(t, 9.0))
    series += np.random.default_rng(1).normal(0, 0.5, series.shape).astype(np.float32)
    result = preprocess_series(series, mask, 1.0, TemporalParameters(), "c")
    assert np.array_equal(result.pwimax_p, result.frames.max(axis=1))
    assert np.array_equal(result.pwimax_o, series.max(axis=0))


def test_frames_are_baseline_subtracted_smoothed_samples():
    t = np.arange(40, dtype=float)
    curve = 20 * gamma_variate(t, 9.0)
    series, mask = _series(curve)
    params = TemporalParameters()
    result = preprocess_series(series, mask, 1.0, params, "c")
    positions = result.timing.sample_positions(11)
    expected = np.interp(positions, t, smoothing_matrix(40, 5) @ curve)
    expected -= (smoothing_matrix(40, 5) @ curve)[: result.timing.baseline_frames].mean()
    assert np.allclose(result.frames[0, :, 8, 8], expected, atol=1e-3)
    assert np.allclose(result.frames[0, :, 0, 0], 0.0, atol=1e-4)  # air: no enhancement
    assert temporal_operator(result.timing, params).shape == (11, 40)


def test_window_brackets_the_arterial_arrival_of_a_delayed_tissue_curve():
    """Tissue lags the AIF; the onset lead must still put the first frame before the arterial arrival."""
    t = np.arange(0, 50, 0.1)
    for arrival in (5.0, 7.3, 10.0):
        aif = gamma_variate(t, arrival)
        tissue = np.convolve(aif, np.exp(-t / 4.0))[: t.size] * 0.1
        curve = np.interp(np.arange(50.0), t, 30 + 20 * tissue / tissue.max())
        timing = find_bolus_timing(curve, 1.0, TemporalParameters())
        assert timing.onset_position <= arrival <= timing.end_position


def test_a_head_movement_is_not_taken_for_the_bolus():
    """Bone sliding into the head mask for five frames before the bolus (as the phantom's motion does): the
    moved frames are bridged in the timing curve, named in a warning, and the window still covers the bolus."""
    t = np.arange(50, dtype=float)
    series, mask = _series(20 * gamma_variate(t, 16.0), shape=(2, 20, 20))
    series[:, :, 2:18, 2] = series[:, :, 2:18, 17] = 1200.0  # a skull just outside the mask
    moved = slice(6, 11)
    series[moved, :, 4:12, 4] = 1200.0  # the skull slid one column into the mask
    result = preprocess_series(series, mask, 1.0, TemporalParameters(), "c")
    assert result.timing.onset_position <= 16.0 <= result.timing.peak_frame <= result.timing.end_position
    assert any("moved in frames 6, 7, 8, 9, 10" in warning for warning in result.timing.warnings)
    unbridged = find_bolus_timing(global_curve(series, mask), 1.0, TemporalParameters())
    assert unbridged.peak_frame < 12  # without the bridging the movement passes for the bolus
