"""Trainers by name (`-tr`), nnU-Net style: any BaseTrainer subclass defined in isles_pipeline.trainers, or a
user's class given as `package.module:ClassName` (or `package.module.ClassName`)."""
from __future__ import annotations

import isles_pipeline.trainers as trainers_package
from isles_pipeline.class_lookup import ClassLookupError, find_class, known_classes
from isles_pipeline.trainers.base_trainer import BaseTrainer
from isles_pipeline.trainers.errors import TrainingError


def known_trainers() -> dict[str, type]:
    return known_classes(BaseTrainer, trainers_package, include_base=False)


def find_trainer(name: str) -> type[BaseTrainer]:
    """The trainer class called `name`; TrainingError listing the known ones when there is none."""
    try:
        return find_class(name, BaseTrainer, trainers_package, "trainer", include_base=False)
    except ClassLookupError as error:
        raise TrainingError(str(error)) from None
