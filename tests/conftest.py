"""Shared fixtures: the real ISLES 2018 file and small generated phantoms (built once per session)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import set_roots, write_plans_variant

from isles_pipeline.dataset_conversion.convert import convert_isles2018
from isles_pipeline.phantom import generate_phantom
from isles_pipeline.planners import api

# A copy of the real file lives in the repo (tests/data/isles2018/README.md: source, licence): users clone it alone.
FIXTURE_CT = Path(__file__).resolve().parent / "data" / "isles2018" / "SMIR.Brain.XX.O.CT.339203.nii"


@pytest.fixture(autouse=True)
def seeded_random_state():
    """Every test starts from the same global random state, whatever ran before it or in which order:
    a test that draws unseeded data sees the same data on every run."""
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def real_isles_ct() -> Path:
    """The plain CT of ISLES 2018 Train_01_A, with the identity-sform header quirk."""
    if not FIXTURE_CT.is_file():
        pytest.fail(f"the real ISLES 2018 fixture is missing: {FIXTURE_CT} (it ships with the repository)")
    return FIXTURE_CT


@pytest.fixture(scope="session")
def small_phantom(tmp_path_factory) -> Path:
    """Six TRAINING cases at 64 x 64 with MR_DWI (seed 2: patients 1 and 2 have two slabs); read-only for tests."""
    folder = tmp_path_factory.mktemp("phantom") / "TRAINING"
    generate_phantom(folder, num_cases=6, split="TRAINING", seed=2, size=64, with_dwi=True)
    return folder


@pytest.fixture(scope="session")
def small_phantom_testing(tmp_path_factory) -> Path:
    """Three TESTING cases at 64 x 64 (no OT)."""
    folder = tmp_path_factory.mktemp("phantom_ts") / "TESTING"
    generate_phantom(folder, num_cases=3, split="TESTING", seed=4, size=64)
    return folder


@pytest.fixture
def single_torch_thread():
    """One intra-op thread: with a second process busy (a parallel job, the other core's test) two OpenMP
    threads on two cores spin-wait on each other and small convolutions run up to 50x slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory):
    """Phantom (6 cases, 64 x 64, with DWI) -> converted -> small plans (32 x 32 slices) -> preprocessed, plus
    `ISLESTinyPlans` (4 epochs of 4 iterations, 1 validation iteration). Returns (raw, preprocessed) roots;
    tests point ISLES_* at them (and at their own results folder) with monkeypatch."""
    root = tmp_path_factory.mktemp("tiny_pipeline")
    mp = pytest.MonkeyPatch()
    set_roots(mp, root / "raw", root / "preprocessed", root / "results")
    try:
        generate_phantom(root / "TRAINING", num_cases=6, split="TRAINING", seed=2, size=64, with_dwi=True)
        convert_isles2018(root / "TRAINING", None, dataset_id=18, name="ISLES2018")
        result = api.plan_and_preprocess(18, "ISLESSmallPlanner", num_processes=1)
        assert result.failures == {}
        write_plans_variant(root / "preprocessed", "ISLESTinyPlans", num_epochs=4, iterations_per_epoch=4,
                            val_iterations_per_epoch=1)
    finally:
        mp.undo()
    return root / "raw", root / "preprocessed"


@pytest.fixture
def tiny_roots(tiny_pipeline, tmp_path, monkeypatch, single_torch_thread):
    """ISLES_* pointing at the tiny dataset and a fresh results folder; one torch thread (see conftest)."""
    raw, preprocessed = tiny_pipeline
    set_roots(monkeypatch, raw, preprocessed, tmp_path / "results")
    return raw, preprocessed, tmp_path / "results"
