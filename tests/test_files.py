"""The one writer and the one JSON reader (isles_pipeline.files)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from isles_pipeline.files import FileFormatError, atomic_path, atomic_write_json, read_json, staged_folder


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_json_is_strict_nan_becomes_null(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_json(path, {"dice": float("nan"), "hd": math.inf, "n": np.int64(3), "v": np.array([1.5, np.nan])})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"dice": None, "hd": None, "n": 3, "v": [1.5, None]}


def test_serialisation_error_leaves_no_temporary_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_json(path, {"ok": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert _leftovers(tmp_path) == []


def test_failed_writer_removes_its_temporary_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "image.nii.gz"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as temporary:
            assert temporary.parent == tmp_path and temporary.name.endswith(".nii.gz")
            temporary.write_bytes(b"half")
            raise RuntimeError("writer died")
    assert path.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_written_file_has_ordinary_permissions(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_json(path, [1])
    assert path.stat().st_mode & 0o044 == 0o044  # group and others can read (mkstemp would give 0600)


def test_read_json_names_the_file_and_the_position(tmp_path):
    path = tmp_path / "plans.json"
    path.write_text('{\n  "a": 1,\n  "b": 2,,\n}\n')
    with pytest.raises(FileFormatError) as error:
        read_json(path)
    message = str(error.value)
    assert str(path) in message and "line 3 column" in message and "\n" not in message
    with pytest.raises(FileFormatError, match="file not found"):
        read_json(tmp_path / "missing.json")


def test_a_staged_folder_lands_whole_or_not_at_all(tmp_path):
    out = tmp_path / "maps"
    with staged_folder(out) as staging:
        (staging / "cbf.txt").write_text("1")
        (staging / "dicom").mkdir()
        (staging / "dicom" / "a.dcm").write_text("a")
        assert not out.exists()  # nothing lands before the end
    assert (out / "cbf.txt").read_text() == "1" and (out / "dicom" / "a.dcm").read_text() == "a"
    with pytest.raises(RuntimeError):
        with staged_folder(out) as staging:
            (staging / "cbf.txt").write_text("2")
            raise RuntimeError("the second run fails part-way")
    assert (out / "cbf.txt").read_text() == "1"
    with staged_folder(out) as staging:  # a folder of the same name is replaced, not merged
        (staging / "dicom").mkdir()
        (staging / "dicom" / "b.dcm").write_text("b")
    assert [p.name for p in (out / "dicom").iterdir()] == ["b.dcm"] and (out / "cbf.txt").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["maps"]


def test_a_staged_folder_may_be_the_current_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kept.txt").write_text("k")
    with staged_folder(Path(".")) as staging:
        (staging / "cbf.txt").write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cbf.txt", "kept.txt"]


def test_a_staged_folder_behind_a_link_is_staged_beside_its_target(tmp_path):
    (tmp_path / "elsewhere" / "maps").mkdir(parents=True)
    (tmp_path / "maps").symlink_to(tmp_path / "elsewhere" / "maps")
    with staged_folder(tmp_path / "maps") as staging:
        assert staging.parent == tmp_path / "elsewhere"  # the target's file system, not the link's
        (staging / "cbf.txt").write_text("1")
    assert (tmp_path / "elsewhere" / "maps" / "cbf.txt").read_text() == "1"
