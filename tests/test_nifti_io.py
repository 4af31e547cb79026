"""Reading the real ISLES 2018 header quirk and writing it back exactly."""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from isles_pipeline.imageio.nifti_io import (
    NiftiError,
    has_identity_sform,
    read_array,
    read_image,
    write_image,
    write_with_isles_quirk,
)


def _header_fields(path):
    raw = open(path, "rb").read(348)
    codes = struct.unpack_from("<hh", raw, 252)
    srows = np.array(struct.unpack_from("<12f", raw, 280)).reshape(3, 4)
    pixdim = struct.unpack_from("<8f", raw, 76)
    return codes, srows, pixdim


def test_real_fixture_spacing_comes_from_the_qform(real_isles_ct):
    array, image = read_array(real_isles_ct)
    assert image.GetSize() == (256, 256, 8)
    np.testing.assert_allclose(image.GetSpacing(), (0.976562, 0.976562, 5.0003), rtol=1e-5)
    np.testing.assert_allclose(image.GetDirection(), (-1, 0, 0, 0, -1, 0, 0, 0, 1))
    assert array.dtype == np.int32 and array.min() == -23 and array.max() == 3071
    codes, srows, _ = _header_fields(real_isles_ct)
    assert codes == (2, 2) and np.allclose(srows, np.eye(3, 4))


def test_quirk_writer_reproduces_the_real_header(real_isles_ct, tmp_path):
    image = read_image(real_isles_ct)
    out = tmp_path / "copy.nii"
    write_with_isles_quirk(image, out)
    assert _header_fields(out)[0] == _header_fields(real_isles_ct)[0]
    np.testing.assert_allclose(_header_fields(out)[1], _header_fields(real_isles_ct)[1])
    np.testing.assert_allclose(_header_fields(out)[2][1:4], _header_fields(real_isles_ct)[2][1:4])
    back = read_image(out)
    assert back.GetSpacing() == image.GetSpacing() and back.GetDirection() == image.GetDirection()
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))
    assert not list(tmp_path.glob(".*tmp*")), "temporary files left behind"
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask, "written with the mode of a private temporary file"


def test_identity_sform_detection():
    assert has_identity_sform({"sform_code": "2", "srow_x": "1 0 0 0", "srow_y": "0 1 0 0", "srow_z": "0 0 1 0"})
    assert not has_identity_sform({"sform_code": "0", "srow_x": "1 0 0 0", "srow_y": "0 1 0 0", "srow_z": "0 0 1 0"})
    assert not has_identity_sform({"sform_code": "1", "srow_x": "-0.9 0 0 0", "srow_y": "0 1 0 0",
                                   "srow_z": "0 0 5 0"})


def _four_d(tmp_path):
    array = np.arange(7 * 3 * 5 * 6, dtype=np.float32).reshape(7, 3, 5, 6)
    image = sitk.GetImageFromArray(array, isVector=False)
    image.SetSpacing((0.9, 0.9, 5.0, 1.5))
    path = tmp_path / "series.nii"
    write_image(image, path)
    return array, path


def _patch_dims(path, dims, pixdim):
    raw = bytearray(path.read_bytes())
    struct.pack_into("<8h", raw, 40, *dims)
    struct.pack_into("<8f", raw, 76, *pixdim)
    path.write_bytes(bytes(raw))


def test_singleton_fifth_axis_is_squeezed_either_way(tmp_path):
    array, path = _four_d(tmp_path)
    for dims in ((5, 6, 5, 3, 7, 1, 1, 1), (5, 6, 5, 3, 1, 7, 1, 1)):
        _patch_dims(path, dims, (1, 0.9, 0.9, 5.0, 1.5, 1.5, 0, 0))
        back, image = read_array(path)
        assert image.GetDimension() == 4 and back.shape == (7, 3, 5, 6)
        assert np.array_equal(back, array)
        np.testing.assert_allclose(image.GetSpacing(), (0.9, 0.9, 5.0, 1.5), rtol=1e-6)


def test_reversed_slice_order_survives_the_quirk(tmp_path):
    """A left-handed grid (qfac -1 in pixdim[0]): ITK reports pixdim[0] as 0, so qfac is read from the bytes."""
    image = sitk.GetImageFromArray(np.arange(3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5))
    image.SetSpacing((0.9, 0.9, 5.0))
    image.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, -1))
    path = tmp_path / "flipped.nii"
    write_with_isles_quirk(image, path)
    assert struct.unpack_from("<f", path.read_bytes(), 76)[0] == -1.0
    back = read_image(path)
    np.testing.assert_allclose(back.GetDirection(), image.GetDirection(), atol=1e-6)
    np.testing.assert_allclose(back.GetSpacing(), image.GetSpacing(), rtol=1e-6)


def test_multi_member_gzip_is_complete_and_a_cut_one_is_not(tmp_path):
    image = sitk.GetImageFromArray(np.random.default_rng(0).random((4, 16, 16)).astype(np.float32))
    plain = tmp_path / "image.nii"
    write_image(image, plain)
    raw = plain.read_bytes()
    members = tmp_path / "members.nii.gz"  # as bgzip writes: several gzip members back to back
    members.write_bytes(gzip.compress(raw[:500]) + gzip.compress(raw[500:]))
    assert np.array_equal(read_array(members)[0], sitk.GetArrayFromImage(image))
    cut = tmp_path / "cut.nii.gz"
    whole = gzip.compress(raw)
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(NiftiError, match="truncated|corrupt"):
        read_image(cut)


def test_real_fixture_ships_inside_the_repository(real_isles_ct):
    """Users clone the repository alone: the real ISLES 2018 file the tests read must be inside it."""
    repo = Path(__file__).resolve().parents[1]
    assert repo in real_isles_ct.resolve().parents
    assert real_isles_ct.stat().st_size == 2_097_504
