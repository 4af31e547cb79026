"""Frame times in the wrong unit are one clear error wherever a series comes in: the perfusion engine's times
and the network's case reader (`imageio.case_images`)."""
import numpy as np
import pytest
import SimpleITK as sitk

from isles_pipeline.errors import CaseError
from isles_pipeline.imageio.case_images import Geometry, read_ctp
from isles_pipeline.imageio.frame_timing import check_ctp_timing
from isles_pipeline.perfusion.timing import check_frame_times


@pytest.mark.parametrize("interval, frames", [(0.5, 100), (1.0, 50), (3.0, 30), (10.0, 12)])
def test_clinical_protocols_pass(interval, frames):
    times = check_frame_times(np.arange(frames) * interval, frames, "ctp")
    assert times[-1] == pytest.approx(interval * (frames - 1))


@pytest.mark.parametrize("interval", [1000.0, 1500.0, 0.001, 0.05])
def test_a_time_unit_off_by_a_thousand_is_refused(interval):
    with pytest.raises(CaseError, match="frame times implausible for CT perfusion"):
        check_frame_times(np.arange(40) * interval, 40, "ctp")


def test_a_scan_of_more_than_ten_minutes_is_refused():
    with pytest.raises(CaseError, match="at most 600 s"):
        check_ctp_timing(15.0, 15.0 * 59, "ctp")


def test_the_case_reader_refuses_a_millisecond_header(tmp_path):
    series = np.zeros((20, 4, 16, 16), np.int16)
    image = sitk.GetImageFromArray(series, isVector=False)
    image.SetSpacing((1.0, 1.0, 5.0, 1000.0))
    path = tmp_path / "case_0001_0000.nii.gz"
    sitk.WriteImage(image, str(path))
    reference = sitk.Image([16, 16, 4], sitk.sitkInt16)
    reference.SetSpacing((1.0, 1.0, 5.0))
    with pytest.raises(CaseError, match="frame times implausible") as error:
        read_ctp(path, "case_0001", Geometry.of(reference))
    assert "case_0001" in str(error.value) and path.name in str(error.value)
