"""Trainers by name (`-tr`), nnU-Net style: any BaseTrainer subclass defined in isles_pipeline.trainers, or a
user's class given as `package.module:ClassName` (or `package.module.ClassName`)."""
from __future__ import annotations

import importlib
import pkgutil

import isles_pipeline.trainers as trainers_package
from isles_pipeline.trainers.base_trainer import BaseTrainer
from isles_pipeline.trainers.errors import TrainingError


def _subclasses(cls: type) -> list[type]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += _subclasses(sub)
    return found


def known_trainers() -> dict[str, type]:
    for module in pkgutil.iter_modules(trainers_package.__path__):
        importlib.import_module(f"{trainers_package.__name__}.{module.name}")
    return {cls.__name__: cls for cls in _subclasses(BaseTrainer) if cls is not BaseTrainer
            and cls.__module__.startswith(trainers_package.__name__)}


def find_trainer(name: str) -> type[BaseTrainer]:
    """The trainer class called `name`; TrainingError listing the known ones when there is none."""
    if ":" in name or "." in name:
        module_name, _, class_name = name.replace(":", ".").rpartition(".")
        try:
            trainer = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as error:
            raise TrainingError(f"cannot load trainer {name!r}: {error}") from None
        if not (isinstance(trainer, type) and issubclass(trainer, BaseTrainer)):
            raise TrainingError(f"{name!r} is not a BaseTrainer subclass")
        return trainer
    trainers = known_trainers()
    if name not in trainers:
        raise TrainingError(f"unknown trainer {name!r}; known trainers: {', '.join(sorted(trainers))}")
    return trainers[name]
