"""The ISLES planner: the seed's method (paper 2.1-2.4; documentation/explanation/method.md) as one `2d`
configuration, with
data-derived values taken from the fingerprint. Every hyper-parameter the trainer and the predictor use is
written here into the plans; they have no other source (see `plans.TRAINER_KEYS`).

Choices the paper leaves open, made here (edit the plans JSON or subclass to change them):
- slice size: the most common in-plane size of the data (ties: the larger), brought down to about
  `target_slice_size` (256) when larger (ISLES 2024's 512 x 512 -> 256 x 256, pixel spacing ~0.4-0.5 mm ->
  ~0.8-1 mm, the field of view kept; `in_plane_spacing_mm` records the median result), divided by
  `in_plane_downsampling`, rounded up to a multiple of 2**depth; patch size = slice size (the seed trains on
  whole 256 x 256 slices; the augmentation's random crop is resized back to it). Every case is resized to
  this size, so the pixel spacing follows each case's field of view, as for ISLES 2018;
- slices: all of them, except where the converter recorded a CTP coverage (ISLES 2024): then only the
  covered slices (`ctp_coverage_crop`; preprocessing/coverage.py), predictions put back on the NCCT grid;
- an epoch is one pass over a fold's training slices at the planned batch size (the paper's epochs are
  epochs), so iterations per epoch come from the fingerprint's slice count; 400 epochs in total: 180 at
  lr 0.002, 120 at 0.0004, 100 at 0.00008 (the paper gives the two decays, not the end);
- warm-up: linear from 0.1 x lr over the first 5 epochs;
- augmentation semantics: rotation by U(-rotation_degrees, +rotation_degrees); crop of a square whose side is
  U(crop_scale) of the slice, resized back; radial distortion r' = r (1 + k r^2) with r = 1 at the slice's
  half width and k ~ U(-radial_distortion, +radial_distortion) (k < 0 barrel, k > 0 pincushion); each with
  its probability; one warp for all channels, label, DWI and W;
- post-processing candidates: minimum connected-component volumes (ml) to try on the cross-validation
  predictions, 0 = keep everything, capped below the median training lesion volume; components in 3D on
  the original grid with scipy.ndimage.generate_binary_structure(3, connectivity);
- `network.chain` and `loss` hold the keyword arguments of networks.IntegratedChain and losses.ChainLoss
  (feature networks A and B belong to the loss: loss.feature_base_channels is their width);
- CT is not an input (the seed uses the perfusion maps, PWImax_o/p and the frames); `use_ct = True` adds it
  to the maps;
- map source (`map_source`, written into the plans): "vendor" (the CBF, CBV, MTT, Tmax of imagesTr, as the
  vendor delivered them), "computed" (our own deconvolution's maps from mapsComputedTr, channels
  CBF_computed ...), or "both" (the eight as separate channels). Planners ISLESPlanner_computedMaps and
  ISLESPlanner_bothMaps choose them. Computed maps are never made on the fly for training: the converter
  writes them (`--compute_maps`), and the planner refuses when a training case has none.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from isles_pipeline.components import FULL_CONNECTIVITY
from isles_pipeline.perfusion.bolus_timing import TemporalParameters
from isles_pipeline.preprocessing.head_mask import DEFAULT_CLIP_MAX
from isles_pipeline.preprocessing.normalization import clip_zscore_scheme
from isles_pipeline.raw_format import COMPUTED_CHANNELS

PERFUSION_MAPS = ("CBF", "CBV", "MTT", "Tmax")
PWI_MAPS = ("PWImax_o", "PWImax_p")
MAP_SOURCES = ("vendor", "computed", "both")
POSTPROCESSING_LADDER_ML = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)


class ISLESPlanner:
    """Builds the plans dict from a fingerprint; subclasses change the class attributes or a hook method."""

    plans_name = "ISLESPlans"
    configuration_name = "2d"
    in_plane_downsampling = 1
    target_slice_size = 256  # the seed's slices; larger grids (ISLES 2024's 512 x 512) are resampled near it
    use_ct = False
    map_source = "vendor"  # one of MAP_SOURCES
    num_frames = 11
    batch_size = 5
    depth = 4
    widths = {"extractor_base": 32, "generator_base": 64, "segmentor_base": 64, "feature_net_base": 16}
    num_epochs = 400
    lr_milestones = (180, 300)
    warmup_epochs = 5
    iterations_per_epoch: Optional[int] = None  # None: one pass over a fold's training slices
    val_iterations_per_epoch: Optional[int] = None
    num_folds = 4

    def __init__(self, fingerprint: dict, dataset_json: dict) -> None:
        self.fingerprint = fingerprint
        self.dataset_json = dataset_json

    # ---- data-derived values -------------------------------------------------------------------------
    def in_plane_size(self) -> list[int]:
        counts = self.fingerprint["in_plane_shapes"]
        common = [int(v) for v in max(counts, key=lambda key: (counts[key], [int(v) for v in key.split("x")]))
                  .split("x")]
        multiple = 2**self.depth
        reduction = max(1.0, max(common) / self.target_slice_size) * self.in_plane_downsampling
        return [max(multiple, math.ceil(v / reduction / multiple) * multiple) for v in common]

    def in_plane_spacing_mm(self, size: list[int]) -> Optional[float]:
        """The median pixel spacing the planned slice size gives (field of view kept): ~0.8 to 1 mm for ISLES
        2018 at 256 x 256, and for ISLES 2024's 512 x 512 grids of ~0.4 to 0.5 mm resampled to 256 x 256."""
        shapes, spacings = self.fingerprint.get("shapes"), self.fingerprint.get("spacings")
        if not shapes or not spacings:
            return None
        fov = [max(shape[1] * spacing[1], shape[2] * spacing[2]) for shape, spacing in zip(shapes, spacings)]
        return round(float(np.median(fov)) / max(size), 4)

    def coverage_settings(self) -> dict:
        """ISLES 2024: the converter recorded which slices the CTP covers; preprocess (and predict) only those.
        Absent for datasets whose series cover every slice (the key then stays out of the plans)."""
        cases = self.dataset_json.get("cases", {})
        return {"ctp_coverage_crop": True} if any("ctp_coverage_z" in c for c in cases.values()) else {}

    def perfusion_map_channels(self) -> list[str]:
        """CBF, CBV, MTT, Tmax as `map_source` says; ValueError (one line) when the plans ask for computed maps
        and a training case has none (the converter's --compute_maps makes them)."""
        if self.map_source not in MAP_SOURCES:
            raise ValueError(f"map_source {self.map_source!r} is not one of {list(MAP_SOURCES)}")
        if self.map_source != "vendor":
            cases = self.fingerprint.get("cases", {})
            lacking = sorted(name for name, entry in cases.items() if not entry.get("has_computed_maps"))
            if lacking or not cases:
                raise ValueError(
                    f"map_source {self.map_source!r} needs computed perfusion maps, but {len(lacking)} of "
                    f"{len(cases)} training case(s) have none (e.g. {lacking[:1]}): convert the dataset again with "
                    "--compute_maps, then re-extract the fingerprint (--clean)")
        vendor, computed = list(PERFUSION_MAPS), list(COMPUTED_CHANNELS)
        return {"vendor": vendor, "computed": computed, "both": vendor + computed}[self.map_source]

    def channels(self) -> tuple[list[str], list[str]]:
        frames = [f"frame_{i:02d}" for i in range(self.num_frames)]
        maps = self.perfusion_map_channels() + list(PWI_MAPS) + (["CT"] if self.use_ct else [])
        return frames, maps

    def normalization(self, frames: list[str], maps: list[str]) -> dict:
        stats = self.fingerprint["foreground_intensity_properties_per_channel"]
        missing = [name for name in ["frames"] + maps if name not in stats]
        if missing:
            raise ValueError(f"the fingerprint has no intensity statistics for {missing}; "
                             "re-extract it (--clean)")
        return {name: clip_zscore_scheme(stats["frames" if name in frames else name]) for name in frames + maps}

    def iterations(self) -> tuple[int, int]:
        slices = self.fingerprint["total_slices"]
        train = math.ceil(slices * (self.num_folds - 1) / self.num_folds / self.batch_size)
        val = math.ceil(slices / self.num_folds / self.batch_size)
        return (self.iterations_per_epoch or max(train, 1), self.val_iterations_per_epoch or max(val, 1))

    def postprocessing(self) -> dict:
        median = self.fingerprint["lesion"]["volume_ml"].get("median", math.inf) or math.inf
        return {"min_component_ml_candidates": [v for v in POSTPROCESSING_LADDER_ML if v == 0 or v < median],
                "connectivity": FULL_CONNECTIVITY}  # evaluation.metrics.component_structure: 26-connectivity

    # ---- method values (paper) -----------------------------------------------------------------------
    def network(self, num_maps: int) -> dict:
        chain = {"n_frames": self.num_frames, "n_maps": num_maps, "use_extractor": True, "use_generator": True,
                 "extractor_base": self.widths["extractor_base"], "generator_base": self.widths["generator_base"],
                 "segmentor_base": self.widths["segmentor_base"], "depth": self.depth, "norm": "batch",
                 "segmentor_norm": "switch", "segmentor_se": True, "se_reduction": 16, "input_bn": True,
                 "extractor_output": "logit", "n_classes": 2}
        return {"chain": chain}

    def training(self) -> dict:
        train_iterations, val_iterations = self.iterations()
        return {
            "batch_size": self.batch_size, "num_epochs": self.num_epochs,
            "iterations_per_epoch": train_iterations, "val_iterations_per_epoch": val_iterations,
            "num_folds": self.num_folds, "foreground_oversampling": 0.33,
            "optimizer": {"name": "RMSprop", "lr": 0.002, "alpha": 0.99, "eps": 1e-8, "momentum": 0.0,
                          "weight_decay": 0.0},
            "lr_schedule": {"warmup_epochs": self.warmup_epochs, "warmup_start_factor": 0.1,
                            "milestones": list(self.lr_milestones), "gamma": 0.2},
            "loss": {"lambda1": 1.0, "lambda2": 0.002, "lambda3": 1.2, "lambda4": 1.0, "segmentor_dice": True,
                     "weight_map": True, "feature_base_channels": self.widths["feature_net_base"],
                     "anti_collapse": True, "aux_weight": 1.0},
            "augmentation": {"rotation_degrees": 15.0, "p_rotation": 0.5, "crop_scale": [0.8, 1.0], "p_crop": 0.5,
                             "radial_distortion": 0.15, "p_radial_distortion": 0.3, "p_mirror": 0.0},
        }

    # ---- the plans -----------------------------------------------------------------------------------
    def configuration(self) -> dict:
        frames, maps = self.channels()
        size = self.in_plane_size()
        return {
            "data_identifier": f"{self.plans_name}_{self.configuration_name}",
            "in_plane_size": size, "patch_size": list(size), "num_frames": self.num_frames,
            "in_plane_spacing_mm": self.in_plane_spacing_mm(size), **self.coverage_settings(),
            "map_source": self.map_source, "frame_channels": frames, "map_channels": maps,
            "input_channels": frames + maps,
            "normalization": self.normalization(frames, maps), "dwi_normalization": {"type": "case_zscore"},
            "head_mask": {"clip_max": DEFAULT_CLIP_MAX},
            "temporal": TemporalParameters(num_frames=self.num_frames).to_config(),
            "weight_map": {"alpha": 4.0, "sigma_mm": 10.0},
            "network": self.network(len(maps)),
            **self.training(),
            "postprocessing": self.postprocessing(),
            "inference": {"threshold": 0.5, "ensemble": "mean_probability"},
        }

    def plan(self) -> dict:
        fp = self.fingerprint
        return {
            "dataset_name": fp["dataset_name"], "plans_name": self.plans_name, "planner": type(self).__name__,
            "channel_names": self.dataset_json["channel_names"], "labels": self.dataset_json["labels"],
            "fingerprint_summary": {"num_cases": fp["num_cases"], "in_plane_shapes": fp["in_plane_shapes"],
                                    "total_slices": fp["total_slices"], "num_frames": fp["num_frames"],
                                    "frame_interval_s": fp["frame_interval_s"]},
            "configurations": {self.configuration_name: self.configuration()},
        }


class ISLESSmallPlanner(ISLESPlanner):
    """CPU preset for tests and the demo: slices downsampled 2x in-plane (128 x 128 for ISLES), the networks'
    narrow widths (8/16/16, feature nets 4), 10 epochs of 10 iterations with the decays at epochs 6 and 8."""

    plans_name = "ISLESSmallPlans"
    in_plane_downsampling = 2
    widths = {"extractor_base": 8, "generator_base": 16, "segmentor_base": 16, "feature_net_base": 4}
    num_epochs = 10
    lr_milestones = (6, 8)
    warmup_epochs = 1
    iterations_per_epoch = 10
    val_iterations_per_epoch = 3


class ISLESPlanner_computedMaps(ISLESPlanner):
    """The ISLES plans on our own perfusion maps (mapsComputedTr: convert with --compute_maps) instead of the
    vendor's: channels CBF_computed, CBV_computed, MTT_computed, Tmax_computed."""

    plans_name = "ISLESPlans_computedMaps"
    map_source = "computed"


class ISLESPlanner_bothMaps(ISLESPlanner):
    """The ISLES plans with the vendor's maps and our computed ones as separate channels (eight maps)."""

    plans_name = "ISLESPlans_bothMaps"
    map_source = "both"


class ISLESLongPlanner(ISLESSmallPlanner):
    """The CPU preset trained 5x longer (50 epochs of 10 iterations, decays at epochs 30 and 40): the length at
    which the long phantom benchmark compares methods, where the 10-epoch preset leaves them within noise."""

    plans_name = "ISLESLongPlans"
    num_epochs = 50
    lr_milestones = (30, 40)


class ISLESFullResolutionPlanner(ISLESLongPlanner):
    """The long CPU preset at the data's own in-plane resolution (no 2x downsampling), narrow widths, and 20
    epochs of 10 iterations (decays at 12 and 16): a full-resolution step costs ~2.5x a half-resolution one on
    a CPU (`python -m benchmarks.chain_step -preset small -size 128` vs `-size 64`), so both presets were meant
    to train for the same time; in the long benchmark its folds took ~1.3x the half-resolution chain's."""

    plans_name = "ISLESFullResolutionPlans"
    in_plane_downsampling = 1
    num_epochs = 20
    lr_milestones = (12, 16)
