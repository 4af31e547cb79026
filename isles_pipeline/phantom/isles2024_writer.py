"""The phantom's cases written in the ISLES 2024 training layout (see isles2024_layout for the real one).

Per subject: raw_data/<sub>/ses-01/<sub>_ses-01_ncct[.cta].nii.gz; derivatives/<sub>/ses-01/ with the 4D CTP,
CTA and perfusion maps in NCCT space (`_space-ncct_`); derivatives/<sub>/ses-02/ with DWI, ADC and the lesion
mask in NCCT space; phenotype/<sub>/ses-01 and ses-02 CSV tables. The quirks of the real files are reproduced:
- the NCCT grid has more slices than the CTP covers: the series and the maps are 0 outside the coverage
  (`coverage_margin` slices above and below), while NCCT, DWI and the mask span the whole grid (so part of a
  lesion can lie outside the CTP, as in real data);
- the mask is uint16 0/65535 with scl_slope 1/65535;
- `oblique=True` tilts the grid (a gantry tilt of 8 degrees about the x axis), every image alike.
Raw (non-registered) CTP, maps and DWI are not written: the converter never reads them. The physics is the
phantom's (case.simulate_slab); only the file layout is ISLES 2024's. Maps keep the phantom's units.
"""
from __future__ import annotations

import gzip
import shutil
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from isles_pipeline.files import atomic_path, atomic_write_json, atomic_write_text
from isles_pipeline.imageio.nifti_io import write_image
from isles_pipeline.parallel import map_cases
from isles_pipeline.phantom.case import Patient, simulate_slab

MAP_NAMES = {"CT_CBF": "cbf", "CT_CBV": "cbv", "CT_MTT": "mtt", "CT_Tmax": "tmax"}
MASK_SLOPE = 1.0 / 65535.0
TILT_DEGREES = 8.0


def subject_name(number: int) -> str:
    return f"sub-stroke{number:04d}"


def _direction(oblique: bool) -> np.ndarray:
    """LPS direction of the phantom's grids (ISLES 2018's diag(-1, -1, 1)), tilted about x when oblique."""
    base = np.diag([-1.0, -1.0, 1.0])
    if not oblique:
        return base
    angle = np.deg2rad(TILT_DEGREES)
    tilt = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    return tilt @ base


def _image(array: np.ndarray, spacing_zyx, direction: np.ndarray, time_step: float | None = None) -> sitk.Image:
    image = sitk.GetImageFromArray(array, isVector=False)
    spacing = (spacing_zyx[2], spacing_zyx[1], spacing_zyx[0])
    origin = (90.0, 110.0, -40.0)
    if time_step is None:
        image.SetDirection(tuple(direction.ravel()))
    else:
        spacing, origin = spacing + (time_step,), origin + (0.0,)
        direction4 = np.eye(4)
        direction4[:3, :3] = direction
        image.SetDirection(tuple(direction4.ravel()))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    return image


def write_scaled_mask(image: sitk.Image, path: Path) -> None:
    """A {0, 1} mask written as ISLES 2024 stores it: uint16 0/65535 with scl_slope 1/65535 (.nii.gz)."""
    scaled = sitk.Cast(image, sitk.sitkUInt16) * 65535
    scaled.CopyInformation(image)
    with atomic_path(Path(path)) as temporary:
        plain = temporary.with_name(temporary.name[: -len(".gz")])
        try:
            sitk.WriteImage(scaled, str(plain), useCompression=False)
            with open(plain, "r+b") as handle:
                handle.seek(112)  # scl_slope, scl_inter (nifti1.h)
                handle.write(struct.pack("<2f", MASK_SLOPE, 0.0))
            with open(plain, "rb") as source, open(temporary, "wb") as raw:
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=1, mtime=0) as target:
                    shutil.copyfileobj(source, target, length=1 << 22)
        finally:
            plain.unlink(missing_ok=True)


def _phenotype(rng: np.random.Generator, lesion_ml: float) -> tuple[dict, dict]:
    """Clinical variables with the real tables' column names (demographic_baseline, outcome)."""
    nihss = int(np.clip(rng.normal(6 + lesion_ml / 10, 4), 0, 42))
    baseline = {"Age": int(rng.integers(45, 92)), "Sex": str(rng.choice(["M", "F"])),
                "NIHSS at admission": nihss, "mRS premorbid": int(rng.integers(0, 3))}
    outcome = {"mRS 3 months": int(np.clip(round(nihss / 5 + rng.normal(0, 1)), 0, 6)),
               "TICI postinterventional": str(rng.choice(["2b", "2c", "3"]))}
    return baseline, outcome


def _csv_text(row: dict) -> str:
    return ",".join(row) + "\n" + ",".join(str(v) for v in row.values()) + "\n"


def _write_subject(args) -> str:
    out_dir, number, seed, size, num_frames, coverage_margin, oblique, with_cta = args
    rng = np.random.default_rng([seed, 24, number])
    patient = Patient.draw(rng, 1, size)
    patient = replace(patient, num_slices=patient.num_slices + 2 * coverage_margin)
    if num_frames is not None:  # a fixed count of 1 s frames (tests), instead of the centre's protocol
        patient = replace(patient, frame_times_s=tuple(float(t) for t in range(num_frames)))
    case = simulate_slab(rng, patient, 0, size)
    num_frames = int(case["series"].shape[0])
    spacing, direction = case["spacing_zyx"], _direction(oblique)
    z = case["ct"].shape[0]
    outside = np.ones(z, bool)
    outside[coverage_margin: z - coverage_margin] = False
    sub = subject_name(number)
    root = Path(out_dir)
    raw1 = root / "raw_data" / sub / "ses-01"
    acute = root / "derivatives" / sub / "ses-01"
    follow = root / "derivatives" / sub / "ses-02"

    def name(session: int, suffix: str, space: bool = True) -> str:
        return f"{sub}_ses-0{session}{'_space-ncct' if space else ''}_{suffix}.nii.gz"

    ncct = case["ct"].astype(np.int16)
    write_image(_image(ncct, spacing, direction), raw1 / name(1, "ncct", False))
    series = case["series"].astype(np.int16)
    series[:, outside] = 0
    write_image(_image(series, spacing, direction, 1.0), acute / name(1, "ctp"))
    if with_cta:  # the arterial peak over the plain CT: enough for a layout test, not a CTA simulation
        cta = (ncct + np.clip(case["series"].max(axis=0) - case["series"][0], 0, None)).astype(np.int16)
        write_image(_image(cta, spacing, direction), raw1 / name(1, "cta", False))
        write_image(_image(cta, spacing, direction), acute / name(1, "cta"))
    for key, short in MAP_NAMES.items():
        values = case["maps"][key].astype(np.float32)
        values[outside] = 0
        write_image(_image(values, spacing, direction), acute / "perfusion-maps" / name(1, short))
    dwi = case["dwi"].astype(np.float32)
    write_image(_image(dwi, spacing, direction), follow / name(2, "dwi"))
    adc = np.where(case["ot"] > 0, 450.0, 800.0).astype(np.float32) + 0.05 * dwi
    write_image(_image(adc, spacing, direction), follow / name(2, "adc"))
    write_scaled_mask(_image(case["ot"].astype(np.uint8), spacing, direction), follow / name(2, "lesion-msk"))
    lesion_ml = float(case["ot"].sum()) * float(np.prod(spacing)) / 1000.0
    baseline, outcome = _phenotype(rng, lesion_ml)
    atomic_write_text(root / "phenotype" / sub / "ses-01" / f"{sub}_ses-01_demographic_baseline.csv",
                      _csv_text(baseline))
    atomic_write_text(root / "phenotype" / sub / "ses-02" / f"{sub}_ses-02_outcome.csv", _csv_text(outcome))
    truth = {"coverage_z": [coverage_margin, z - coverage_margin], "num_slices": z, "num_frames": num_frames,
             "frame_interval_s": 1.0, "oblique": oblique, "lesion_volume_ml": lesion_ml,
             "noise_sd_hu": case["truth"]["noise_sd_hu"]}
    atomic_write_json(root / "phantom_truth" / sub / "truth.json", truth)
    return sub


def write_isles2024_phantom(out_dir, num_cases: int = 10, seed: int = 0, size: int = 256, num_processes: int = 1,
                            num_frames: int | None = None, coverage_margin: int = 2, oblique: bool = False,
                            with_cta: bool = True, progress: bool = False) -> list[str]:
    """Simulate `num_cases` subjects into `out_dir` in the ISLES 2024 layout; returns the subject names.
    `num_frames` None takes each subject's simulated centre protocol, as the ISLES 2018 phantom does."""
    if size < 32 or size % 16:
        raise ValueError(f"size must be a multiple of 16 and at least 32, got {size}")
    if num_cases < 1 or coverage_margin < 0:
        raise ValueError("need at least one case and a coverage margin >= 0")
    jobs = []
    for number in range(1, num_cases + 1):
        jobs.append((subject_name(number),
                     ((str(out_dir), number, seed, size, num_frames, coverage_margin, oblique, with_cta),)))
    written, failures = [], []
    for subject, _, error in map_cases(_write_subject, jobs, num_processes, desc="phantom cases", progress=progress):
        (failures if error else written).append(error or subject)
    if failures:
        raise RuntimeError("phantom generation failed: " + "; ".join(failures))
    return sorted(written)
