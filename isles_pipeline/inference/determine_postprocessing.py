"""Choose the post-processing on the cross-validation predictions: keep a step only where it raises mean Dice.

Options compared (each alone, components on the original grid with the plans' `postprocessing.connectivity`,
see inference.postprocessing): none; remove components smaller than each candidate volume (the plans'
`postprocessing.min_component_ml_candidates` when present, else DEFAULT_CANDIDATES_ML); keep the largest
component. The option with the highest mean Dice wins, but only if it
is strictly better than none (ties keep none: a step that does not help is a risk on new data). The choice
and every option's score are written as JSON beside the model (`postprocessing.json`, with the connectivity
used), and `isles_predict` applies it with the same connectivity (it refuses a file chosen with another).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from isles_pipeline.components import FULL_CONNECTIVITY
from isles_pipeline.evaluation.evaluate import nifti_files_by_case, read_mask
from isles_pipeline.evaluation.metrics import dice
from isles_pipeline.files import atomic_write_json, read_json
from isles_pipeline.imageio.case_images import geometry_mismatch
from isles_pipeline.inference.folds import POSTPROCESSING_FILE, available_folds
from isles_pipeline.inference.postprocessing import apply_postprocessing, plans_connectivity
from isles_pipeline.paths import find_dataset_folder, isles_raw, model_folder

logger = logging.getLogger(__name__)

DEFAULT_CANDIDATES_ML = (0.1, 0.5, 1.0, 2.0, 5.0)
IMPROVEMENT_EPS = 1e-9
LEGACY_CONNECTIVITY = {26: 3}  # files written before the plans' value was used recorded 26 neighbours


def candidate_options(candidates_ml: Iterable[float]) -> dict[str, list[dict]]:
    """{option name: steps} for none, each positive removal threshold, and keep-largest."""
    options: dict[str, list[dict]] = {"none": []}
    for volume in sorted({float(v) for v in candidates_ml if float(v) > 0}):
        options[f"remove_small_components_{volume:g}ml"] = [{"name": "remove_small_components",
                                                             "min_volume_ml": volume}]
    options["keep_largest_component"] = [{"name": "keep_largest_component"}]
    return options


def choose_postprocessing(cases: Sequence[tuple[np.ndarray, np.ndarray, Sequence[float]]],
                          candidates_ml: Iterable[float] = DEFAULT_CANDIDATES_ML,
                          connectivity: int = FULL_CONNECTIVITY) -> dict:
    """cases: (reference, prediction, spacing_zyx) triples. Returns {"steps", "chosen", "mean_dice"}."""
    if not cases:
        raise ValueError("no cases to choose a post-processing on")
    scores = {}
    for name, steps in candidate_options(candidates_ml).items():
        scores[name] = float(np.mean([dice(ref, apply_postprocessing(pred, steps, spacing, connectivity))
                                      for ref, pred, spacing in cases]))
    best = max(scores, key=lambda name: scores[name])
    if scores[best] <= scores["none"] + IMPROVEMENT_EPS:
        best = "none"
    return {"steps": candidate_options(candidates_ml)[best], "chosen": best, "mean_dice": scores}


def _plans_configuration(folder: Path, configuration: str) -> dict:
    """The model's plans configuration ({} when the folder has no plans.json)."""
    plans_path = Path(folder) / "plans.json"
    if not plans_path.is_file():
        return {}
    return read_json(plans_path).get("configurations", {}).get(configuration, {})


def load_validation_cases(folder: Path, labels_folder: Path, folds: Sequence[int]) -> tuple[list, list[str]]:
    """(reference, prediction, spacing) of every validation prediction of the folds, and their names."""
    references = nifti_files_by_case(labels_folder)
    cases, names = [], []
    for fold in folds:
        for name, prediction_file in nifti_files_by_case(Path(folder) / f"fold_{fold}" / "validation").items():
            if name not in references:
                raise FileNotFoundError(f"{prediction_file}: no reference {name} in {labels_folder}")
            reference, reference_grid = read_mask(references[name])
            prediction, prediction_grid = read_mask(prediction_file)
            problem = geometry_mismatch(reference_grid, prediction_grid)
            if problem:
                raise ValueError(f"prediction {prediction_file} and reference {references[name]} are on "
                                 f"different grids: {problem}")
            cases.append((reference, prediction, tuple(reversed(reference_grid.spacing))))
            names.append(f"fold_{fold}/{name}")
    return cases, names


def determine_postprocessing(dataset_id: int, trainer: str, plans: str, configuration: str = "2d",
                             folder: Optional[Path] = None, labels_folder: Optional[Path] = None) -> dict:
    """Choose and save the post-processing of a trained model from whichever folds have validation
    predictions (their list is in the result). Returns what was written to `postprocessing.json`."""
    folder = Path(folder) if folder is not None else model_folder(dataset_id, trainer, plans, configuration)
    labels_folder = (Path(labels_folder) if labels_folder is not None
                     else find_dataset_folder(isles_raw(), dataset_id) / "labelsTr")
    folds = [f for f in available_folds(folder) if (folder / f"fold_{f}" / "validation").is_dir()
             and nifti_files_by_case(folder / f"fold_{f}" / "validation")]
    if not folds:
        raise FileNotFoundError(f"{folder}: no fold_N/validation/ predictions; train (and validate) a fold first")
    cases, names = load_validation_cases(folder, labels_folder, folds)
    planned = _plans_configuration(folder, configuration)
    candidates = [float(v) for v in planned.get("postprocessing", {}).get("min_component_ml_candidates") or []]
    source = "plans" if candidates else "default"
    connectivity = plans_connectivity(planned)
    result = choose_postprocessing(cases, candidates or DEFAULT_CANDIDATES_ML, connectivity)
    result.update({"connectivity": connectivity, "folds": folds, "num_cases": len(cases), "cases": names,
                   "candidates_ml_source": source, "trainer": trainer, "plans": plans,
                   "configuration": configuration})
    atomic_write_json(folder / POSTPROCESSING_FILE, result)
    logger.info("post-processing %s chosen on %d validation cases of folds %s", result["chosen"], len(cases), folds)
    return result


def load_postprocessing(folder: Path, connectivity: Optional[int] = None) -> Optional[list[dict]]:
    """The saved steps of a model folder, or None when determine_postprocessing has not been run. With
    `connectivity` (the plans'), a file chosen with another connectivity is refused: re-run the choice."""
    path = Path(folder) / POSTPROCESSING_FILE
    if not path.is_file():
        return None
    saved = read_json(path)
    chosen_with = LEGACY_CONNECTIVITY.get(saved.get("connectivity"), saved.get("connectivity"))
    if connectivity is not None and chosen_with is not None and chosen_with != connectivity:
        raise ValueError(f"{path}: chosen with connectivity {chosen_with}, but the plans now say {connectivity}; "
                         "re-run isles_determine_postprocessing")
    return list(saved["steps"])
