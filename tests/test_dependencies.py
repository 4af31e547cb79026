"""Every dependency pyproject.toml declares is imported by the package (house rule: every declared dependency used)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from isles_pipeline.preprocessing.head_mask import head_mask

ROOT = Path(__file__).resolve().parents[1]
IMPORT_NAMES = {"scikit-image": "skimage", "acvl-utils": "acvl_utils", "simpleitk": "SimpleITK",
                "pylibjpeg-libjpeg": "libjpeg", "pylibjpeg-openjpeg": "openjpeg", "pyjpegls": "jpeg_ls",
                "pylibjpeg-rle": "rle", "pillow": "PIL"}


def _install_requires() -> list[str]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [re.split(r"[<>=!~\[; ]", requirement)[0] for requirement in project["dependencies"]]


def test_every_declared_dependency_is_imported_by_the_package():
    sources = "\n".join(p.read_text() for p in (ROOT / "isles_pipeline").rglob("*.py"))
    requirements = _install_requires()
    assert "torch" in requirements and "numpy" in requirements
    unused = [name for name in requirements
              if not re.search(rf"^\s*(import|from) {re.escape(IMPORT_NAMES.get(name.lower(), name))}\b", sources,
                               re.MULTILINE)]
    assert unused == []


def test_head_mask_keeps_the_largest_component_only():
    ct = np.full((3, 40, 40), -1000.0)
    ct[:, 5:30, 5:30] = 40.0  # head
    ct[:, 35:38, 35:38] = 40.0  # head rest, not touching it
    ct[1, 15:18, 15:18] = -1000.0  # a hole inside the head
    mask = head_mask(ct)
    assert mask[:, 5:30, 5:30].all() and not mask[:, 35:38, 35:38].any()
