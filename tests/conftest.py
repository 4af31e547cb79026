"""Shared fixtures: the real ISLES 2018 file and small generated phantoms (built once per session)."""
from __future__ import annotations

from pathlib import Path

import pytest

from isles_pipeline.dataset_conversion.phantom import generate_phantom

FIXTURE_CT = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "isles2018" / "SMIR.Brain.XX.O.CT.339203.nii"


@pytest.fixture(scope="session")
def real_isles_ct() -> Path:
    """The plain CT of ISLES 2018 Train_01_A, with the identity-sform header quirk."""
    if not FIXTURE_CT.is_file():
        pytest.fail(f"the real ISLES 2018 fixture is missing: {FIXTURE_CT} (../shared must sit beside the repo)")
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
