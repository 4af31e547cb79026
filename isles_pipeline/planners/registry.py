"""Planners by class name (`-pl`), nnU-Net style: any ISLESPlanner subclass in isles_pipeline.planners, or
one elsewhere given as `package.module.ClassName` (or `package.module:ClassName`)."""
from __future__ import annotations

import importlib
import pkgutil

import isles_pipeline.planners as planners_package
from isles_pipeline.planners.isles_planner import ISLESPlanner


def _subclasses(cls: type) -> list[type]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += _subclasses(sub)
    return found


def find_planner(name: str) -> type[ISLESPlanner]:
    """The planner class called `name`; ValueError listing the known ones when there is none."""
    if ":" in name or "." in name:
        module_name, _, class_name = name.replace(":", ".").rpartition(".")
        try:
            planner = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"cannot load planner {name!r}: {error}") from None
        if not (isinstance(planner, type) and issubclass(planner, ISLESPlanner)):
            raise ValueError(f"{name!r} is not an ISLESPlanner subclass")
        return planner
    for module in pkgutil.iter_modules(planners_package.__path__):
        importlib.import_module(f"{planners_package.__name__}.{module.name}")
    candidates = {cls.__name__: cls for cls in _subclasses(ISLESPlanner)}
    if name not in candidates:
        raise ValueError(f"no planner named {name!r}; known planners: {sorted(candidates)}")
    return candidates[name]
