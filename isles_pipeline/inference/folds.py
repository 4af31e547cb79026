"""Which folds a trained model has: `fold_N/` folders under the model folder (`isles_pipeline.paths.model_folder`),
so the predictor and determine_postprocessing agree on what was trained."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional, Sequence

POSTPROCESSING_FILE = "postprocessing.json"
FOLD_FOLDER = re.compile(r"^fold_(\d+)$")


def available_folds(folder: Path, required_file: Optional[str] = None) -> list[int]:
    """Fold numbers with a fold_N folder (holding `required_file` when given), sorted."""
    folds = []
    for path in Path(folder).iterdir():
        match = FOLD_FOLDER.match(path.name)
        if match and path.is_dir() and (required_file is None or (path / required_file).exists()):
            folds.append(int(match.group(1)))
    return sorted(folds)


def resolve_folds(folder: Path, folds: Optional[Sequence[int]], checkpoint_name: str) -> list[int]:
    """The requested folds (each must have the checkpoint) or, when None, every fold that has it."""
    have = available_folds(folder, checkpoint_name)
    if folds is None:
        if not have:
            raise FileNotFoundError(f"{folder}: no fold_N/{checkpoint_name}; train a fold first")
        return have
    missing = [f for f in folds if f not in have]
    if missing:
        raise FileNotFoundError(f"{folder}: fold(s) {missing} have no {checkpoint_name} (available: {have})")
    return [int(f) for f in folds]
