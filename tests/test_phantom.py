"""The phantom writes exactly the ISLES 2018 layout (dtypes, header quirk, names), deterministically for a seed.
Its physics and calibration are tested in test_phantom_realism.py."""
from __future__ import annotations

import hashlib
import json
import re
import struct

import numpy as np
import pytest

from isles_pipeline.imageio.nifti_io import read_array
from isles_pipeline.phantom import generate_phantom

DTYPES = {"CT": np.int32, "CT_4DPWI": np.float32, "CT_CBF": np.uint16, "CT_CBV": np.uint16,
          "CT_MTT": np.float64, "CT_Tmax": np.float64, "OT": np.uint8, "MR_DWI": np.float32}
FOLDER = re.compile(r"^SMIR\.Brain\.XX\.O\.([A-Za-z0-9_]+)\.(\d+)$")


def _modalities(case):
    found = {}
    for folder in case.iterdir():
        match = FOLDER.match(folder.name)
        if match:
            files = list(folder.iterdir())
            assert [f.name for f in files] == [folder.name + ".nii"]
            found[match.group(1)] = (int(match.group(2)), files[0])
    return found


def test_training_layout_names_dtypes_and_header(small_phantom):
    cases = sorted(small_phantom.glob("case_*"), key=lambda p: int(p.name.split("_")[1]))
    assert [c.name for c in cases] == [f"case_{i}" for i in range(1, 7)]
    for case in cases:
        found = _modalities(case)
        assert set(found) == set(DTYPES)
        ids = sorted(i for i, _ in found.values())
        assert ids == list(range(ids[0], ids[0] + len(ids))), "SMIR ids of a case are consecutive"
        ct, ct_image = read_array(found["CT"][1])
        assert ct_image.GetSize()[2] in (2, 4, 8, 16, 22)
        for modality, (_, path) in found.items():
            array, image = read_array(path)
            assert array.dtype == DTYPES[modality], modality
            raw = path.read_bytes()[:348]
            assert struct.unpack_from("<hh", raw, 252) == (2, 2)
            assert np.allclose(struct.unpack_from("<12f", raw, 280), np.eye(3, 4).ravel())
            assert image.GetSpacing()[:3] == pytest.approx(ct_image.GetSpacing())
        series, series_image = read_array(found["CT_4DPWI"][1])
        assert 43 <= series.shape[0] <= 64 and series_image.GetSpacing()[3] == 1.0
        assert set(np.unique(read_array(found["OT"][1])[0])) <= {0, 1}
        metadata = json.loads(next(case.glob("*.json")).read_text())
        assert re.fullmatch(r"ISLES 2018 - TRAIN - Train_\d\d(_[AB])? - CT", metadata["description"])
        assert (small_phantom / "phantom_truth" / case.name / "truth.json").is_file()
        assert not (case / "phantom_truth").exists()


def test_testing_split_has_no_label_and_no_dwi_by_default(small_phantom_testing):
    for case in small_phantom_testing.glob("case_*"):
        assert set(_modalities(case)) == set(DTYPES) - {"OT", "MR_DWI"}
        assert "ISLES 2018 - TEST - Test_" in next(case.glob("*.json")).read_text()


def _digest(folder):
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_deterministic_for_a_seed_whatever_the_process_count(tmp_path):
    generate_phantom(tmp_path / "a", num_cases=3, seed=11, size=32)
    generate_phantom(tmp_path / "b", num_cases=3, seed=11, size=32, num_processes=2)
    generate_phantom(tmp_path / "c", num_cases=3, seed=12, size=32)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_fast_paths_give_the_direct_results():
    """The speed-ups are exact: a wide smooth field by FFT is ndimage's wrap-mode Gaussian of the same draws,
    the vendors' block means are reshape-and-mean, and the DWI misregistration shift on its box is the full
    ndimage.shift."""
    from scipy import ndimage

    from isles_pipeline.phantom.fields import smooth_field
    from isles_pipeline.phantom.lesion import _shifted
    from isles_pipeline.phantom.vendor_maps import block_mean

    for shape, sigma in (((3, 40, 36), (0.5, 9.0, 4.0)), ((2, 32, 32), (3.0, 16.0, 16.0))):
        fast = smooth_field(np.random.default_rng(4), shape, sigma)
        direct = ndimage.gaussian_filter(np.random.default_rng(4).standard_normal(shape, dtype=np.float32), sigma,
                                         mode="wrap")
        assert np.allclose(fast, (direct - direct.mean()) / direct.std(), atol=1e-4)
    array = np.random.default_rng(5).random((4, 3, 10, 13)).astype(np.float32)
    assert np.allclose(block_mean(array, 2), array[..., :10, :12].reshape(4, 3, 5, 2, 6, 2).mean(axis=(3, 5)))
    lesion = np.zeros((2, 30, 30), np.float32)
    lesion[1, 10:14, 12:20] = np.linspace(0.2, 1.0, 8)
    shift = (0.0, 2.6, -3.3)
    assert np.allclose(_shifted(lesion, shift), ndimage.shift(lesion, shift, order=1))
