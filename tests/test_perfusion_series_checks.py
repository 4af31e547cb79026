"""Warnings about the acquisition's timing: a scan started late, a scan ended during the first pass."""
import numpy as np
import pytest

from isles_pipeline.perfusion import compute_maps
from isles_pipeline.perfusion.series_checks import timing_warnings
from isles_pipeline.phantom.physiology import Bolus
from tests.test_perfusion_cli import synthetic_head


def _head_curve(arrival_s, frames=40):
    """A head's mean curve in HU: 30 HU baseline, a gamma-variate first pass of 20 HU, 10 % recirculation."""
    return 30.0 + 0.05 * Bolus(arrival_s, 3.0, 2.0, 400.0, 12.0, 0.1)(np.arange(frames, dtype=float))


def test_a_complete_first_pass_gives_no_warning():
    assert timing_warnings(_head_curve(8.0), 6, 1.0) == []


def test_a_short_baseline_and_a_cut_first_pass_are_named():
    warnings = timing_warnings(_head_curve(30.0), 2, 1.0)
    assert len(warnings) == 2
    assert "2 pre-contrast frame(s)" in warnings[0] and "still enhancing" in warnings[1]


@pytest.mark.parametrize("arrival_s, truncated", [(6.0, False), (16.0, False), (25.0, True), (28.0, True)])
def test_the_engine_flags_a_scan_that_ends_during_the_first_pass(arrival_s, truncated):
    """The synthetic head's 40 s scan: with the bolus at 25 or 28 s the head still enhances at 39 % / 66 % of its
    peak at the end and the median CBV reads 0.79x / 0.63x the complete scan's; at 16 s, 21 % and 0.94x."""
    series = synthetic_head(bolus=Bolus(arrival_s, 3.0, 1.5, 400.0, 12.0, 0.12))
    result = compute_maps(series, np.arange(40.0), (5.0, 0.9, 0.9), device="cpu")
    flagged = [w for w in result.series_warnings if "still enhancing" in w]
    assert bool(flagged) == truncated


def test_maps_computed_for_the_converter_log_their_warnings(caplog):
    """The converter and the predictor compute maps through `computed_map_images`: a scan started late is
    logged with the case's name, as the command prints it."""
    import logging

    import SimpleITK as sitk

    from isles_pipeline.perfusion.pipeline import computed_map_images

    series = synthetic_head(bolus=Bolus(1.5, 3.0, 1.5, 400.0, 12.0, 0.12))
    image = sitk.GetImageFromArray(series, isVector=False)
    image.SetSpacing((0.9, 0.9, 5.0, 1.0))
    with caplog.at_level(logging.WARNING, logger="isles_pipeline.perfusion.pipeline"):
        images = computed_map_images(image, "case_7: ctp.nii", device="cpu")
    assert set(images) == {"CT_CBF", "CT_CBV", "CT_MTT", "CT_Tmax"}
    warned = [r.getMessage() for r in caplog.records if "pre-contrast frame" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith("case_7: ctp.nii: ")
