"""The engine on the Kudo-design block phantom (exponential residues, CBV 2 and 4 ml/100g, small and large
blocks), against the plain fixed-threshold bcSVD, noise-free and at 10 HU.

Bands: noise-free, what the engine reaches with margin (it is deterministic); at 10 HU, the spread over noise
seeds 4, 5 and 6 (engine CBF median relative error +0.05 to +0.12, MTT r 0.32 to 0.36, Tmax median absolute
error 1.8 to 1.9 s; plain CBF error +2.11 to +2.14, MTT r -0.11 to -0.04, Tmax error 22.7 to 23.3 s) widened,
and tested on seed 7, which set no band.
"""
import numpy as np
import pytest
import torch

from experiments.kudo_phantom import build_phantom
from experiments.kudo_validation import method_maps, score
from isles_pipeline.perfusion.maps import flow_and_tmax


@pytest.fixture(scope="module")
def phantom():
    return build_phantom(residues=("exponential",), cbv_levels=(2.0, 4.0))


def _rows(phantom, noise, seed):
    series = phantom.noisy(noise, seed)
    return {method: score(method_maps(method, phantom, series)[0], phantom) for method in ("engine", "plain")}


def test_noise_free_blocks_keep_flow_delay_and_small_cores(phantom):
    rows = _rows(phantom, 0.0, 0)
    engine = rows["engine"]
    assert engine["cbf_r"] > 0.98 and abs(engine["cbf_median_rel_error"]) < 0.1
    assert engine["tmax_median_abs_error_s"] < 0.2  # the regularised maximum was 1 to 1.25 s late
    # a 4 x 4 mm block of rCBF 0.08 inside normal tissue: a fixed 4 mm Gaussian read it as 0.84
    low, true = engine["low_rcbf_small"]
    assert low < true + 0.04
    assert 0.95 < engine["delay_ratio_worst"] < 1.05
    assert rows["plain"]["tmax_median_abs_error_s"] >= 1.5  # the table tells the two apart


def test_at_10_hu_the_engine_beats_the_plain_deconvolution(phantom):
    rows = _rows(phantom, 10.0, 7)
    engine, plain = rows["engine"], rows["plain"]
    assert abs(engine["cbf_median_rel_error"]) < 0.3 and plain["cbf_median_rel_error"] > 1.0
    assert engine["mtt_r"] > 0.2 and plain["mtt_r"] < 0.15
    assert engine["tmax_median_abs_error_s"] < 2.6 and plain["tmax_median_abs_error_s"] > 10


def test_at_5_hu_small_cores_keep_their_contrast(phantom):
    """Bands from noise seeds 4, 5, 6 (2026-12-06): the engine's rCBF of the small lowest-flow blocks (true
    0.08) 0.28 to 0.34, block CBF r 0.85 to 0.88, CBV r 0.81, MTT r 0.74 to 0.76; with the edge-blind
    Gaussian it read 0.84 to 0.91 (CBF r 0.46 to 0.48), the plain method 0.78 to 0.83 (CBV r 0.73 to 0.79).
    Tested on seed 7 (0.31, 0.85, 0.87, 0.70); seeds 8 to 10 also inside (0.31 to 0.32, CBF r 0.84 to 0.89)."""
    rows = _rows(phantom, 5.0, 7)
    engine, plain = rows["engine"], rows["plain"]
    assert engine["low_rcbf_small"][0] < 0.45 < plain["low_rcbf_small"][0]
    assert engine["cbf_r"] > 0.75 and engine["cbv_r"] > 0.72 and engine["mtt_r"] > 0.6
    assert engine["cbv_r"] > plain["cbv_r"]


@pytest.mark.parametrize("delay", [0.5, 2.5, 4.5])  # the jump between two samples: its midpoint is the delay
def test_tmax_is_the_front_of_a_smoothed_residue_not_its_middle(delay):
    """A box residue (MTT 8 s) low-passed as truncation does: the rise finds the delay, the maximum does not."""
    t = np.arange(100.0)
    box = ((t >= 10 + delay) & (t < 18 + delay)).astype(float)
    kernel = np.exp(-0.5 * (np.arange(-6, 7) / 1.5) ** 2)
    residue = np.convolve(box, kernel / kernel.sum(), mode="same")
    residue = np.roll(residue, -10)[:, None]  # the front at `delay` s
    tensor = torch.as_tensor(residue, dtype=torch.float32)
    _, rise = flow_and_tmax(tensor, 1.0, 50, definition="rise")
    _, peak = flow_and_tmax(tensor, 1.0, 50, definition="peak")
    assert abs(float(rise[0]) - delay) < 0.25
    assert float(peak[0]) - delay > 1.5


def test_the_pooled_cbf_error_hides_opposite_biases_per_residue_shape():
    """Noise-free, one CBV section of each residue shape (deterministic; the full table, 2026-12-07, gives the
    same figures): the engine reads exponential residues +0.05 and box residues +0.23 (the box's edges ring),
    the plain bcSVD -0.26 and +0.08, which pool to -0.07; so the table reports both shapes."""
    phantom = build_phantom(sizes=("large",), cbv_levels=(4.0,))
    series = phantom.noisy(0.0, 0)
    rows = {method: score(method_maps(method, phantom, series)[0], phantom) for method in ("engine", "plain")}
    engine, plain = rows["engine"], rows["plain"]
    assert abs(engine["cbf_median_rel_error_exponential"]) < 0.1 < engine["cbf_median_rel_error_box"] < 0.3
    assert plain["cbf_median_rel_error_exponential"] < -0.2 < 0 < plain["cbf_median_rel_error_box"] < 0.15
    assert abs(plain["cbf_median_rel_error"]) < abs(plain["cbf_median_rel_error_exponential"])  # the cancellation
