"""Perfusion maps as the converter and the predictor need them: the four ISLES map channels of a case,
computed from its 4D series, as SimpleITK images on the series' spatial grid.

Units are physical (float32): CBF ml/100g/min, CBV ml/100g, MTT s, Tmax s; the planner normalises each
channel, so they need not match a vendor's storage scaling. The frame interval is the series' 4th spacing
(a zero or negative one raises CaseError: never assumed).
"""
from __future__ import annotations

import logging

import numpy as np
import SimpleITK as sitk

from isles_pipeline.errors import CaseError
from isles_pipeline.perfusion.compute import compute_maps
from isles_pipeline.perfusion.io import reference_3d, result_warnings
from isles_pipeline.perfusion.timing import uniform_frame_times

MAP_CHANNELS = {"CT_CBF": "cbf", "CT_CBV": "cbv", "CT_MTT": "mtt", "CT_Tmax": "tmax"}
logger = logging.getLogger(__name__)


def computed_map_images(series: sitk.Image, name: str = "series", method: str = "osvd",
                        device: str = "auto") -> dict[str, sitk.Image]:
    """{"CT_CBF": image, ...} from a 4D SimpleITK series (x, y, z, t). CaseError on unusable input; a
    warning of the result (an implausible AIF, a short baseline, a cut first pass) is logged, naming the case."""
    if series.GetDimension() != 4:
        raise CaseError(name, f"expected a 4D CTP series, got a {series.GetDimension()}D image")
    array = sitk.GetArrayFromImage(series).astype(np.float32, copy=False)
    times = uniform_frame_times(array.shape[0], float(series.GetSpacing()[3]), name)
    result = compute_maps(array, times, tuple(series.GetSpacing()[2::-1]), method=method, device=device, name=name)
    for warning in result_warnings(result):  # maps that may be wrong are said so, as the command says it
        logger.warning("%s: %s", name, warning)
    reference = reference_3d(series)
    images = {}
    for modality, key in MAP_CHANNELS.items():
        image = sitk.GetImageFromArray(result.maps[key])
        image.CopyInformation(reference)
        images[modality] = image
    return images
