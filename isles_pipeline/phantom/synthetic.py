"""A tiny raw dataset with known bolus timing, for tests and smoke runs of plan-and-preprocess.

Not a phantom (that is `isles_pipeline.phantom`): a skull ring around a disc of tissue,
a gamma-variate bolus arriving at a chosen time, an optional lesion that enhances late and little, maps in
the ISLES dtypes. Small and exact, so tests can ask for a late bolus, a flat curve, 1 frame or a 200 x 200
case and know the answer.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from isles_pipeline.files import atomic_write_json
from isles_pipeline.imageio.nifti_io import write_image
from isles_pipeline.paths import dataset_folder_name
from isles_pipeline.raw_format import RAW_CHANNELS, case_paths, dataset_json


@dataclass
class SyntheticCase:
    name: str
    patient: str = ""
    slab: str = ""
    size_yx: tuple[int, int] = (64, 64)
    slices: int = 3
    num_frames: int = 40
    frame_interval_s: float = 1.0
    arrival_s: float = 8.0
    flat: bool = False
    lesion: bool = True
    with_dwi: bool = False
    spacing_xy: float = 0.9
    slice_thickness: float = 5.0


def gamma_variate(t: np.ndarray, t0: float, alpha: float = 3.0, beta: float = 1.5) -> np.ndarray:
    """(t - t0)^alpha exp(-(t - t0) / beta), scaled to a peak of 1 (the gamma-variate bolus shape)."""
    x = np.clip(np.asarray(t, dtype=float) - t0, 0.0, None)
    return (x / (alpha * beta)) ** alpha * np.exp(alpha - x / beta)


def _anatomy(case: SyntheticCase) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(brain, skull, lesion) boolean (Z, Y, X) masks."""
    ny, nx = case.size_yx
    y, x = np.mgrid[:ny, :nx]
    r = np.hypot((y - ny / 2 + 0.5) / (0.42 * ny), (x - nx / 2 + 0.5) / (0.36 * nx))
    brain2d, skull2d = r < 0.88, (r >= 0.88) & (r < 1.0)
    lesion2d = np.hypot(y - 0.45 * ny, x - 0.32 * nx) < 0.1 * min(ny, nx)
    z = case.slices
    lesion = np.zeros((z, ny, nx), bool)
    if case.lesion:
        lesion[z // 2 :] = lesion2d  # lesion on the upper slices only: the first slice has none
    return np.broadcast_to(brain2d, (z, ny, nx)), np.broadcast_to(skull2d, (z, ny, nx)), lesion


def _image(array: np.ndarray, case: SyntheticCase, dt: float | None = None) -> sitk.Image:
    image = sitk.GetImageFromArray(array, isVector=False)
    spacing = (case.spacing_xy, case.spacing_xy, case.slice_thickness)
    image.SetSpacing(spacing + ((dt,) if dt is not None else ()))
    return image


def write_case(folder: Path, case: SyntheticCase, split: str, rng: np.random.Generator) -> None:
    brain, skull, lesion = _anatomy(case)
    ct = np.full(brain.shape, -23, np.int32)
    ct[brain], ct[skull] = 35, 1200
    t = np.arange(case.num_frames) * case.frame_interval_s
    if case.flat:
        curve_normal = curve_lesion = np.zeros_like(t)
    else:
        curve_normal = 20.0 * gamma_variate(t, case.arrival_s + 1.0, beta=2.0)
        curve_lesion = 5.0 * gamma_variate(t, case.arrival_s + 3.0, beta=3.0)
    series = np.repeat(ct[None].astype(np.float32), case.num_frames, axis=0)
    series += (brain & ~lesion)[None] * curve_normal[:, None, None, None].astype(np.float32)
    series += lesion[None] * curve_lesion[:, None, None, None].astype(np.float32)
    series += rng.normal(0.0, 2.0, series.shape).astype(np.float32)
    maps = {1: (50, 10, np.uint16), 2: (40, 10, np.uint16), 3: (4.0, 8.0, np.float64), 4: (1.0, 10.0, np.float64)}
    paths = case_paths(folder, split, case.name)
    for role in ("CT", "label", "ctp", "dwi"):
        paths[role].parent.mkdir(parents=True, exist_ok=True)
    write_image(_image(ct, case), paths["CT"])
    for index, (normal, core, dtype) in maps.items():
        array = np.where(lesion, core, np.where(brain, normal, 0)).astype(dtype)
        write_image(_image(array, case), paths[RAW_CHANNELS[index]])
    write_image(_image(lesion.astype(np.uint8), case), paths["label"])
    write_image(_image(series, case, case.frame_interval_s), paths["ctp"])
    if case.with_dwi:
        dwi = (np.where(lesion, 300.0, np.where(brain, 100.0, 0.0)) + rng.normal(0, 5, ct.shape)).astype(np.float32)
        write_image(_image(dwi, case), paths["dwi"])


def write_synthetic_dataset(raw_root: Path, cases: Sequence[SyntheticCase], dataset_id: int = 18,
                            name: str = "ISLES2018", seed: int = 0) -> Path:
    """Write the cases as a training set in the raw format; returns the dataset folder."""
    folder = Path(raw_root) / dataset_folder_name(dataset_id, name)
    rng = np.random.default_rng(seed)
    info = {}
    for i, case in enumerate(cases):
        write_case(folder, case, "Tr", rng)
        info[case.name] = {"split": "Tr", "patient": case.patient or case.name, "slab": case.slab,
                           "source_folder": f"case_{i + 1}", "source_ids": {"CT_MTT": 100 + 7 * i + 4},
                           "num_frames": case.num_frames, "frame_interval_s": case.frame_interval_s,
                           "has_dwi": case.with_dwi, "has_label": True}
    atomic_write_json(folder / "dataset.json", dataset_json(name, "synthetic test cases", "", "none", info))
    return folder


def move_off_origin_and_rotate(folder: Path, pattern: str) -> None:
    """Rewrite every NIfTI matching `pattern` under `folder` off the origin and with its in-plane axes
    rotated by 90 degrees, so that tests of geometry round trips check origin and direction, not only size."""
    for path in Path(folder).rglob(pattern):
        image = sitk.ReadImage(str(path))
        dimension = image.GetDimension()
        direction = np.eye(dimension)
        direction[:2, :2] = [[0, -1], [1, 0]]
        image.SetOrigin((12.5, -30.0, 4.0) + (0.0,) * (dimension - 3))
        image.SetDirection(direction.ravel().tolist())
        write_image(image, path)
