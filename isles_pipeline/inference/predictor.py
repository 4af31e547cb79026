"""A trained model ready to predict cases: fold ensemble -> mean probability on the original grid ->
threshold -> the model's chosen post-processing.

Probabilities are resampled back (linear) before thresholding, so a case resampled in-plane for the network
gets a smooth mask on its own grid rather than blocky nearest-neighbour labels.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from isles_pipeline.acceleration import resolve_acceleration
from isles_pipeline.checkpoints import FINAL
from isles_pipeline.components import FULL_CONNECTIVITY, label_components
from isles_pipeline.devices import resolve_device
from isles_pipeline.files import read_json
from isles_pipeline.imageio.case_images import Geometry
from isles_pipeline.inference.determine_postprocessing import load_postprocessing
from isles_pipeline.inference.ensemble import FoldEnsemble
from isles_pipeline.inference.folds import resolve_folds
from isles_pipeline.inference.postprocessing import apply_postprocessing, plans_connectivity
from isles_pipeline.planners.plans import get_configuration
from isles_pipeline.preprocessing.resampling import restore_original_geometry

DEFAULT_CHECKPOINT = FINAL


def planned_threshold(configuration: dict) -> float:
    """The plans' probability threshold of the core (0.5 when the plans predate it)."""
    return float(configuration.get("inference", {}).get("threshold", 0.5))


@dataclass
class CasePrediction:
    """One case's result on its original (Z, Y, X) grid."""

    mask: np.ndarray  # bool, post-processed
    probabilities: np.ndarray  # float32, fold mean
    pseudo_dwi: Optional[np.ndarray]  # float32, fold mean (None without a generator)
    spacing_zyx: tuple[float, float, float]
    connectivity: int = FULL_CONNECTIVITY  # the plans' postprocessing.connectivity

    @property
    def volume_ml(self) -> float:
        return float(self.mask.sum()) * float(np.prod(self.spacing_zyx)) / 1000.0

    @property
    def lesion_count(self) -> int:
        return label_components(self.mask, self.connectivity)[1]


class Predictor:
    """Everything needed to turn a preprocessed case into a core mask."""

    def __init__(self, ensemble: FoldEnsemble, configuration: dict, postprocessing: Sequence[dict],
                 threshold: float = 0.5, batch_size: int = 8) -> None:
        self.ensemble = ensemble
        self.configuration = configuration
        self.postprocessing = list(postprocessing)
        self.threshold = float(threshold)
        self.batch_size = int(batch_size)
        self.connectivity = plans_connectivity(configuration)

    @classmethod
    def from_model_folder(cls, folder: Path, folds: Optional[Sequence[int]] = None,
                          checkpoint_name: str = DEFAULT_CHECKPOINT, device: str = "auto",
                          disable_postprocessing: bool = False, batch_size: int = 8,
                          acceleration: Optional[dict] = None) -> "Predictor":
        """Load the folds (all with the checkpoint when None) of `<Trainer>__<Plans>__<configuration>`.
        `acceleration`: resolve_acceleration keywords (precision, memory_format, compile_mode); default "auto"."""
        folder = Path(folder)
        parts = folder.name.split("__")
        if len(parts) != 3:
            raise ValueError(f"{folder}: a model folder is named <Trainer>__<Plans>__<configuration>")
        trainer, plans_name, configuration_name = parts
        plans_path = folder / "plans.json"
        if not plans_path.is_file():
            raise FileNotFoundError(f"{plans_path}: the model folder has no plans.json")
        configuration = get_configuration(read_json(plans_path), configuration_name)
        folds = resolve_folds(folder, folds, checkpoint_name)
        paths = {fold: folder / f"fold_{fold}" / checkpoint_name for fold in folds}
        expected = {"trainer_name": trainer, "plans_name": plans_name, "configuration": configuration_name}
        torch_device = resolve_device(device)
        ensemble = FoldEnsemble.from_checkpoints(paths, configuration, torch_device, expected,
                                                 resolve_acceleration(torch_device, **(acceleration or {})), batch_size)
        steps = [] if disable_postprocessing else (load_postprocessing(folder, plans_connectivity(configuration)) or [])
        return cls(ensemble, configuration, steps, planned_threshold(configuration), batch_size)

    @classmethod
    def from_networks(cls, networks: dict, configuration: dict, device, batch_size: int = 8,
                      acceleration=None) -> "Predictor":
        """Networks in memory, without post-processing: the trainer's final validation (one fold), so that its
        predictions are made exactly as isles_predict makes them (`acceleration`: the trainer's)."""
        ensemble = FoldEnsemble.from_networks(networks, configuration, device, acceleration=acceleration,
                                              batch_size=batch_size)
        return cls(ensemble, configuration, [], planned_threshold(configuration), batch_size)

    def predict(self, data: np.ndarray, properties: dict) -> CasePrediction:
        """data (Z, C, H, W) from preprocessing and its properties -> the case on its original grid."""
        output = self.ensemble.predict(data, self.batch_size)
        probabilities = restore_original_geometry(output.probabilities, properties, order=1).astype(np.float32)
        pseudo_dwi = (restore_original_geometry(output.pseudo_dwi, properties, order=1).astype(np.float32)
                      if output.pseudo_dwi is not None else None)
        geometry = Geometry.from_json(properties["original_geometry"])
        spacing_zyx = tuple(reversed(geometry.spacing))
        mask = apply_postprocessing(probabilities >= self.threshold, self.postprocessing, spacing_zyx,
                                    self.connectivity)
        return CasePrediction(mask, probabilities, pseudo_dwi, spacing_zyx, self.connectivity)
