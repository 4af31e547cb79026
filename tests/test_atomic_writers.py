"""Every writer family goes through isles_pipeline.files: a writer that fails midway leaves no temporary and
the old file as it was (NIfTI, npy, torch checkpoint, a case's prediction)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from isles_pipeline.imageio import nifti_io
from isles_pipeline.imageio.case_images import Geometry
from isles_pipeline.inference.case_inputs import PreparedCase
from isles_pipeline.inference.predict import PredictionOptions, write_case
from isles_pipeline.inference.predictor import CasePrediction
from isles_pipeline.preprocessing.storage import case_paths, write_preprocessed_case
from isles_pipeline.trainers.checkpoint import atomic_torch_save


def _hidden(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob(".*"))


def _image(value: int) -> sitk.Image:
    image = sitk.GetImageFromArray(np.full((2, 4, 4), value, np.uint8))
    image.SetSpacing((0.8, 0.8, 5.0))
    return image


def test_nifti_writer_failing_midway_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ct.nii.gz"
    nifti_io.write_image(_image(1), path)
    old = path.read_bytes()

    def copy_half_then_die(source, target, length=0):
        target.write(source.read(100))
        raise OSError("disk full")

    monkeypatch.setattr(nifti_io.shutil, "copyfileobj", copy_half_then_die)
    with pytest.raises(OSError, match="disk full"):
        nifti_io.write_image(_image(2), path)
    assert path.read_bytes() == old
    assert _hidden(tmp_path) == []


def test_npy_writer_failing_midway_keeps_the_old_array(tmp_path):
    good = SimpleNamespace(data=np.ones((1, 2, 3, 3), np.float16), seg=None, weight=None, dwi=None,
                           properties={"case": "a"})
    write_preprocessed_case(tmp_path, "a", good)
    # an object array cannot be stored without pickle: np.save fails after it has opened the file
    bad = SimpleNamespace(data=np.array([object()] * 3), seg=None, weight=None, dwi=None, properties={})
    with pytest.raises(ValueError):
        write_preprocessed_case(tmp_path, "a", bad)
    assert np.array_equal(np.load(case_paths(tmp_path, "a")["data"]), good.data)
    assert _hidden(tmp_path) == []


def test_checkpoint_writer_failing_midway_keeps_the_old_checkpoint(tmp_path):
    path = tmp_path / "checkpoint_latest.pth"
    atomic_torch_save({"epoch": 1, "w": torch.ones(1000)}, path)
    with pytest.raises(Exception):
        atomic_torch_save({"epoch": 2, "w": torch.zeros(1000), "bad": lambda: 0}, path)  # unpicklable, midway
    assert torch.load(path, weights_only=False)["epoch"] == 1
    assert _hidden(tmp_path) == []


def test_failed_case_keeps_its_earlier_prediction(tmp_path):
    geometry = Geometry.of(_image(0)).to_json()
    prepared = PreparedCase("case_1", SimpleNamespace(properties={"original_geometry": geometry}), None, None)
    mask = np.zeros((2, 4, 4), bool)
    mask[0, 1:3, 1:3] = True
    first = CasePrediction(mask, mask.astype(np.float32), None, (5.0, 0.8, 0.8))
    options = PredictionOptions(save_probabilities=True)
    write_case(prepared, first, tmp_path, options, {})
    old_mask = (tmp_path / "case_1.nii.gz").read_bytes()
    old_probabilities = (tmp_path / "probabilities" / "case_1.nii.gz").read_bytes()

    # the new mask can be written, its probabilities cannot (wrong grid): nothing of the case may change
    broken = CasePrediction(np.ones((2, 4, 4), bool), np.ones((3, 4, 4), np.float32), None, (5.0, 0.8, 0.8))
    with pytest.raises(ValueError):
        write_case(prepared, broken, tmp_path, options, {})
    assert (tmp_path / "case_1.nii.gz").read_bytes() == old_mask
    assert (tmp_path / "probabilities" / "case_1.nii.gz").read_bytes() == old_probabilities
    assert _hidden(tmp_path) == []
