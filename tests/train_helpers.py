"""Helpers of the training tests: data roots and plan variants of the tiny preprocessed phantom."""
from __future__ import annotations

from pathlib import Path

from isles_pipeline.files import atomic_write_json, read_json

DATASET = "Dataset018_ISLES2018"


def set_roots(mp, raw: Path, preprocessed: Path, results: Path) -> None:
    mp.setenv("ISLES_raw", str(raw))
    mp.setenv("ISLES_preprocessed", str(preprocessed))
    mp.setenv("ISLES_results", str(results))


def write_plans_variant(preprocessed: Path, name: str, **changes) -> None:
    """A copy of ISLESSmallPlans with other training values (same data_identifier, so the same data)."""
    plans = read_json(preprocessed / DATASET / "ISLESSmallPlans.json")
    plans["plans_name"] = name
    plans["configurations"]["2d"].update(changes)
    atomic_write_json(preprocessed / DATASET / f"{name}.json", plans)


class Interrupted(Exception):
    """Raised by `interrupt_after_epoch`: a training stopped as a crash or a kill would stop it."""


def interrupt_after_epoch(mp, trainer_class: type, epoch: int):
    """Make `trainer_class` raise Interrupted at the end of `epoch` (after that epoch's checkpoints); returns
    the original on_epoch_end, to put back before resuming."""
    original = trainer_class.on_epoch_end

    def stop(self, *args):
        original(self, *args)
        if self.current_epoch == epoch:
            raise Interrupted

    mp.setattr(trainer_class, "on_epoch_end", stop)
    return original
