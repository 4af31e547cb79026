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
    """Spearman's rho against the truth over brain voxels (measured: CBV 0.32 moved -> 0.53 corrected, 0.56 for
    the still series; Tmax 0.50 -> 0.75, 0.74 with Tmax at the residue's maximum, 0.74 -> 0.75 at its front;
    CBF 0.75 -> 0.80, 0.81)."""
    case, _, moved = moved_case
    brain = case["masks"]["brain"] > 0
    rho = {}
    for corrected in (False, True):
        # the uncorrected series as it came: frame bridging (the default without registration) would hide the motion
        result = compute_maps(moved, np.arange(40.0), case["spacing_zyx"], device="cpu", motion_correction=corrected,
                              bridge_moved=False)
        valid = result.masks.valid & brain
        rho[corrected] = {name: spearmanr(result.maps[name][valid], case["truth_maps"][name][valid])[0]
                          for name in ("cbf", "cbv", "tmax")}
        assert result.settings["motion_correction"] is corrected
    assert rho[True]["cbv"] > rho[False]["cbv"] + 0.1, rho
    # Tmax read at the residue's half-maximum front no longer follows the motion's spikes (uncorrected 0.50 with
    # the former maximum, 0.74 now): the correction must keep it, no longer lift it
    assert rho[True]["tmax"] > max(rho[False]["tmax"] - 0.02, 0.7), rho
    assert rho[True]["cbf"] > rho[False]["cbf"] + 0.02, rho
