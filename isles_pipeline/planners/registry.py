"""Planners by class name (`-pl`), nnU-Net style: any ISLESPlanner subclass in isles_pipeline.planners, or
one elsewhere given as `package.module.ClassName` (or `package.module:ClassName`)."""
from __future__ import annotations

import isles_pipeline.planners as planners_package
from isles_pipeline.class_lookup import find_class
from isles_pipeline.planners.isles_planner import ISLESPlanner


def find_planner(name: str) -> type[ISLESPlanner]:
    """The planner class called `name`; ValueError listing the known ones when there is none."""
    return find_class(name, ISLESPlanner, planners_package, "planner", only_package=False)
