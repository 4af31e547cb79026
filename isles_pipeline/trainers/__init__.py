"""Trainers (the chain trainer and its Table-1 variants); the cross-validation splits they train on are in
`isles_pipeline.splits` (the planner writes them).

Python API: `run_training(dataset_id, fold, trainer_name, plans_name, configuration, device, ...)`; trainer
classes by name with `find_trainer`. Imports are lazy so `import isles_pipeline.trainers` stays light.
"""
from __future__ import annotations

_LAZY = {
    "run_training": "isles_pipeline.trainers.run", "find_trainer": "isles_pipeline.trainers.registry",
    "known_trainers": "isles_pipeline.trainers.registry", "BaseTrainer": "isles_pipeline.trainers.base_trainer",
    "ISLESChainTrainer": "isles_pipeline.trainers.chain_trainer", "TrainingError": "isles_pipeline.trainers.errors",
    "TABLE1": "isles_pipeline.trainers.variants",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
