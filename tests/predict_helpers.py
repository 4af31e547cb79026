"""Shared set-up of the predict tests: small plans from a synthetic dataset and a model folder of randomly
initialised chains saved in the trainer's checkpoint contract (no trainer needed)."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from isles_pipeline.files import atomic_write_json
from isles_pipeline.networks.chain import IntegratedChain
from isles_pipeline.phantom.synthetic import SyntheticCase, write_synthetic_dataset
from isles_pipeline.planners import api
from isles_pipeline.planners.plans import get_configuration, load_plans

TRAINER, PLANS = "ISLESChainTrainer", "ISLESSmallPlans"


def use_roots(monkeypatch, root: Path) -> None:
    for name in ("raw", "preprocessed", "results"):
        monkeypatch.setenv(f"ISLES_{name}", str(root / name))


def save_checkpoint(path: Path, chain_kwargs: dict, fold: int, seed: int, trainer: str = TRAINER,
                    plans: str = PLANS) -> None:
    torch.manual_seed(seed)
    network = IntegratedChain(**chain_kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"network_weights": network.state_dict(), "chain_kwargs": chain_kwargs, "trainer_name": trainer,
                "plans_name": plans, "configuration": "2d", "fold": fold, "epoch": 0}, path)


def build_model(root: Path, folds=(0, 1, 2, 3)) -> Path:
    """Plans (ISLESSmallPlanner on two synthetic 64 x 64 cases) and random checkpoints of `folds`; returns the
    model folder. Environment roots must already point under `root`."""
    raw = write_synthetic_dataset(root / "raw", [SyntheticCase("train_001"), SyntheticCase("train_002")])
    api.extract_fingerprint(18)
    api.plan_experiment(18, "ISLESSmallPlanner")
    plans = load_plans(18, PLANS)
    chain_kwargs = get_configuration(plans)["network"]["chain"]
    model = root / "results" / raw.name / f"{TRAINER}__{PLANS}__2d"
    atomic_write_json(model / "plans.json", plans)
    shutil.copy(raw / "dataset.json", model / "dataset.json")
    for fold in folds:
        save_checkpoint(model / f"fold_{fold}" / "checkpoint_final.pth", chain_kwargs, fold, seed=fold)
    return model


def model_with_roots(root: Path, folds=(0, 1, 2, 3)) -> Iterator[Path]:
    """A module fixture's body: the data roots under `root`, one torch thread (small convolutions on a shared
    CPU, see conftest.single_torch_thread), the model folder yielded; all restored afterwards."""
    patch = pytest.MonkeyPatch()
    use_roots(patch, root)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield build_model(root, folds=folds)
    finally:
        torch.set_num_threads(threads)
        patch.undo()
