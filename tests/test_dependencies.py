"""Every dependency setup.py declares is imported by the package (house rule: every declared dependency used)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np

from isles_pipeline.preprocessing.head_mask import head_mask

ROOT = Path(__file__).resolve().parents[1]
IMPORT_NAMES = {"scikit-image": "skimage", "acvl-utils": "acvl_utils", "simpleitk": "SimpleITK"}


def _install_requires() -> list[str]:
    for node in ast.walk(ast.parse((ROOT / "setup.py").read_text())):
        if isinstance(node, ast.keyword) and node.arg == "install_requires":
            return [re.split(r"[<>=!~\[; ]", ast.literal_eval(element))[0] for element in node.value.elts]
    raise AssertionError("setup.py has no install_requires")


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
