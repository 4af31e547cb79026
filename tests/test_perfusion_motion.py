"""Rigid in-plane motion correction (perfusion.motion): a known head movement put into ten frames of a phantom
series (with scipy, independently of the correction's own resampling) is found and undone, and the maps
computed with the correction follow the truth better than without it."""
import dataclasses

import numpy as np
import pytest
from scipy import ndimage
from scipy.stats import spearmanr

from isles_pipeline.perfusion import compute_maps
from isles_pipeline.perfusion.motion import correct_motion
from isles_pipeline.phantom.case import Patient, simulate_slab

MOVED = slice(20, 30)
SHIFT_PX = (2.0, -3.0)  # (y, x)
ANGLE_DEG = 3.0


@pytest.fixture(scope="module")
def moved_case():
    rng = np.random.default_rng(13)  # a territorial stroke in 4 slices (as test_perfusion_phantom)
    patient = dataclasses.replace(Patient.draw(rng, 1, 128), num_slices=4, slice_mm=5.0,
                                  frame_times_s=tuple(float(t) for t in range(40)))
    case = simulate_slab(rng, patient, 0, 128)
    still = case["series"].astype(np.float32)
    air = float(still.min())
    moved = still.copy()
    for t in range(MOVED.start, MOVED.stop):
        for z in range(still.shape[1]):
            rotated = ndimage.rotate(still[t, z], ANGLE_DEG, reshape=False, order=1, cval=air)
            moved[t, z] = ndimage.shift(rotated, SHIFT_PX, order=1, cval=air)
    return case, still, moved


def test_the_movement_is_found_and_undone(moved_case):
    case, still, moved = moved_case
    corrected, motion = correct_motion(moved, case["spacing_zyx"])
    pixel = case["spacing_zyx"][1]
    shift_px = motion.shift_mm[MOVED] / pixel  # (x, y)
    np.testing.assert_allclose(shift_px, np.tile([SHIFT_PX[1], SHIFT_PX[0]], (10, 1)), atol=0.15)
    assert np.all(np.abs(np.abs(motion.angle_deg[MOVED]) - ANGLE_DEG) < 0.3)
    still_frames = [t for t in range(moved.shape[0]) if not MOVED.start <= t < MOVED.stop]
    assert np.abs(motion.shift_mm[still_frames]).max() < 0.1 * pixel  # frames that did not move stay put
    head = ndimage.binary_erosion(still[0].mean(axis=0) > -500, iterations=6)

    def rms(series):
        return float(np.sqrt(((series[MOVED] - still[MOVED])[:, :, head] ** 2).mean()))

    assert rms(corrected) < rms(moved) / 3


def test_maps_with_the_correction_follow_the_truth_better(moved_case):
    """Spearman's rho against the truth over brain voxels. Measured on the patients of seeds 13-16 (all M1
    strokes): CBV 0.02-0.33 moved -> 0.40-0.60 corrected (0.44-0.62 still); CBF 0.58-0.65 -> 0.59-0.76
    (0.61-0.78); Tmax, read at the residue's half-maximum front, barely follows the motion's spikes (0.60-0.71
    moved, 0.62-0.75 corrected, 0.61-0.75 still), so the correction must keep it near the still series'."""
    case, still, moved = moved_case
    brain = case["masks"]["brain"] > 0
    rho = {}
    for name, series, corrected in (("still", still, False), ("moved", moved, False), ("corrected", moved, True)):
        # the uncorrected series as it came: frame bridging (the default without registration) would hide the motion
        result = compute_maps(series, np.arange(40.0), case["spacing_zyx"], device="cpu", motion_correction=corrected,
                              bridge_moved=False)
        valid = result.masks.valid & brain
        rho[name] = {key: spearmanr(result.maps[key][valid], case["truth_maps"][key][valid])[0]
                     for key in ("cbf", "cbv", "tmax")}
        assert result.settings["motion_correction"] is corrected
    assert rho["corrected"]["cbv"] > rho["moved"]["cbv"] + 0.1, rho
    assert rho["corrected"]["cbf"] > rho["moved"]["cbf"] + 0.02, rho
    assert rho["corrected"]["tmax"] > max(rho["moved"]["tmax"], rho["still"]["tmax"]) - 0.03, rho


def test_bridging_in_the_engine_equals_bridging_the_series_first_and_never_writes_the_input(moved_case):
    """The engine bridges moved frames in its per-slice copies (a read-only stored series, as `io.read_series`
    hands it over, is never copied whole): the maps are those of the series bridged beforehand."""
    from isles_pipeline.perfusion.moved_frames import bridge_moved_frames

    case, _, moved = moved_case
    stored = np.round(moved).astype(np.int16)
    stored.flags.writeable = False
    before = stored.copy()
    times = np.arange(stored.shape[0], dtype=float)
    engine = compute_maps(stored, times, case["spacing_zyx"], device="cpu")
    bridged, frames = bridge_moved_frames(stored, times)
    assert frames == engine.settings["moved_frames_bridged"] and len(frames) >= 5, frames
    first = compute_maps(bridged, times, case["spacing_zyx"], device="cpu", bridge_moved=False)
    np.testing.assert_array_equal(stored, before)
    for name in ("cbf", "cbv", "tmax"):
        np.testing.assert_allclose(engine.maps[name], first.maps[name], rtol=1e-3, atol=1e-3 * first.maps[name].max())
