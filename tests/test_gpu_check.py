"""The prepared device check runs end to end on the CPU (`--device cpu --quick`), in a child process where
SimpleITK, batchgenerators and acvl-utils cannot be imported, as on the bare GPU machine; its phantom
tarball is packed from the tiny preprocessed phantom."""
from __future__ import annotations

import json
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from train_helpers import DATASET

from benchmarks.gpu_check import TARGETS
from benchmarks.gpu_check_phantom import MANIFEST, pack_preprocessed, thin_cases
from isles_pipeline.preprocessing.storage import load_preprocessed_case

BLOCK = """
import importlib.abc, runpy, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in ('SimpleITK', 'batchgenerators', 'acvl_utils'):
            raise ImportError('not on the GPU machine: ' + name)
sys.meta_path.insert(0, Block())
sys.argv = ['gpu_check'] + sys.argv[1:]
runpy.run_module('benchmarks.gpu_check', run_name='__main__')
"""


def test_pack_refuses_a_phantom_over_the_transfer_budget(tiny_pipeline, tmp_path, monkeypatch):
    _, preprocessed = tiny_pipeline
    monkeypatch.setattr("benchmarks.gpu_check_phantom.MAX_PHANTOM_BYTES", 1000)
    with pytest.raises(ValueError, match="MiB"):
        pack_preprocessed(preprocessed / DATASET, "ISLESTinyPlans", tmp_path / "big.tar.gz")
    assert not (tmp_path / "big.tar.gz").exists()


def test_quick_check_runs_without_the_preprocessing_stack(tiny_pipeline, tmp_path):
    _, preprocessed = tiny_pipeline
    staged = thin_cases(preprocessed / DATASET, "ISLESTinyPlans", tmp_path / "thin", 3)
    identifier = next(p for p in staged.iterdir() if p.is_dir())
    case = sorted(p.stem for p in identifier.glob("*.json"))[0]
    full, thin = (load_preprocessed_case(folder, case) for folder in (preprocessed / DATASET / identifier.name,
                                                                       identifier))
    assert len(thin["data"]) == min(3, len(full["data"])) and thin["data"].shape[1:] == full["data"].shape[1:]
    lesion_slices = int(np.asarray(full["seg"]).reshape(len(full["seg"]), -1).any(axis=1).sum())
    assert int(np.asarray(thin["seg"]).reshape(len(thin["seg"]), -1).any(axis=1).sum()) == min(3, lesion_slices)
    tarball = pack_preprocessed(staged, "ISLESTinyPlans", tmp_path / "phantom.tar.gz")
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert MANIFEST in names and "ISLESTinyPlans.json" in names and any(n.endswith(".npy") for n in names)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-c", BLOCK, "--device", "cpu", "--quick", "--phantom", str(tarball),
                           "-o", str(out)], capture_output=True, text=True, timeout=240,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads((out / "gpu_check.json").read_text())
    assert results["cuda_tests"]["skipped"] == "no CUDA device"
    assert results["chain_step"]["eager_switch"]["train_slices_per_s"] > 0
    assert results["chain_step"]["eager_switch_over_batch_norm"] > 0
    assert results["train_step"]["eager"]["augmentation_ms"] > 0
    assert results["inference"]["eager"]["network_ms"] > 0
    training = results["short_training"]
    assert len(training["train_loss_per_epoch"]) == 2 and training["plans"] == "ISLESTinyPlans"
    table = (out / "gpu_check.md").read_text()
    for _, target, text in TARGETS.values():
        assert text in table
    assert "| short_training | ok |" in table
