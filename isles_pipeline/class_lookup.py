"""Classes by name, nnU-Net style (`-pl NAME`, `-tr NAME`): a subclass of `base` defined in one of our
packages, or a user's class given as `package.module:ClassName` (or `package.module.ClassName`)."""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


class ClassLookupError(ValueError):
    """No such class, or not a subclass of the expected base; the message lists what is known."""


def _subclasses(cls: type) -> list[type]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += _subclasses(sub)
    return found


def known_classes(base: type, package: ModuleType, include_base: bool = True,
                  only_package: bool = True) -> dict[str, type]:
    """Every subclass of `base` (defined in `package` unless `only_package` is off; the package's modules are
    imported first so that all of its classes are seen)."""
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    return {cls.__name__: cls for cls in _subclasses(base) if (include_base or cls is not base)
            and (not only_package or cls.__module__.startswith(package.__name__))}


def find_class(name: str, base: type, package: ModuleType, kind: str, include_base: bool = True,
               only_package: bool = True) -> type:
    """The class called `name` (`kind` names it in messages, e.g. "trainer")."""
    if ":" in name or "." in name:
        module_name, _, class_name = name.replace(":", ".").rpartition(".")
        try:
            found = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as error:
            raise ClassLookupError(f"cannot load {kind} {name!r}: {error}") from None
        if not (isinstance(found, type) and issubclass(found, base)):
            raise ClassLookupError(f"{name!r} is not a {base.__name__} subclass")
        return found
    candidates = known_classes(base, package, include_base, only_package)
    if name not in candidates:
        raise ClassLookupError(f"unknown {kind} {name!r}; known {kind}s: {', '.join(sorted(candidates))}")
    return candidates[name]
