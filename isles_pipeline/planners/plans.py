"""Reading plans, and the contract between the planner and its readers.

`TRAINER_KEYS` lists every key of a plans configuration that the trainer and the predictor read (dotted
paths into `plans["configurations"]["2d"]`). The trainer takes its hyper-parameters from these and nowhere
else; a test checks that every planner writes all of them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from isles_pipeline.files import read_json
from isles_pipeline.paths import DEFAULT_CONFIGURATION, DEFAULT_PLANS, find_dataset_folder, isles_preprocessed

TRAINER_KEYS = (
    "data_identifier", "patch_size", "in_plane_size", "num_frames",
    "input_channels", "frame_channels", "map_channels",
    "batch_size", "num_epochs", "iterations_per_epoch", "val_iterations_per_epoch", "num_folds",
    "foreground_oversampling",
    "network.chain.n_frames", "network.chain.n_maps", "network.chain.use_extractor", "network.chain.use_generator",
    "network.chain.extractor_base", "network.chain.generator_base", "network.chain.segmentor_base",
    "network.chain.depth", "network.chain.norm", "network.chain.segmentor_norm", "network.chain.segmentor_se",
    "network.chain.se_reduction", "network.chain.input_bn", "network.chain.extractor_output",
    "network.chain.n_classes",
    "optimizer.name", "optimizer.lr", "optimizer.alpha", "optimizer.eps", "optimizer.momentum",
    "optimizer.weight_decay",
    "lr_schedule.warmup_epochs", "lr_schedule.warmup_start_factor", "lr_schedule.milestones", "lr_schedule.gamma",
    "loss.lambda1", "loss.lambda2", "loss.lambda3", "loss.lambda4", "loss.segmentor_dice", "loss.weight_map",
    "loss.feature_base_channels", "loss.anti_collapse", "loss.aux_weight",
    "augmentation.rotation_degrees", "augmentation.p_rotation", "augmentation.crop_scale", "augmentation.p_crop",
    "augmentation.radial_distortion", "augmentation.p_radial_distortion", "augmentation.p_mirror",
    "postprocessing.min_component_ml_candidates", "postprocessing.connectivity",
    "inference.threshold", "inference.ensemble",
    # read by preprocessing (training data, and the predictor's preprocessing of new cases)
    "normalization", "dwi_normalization", "head_mask.clip_max", "weight_map.alpha", "weight_map.sigma_mm",
    "temporal.num_frames", "temporal.smoothing_kernel_size", "temporal.onset_fraction", "temporal.end_fraction",
    "temporal.recirculation_fraction", "temporal.onset_lead_s", "temporal.min_enhancement_snr",
)


def get_key(configuration: dict, dotted: str):
    """configuration["a"]["b"] for "a.b"; KeyError naming the full path when absent."""
    value = configuration
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(f"plans configuration has no {dotted!r}")
        value = value[part]
    return value


def missing_keys(configuration: dict, keys: Sequence[str] = TRAINER_KEYS) -> list[str]:
    missing = []
    for key in keys:
        try:
            get_key(configuration, key)
        except KeyError:
            missing.append(key)
    return missing


def plans_file(preprocessed_dataset: Path, plans_name: str = DEFAULT_PLANS) -> Path:
    return Path(preprocessed_dataset) / f"{plans_name}.json"


def load_plans(dataset_id: int, plans_name: str = DEFAULT_PLANS, preprocessed_dataset: Optional[Path] = None) -> dict:
    """The plans of a dataset (by id, under $ISLES_preprocessed, or in a given preprocessed dataset folder)."""
    if preprocessed_dataset:
        folder = Path(preprocessed_dataset)
    else:
        folder = find_dataset_folder(isles_preprocessed(), dataset_id)
    path = plans_file(folder, plans_name)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no plans named {plans_name}; run isles_plan_and_preprocess first")
    return read_json(path)


def get_configuration(plans: dict, configuration: str = DEFAULT_CONFIGURATION) -> dict:
    """A configuration of the plans, with a clear error for a missing one or missing keys."""
    configurations = plans.get("configurations", {})
    if configuration not in configurations:
        raise KeyError(f"plans {plans.get('plans_name')} have no configuration {configuration!r}; "
                       f"available: {sorted(configurations)}")
    config = configurations[configuration]
    missing = missing_keys(config)
    if missing:
        raise KeyError(f"plans {plans.get('plans_name')} configuration {configuration!r} lacks {missing}")
    return config


def input_channel_positions(configuration: dict, names: Sequence[str]) -> list[int]:
    """Positions of channels in the stored data (axis 1 of <case>.npy); not the raw files' `_NNNN` indices,
    which `raw_format.channel_indices` gives."""
    order = list(configuration["input_channels"])
    return [order.index(name) for name in names]


def frame_and_map_positions(configuration: dict) -> tuple[list[int], list[int]]:
    """Positions of the frame channels and of the map channels in the stored (Z, C, H, W) data."""
    return (input_channel_positions(configuration, configuration["frame_channels"]),
            input_channel_positions(configuration, configuration["map_channels"]))
