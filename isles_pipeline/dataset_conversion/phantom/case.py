"""One simulated acquisition (a slab): 4D series, plain CT, vendor maps, DWI lesion and the truth."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .anatomy import AIR, CSF, DEEP_GREY, GREY, SKULL, WHITE, HeadShape, build_anatomy, physical_grid
from .fields import smooth_field, voxel_sigma
from .lesion import Stroke, build_lesion
from .physiology import Bolus, tissue_curves
from .vendor_maps import degrade_maps

BACKGROUND_HU = -23.0  # the real ISLES 2018 CT's value outside the head
BASELINE_HU = {SKULL: 1400.0, CSF: 12.0, GREY: 35.0, WHITE: 29.0, DEEP_GREY: 34.0}
NORMAL_FLOW = {GREY: (55.0, 4.0), DEEP_GREY: (50.0, 3.8), WHITE: (25.0, 2.0)}  # CBF ml/100g/min, CBV ml/100g
SLICE_COUNTS = (2, 4, 8, 16, 22)
SLICE_PROBABILITIES = (0.1, 0.15, 0.5, 0.2, 0.05)


@dataclass(frozen=True)
class Patient:
    """What two slabs of one patient share: head, stroke, slab geometry."""

    head: HeadShape
    stroke: Stroke
    num_slices: int
    slice_mm: float
    pixel_mm: float
    slab_centres_mm: tuple[float, ...]

    @staticmethod
    def draw(rng: np.random.Generator, num_slabs: int, size: int) -> "Patient":
        num_slices = int(rng.choice(SLICE_COUNTS, p=SLICE_PROBABILITIES))
        slice_mm = 5.0 if num_slices >= 16 else float(rng.choice([5.0, 8.0, 10.0, 12.0]))
        thickness = num_slices * slice_mm
        first = float(rng.uniform(-15, 25))
        centres = tuple(first + i * thickness for i in range(num_slabs))
        z_low, z_high = centres[0] - thickness / 2, centres[-1] + thickness / 2
        margin = min(0.25 * (z_high - z_low), 10.0)
        return Patient(
            head=HeadShape.draw(rng),
            stroke=Stroke.draw(rng, (z_low + margin, z_high - margin)),
            num_slices=num_slices,
            slice_mm=slice_mm,
            pixel_mm=float(rng.uniform(0.8, 1.0)) * 256.0 / size,
            slab_centres_mm=centres,
        )


def _parameter_maps(rng, labels, artery, penumbra, core, spacing_zyx):
    """True CBF, CBV, delay and Tmax per voxel, graded smoothly from normal to penumbra to core."""
    cbf = np.zeros(labels.shape, np.float32)
    cbv = np.zeros(labels.shape, np.float32)
    for tissue, (flow, volume) in NORMAL_FLOW.items():
        cbf[labels == tissue] = flow
        cbv[labels == tissue] = volume
    variation = 1 + 0.08 * smooth_field(rng, labels.shape, voxel_sigma(8, spacing_zyx))
    cbf *= variation
    cbv *= variation
    sigma = voxel_sigma(1.5, spacing_zyx)
    w_pen = np.clip(ndimage.gaussian_filter(penumbra.astype(np.float32), sigma) * 1.3, 0, 1) * penumbra
    w_core = np.clip(ndimage.gaussian_filter(core.astype(np.float32), sigma) * 1.3, 0, 1) * core
    pen_flow, core_flow = rng.uniform(0.45, 0.75), rng.uniform(0.25, 0.6)
    pen_volume, core_volume = rng.uniform(1.0, 1.25), rng.uniform(0.3, 0.6)
    cbf *= 1 + w_pen * (pen_flow - 1) + w_core * (core_flow - pen_flow)
    cbv *= 1 + w_pen * (pen_volume - 1) + w_core * (core_volume - pen_volume)
    normal_delay = np.clip(0.6 + 0.5 * smooth_field(rng, labels.shape, voxel_sigma(15, spacing_zyx)), 0, 2)
    pen_delay, core_delay = rng.uniform(6.5, 10.0), rng.uniform(9.0, 14.0)
    delay = normal_delay + w_pen * (pen_delay - normal_delay) + w_core * (core_delay - pen_delay)
    delay = np.where(artery > 0, 0.0, delay).astype(np.float32)
    # The residue exp(-t/MTT) is largest at t = 0, so the time to its maximum is the delay itself.
    tmax = np.where(cbf > 0, delay, 0.0).astype(np.float32)
    return cbf, cbv, delay, tmax


def simulate_slab(rng, patient: Patient, slab: int, num_frames: int, frame_interval_s: float, size: int):
    """Arrays of one case in numpy order (z, y, x) / (t, z, y, x), plus the truth dictionary."""
    shape = (patient.num_slices, size, size)
    spacing = (patient.slice_mm, patient.pixel_mm, patient.pixel_mm)
    centre = patient.slab_centres_mm[slab]
    anatomy_rng = np.random.default_rng(rng.integers(2**32))
    labels, artery, vein, brain = build_anatomy(anatomy_rng, patient.head, shape, spacing, centre)
    coords = physical_grid(shape, spacing, centre)
    coords = (coords[0], coords[1] - patient.head.centre_shift[1], coords[2] - patient.head.centre_shift[0])
    penumbra, core, dwi_lesion = build_lesion(np.random.default_rng(rng.integers(2**32)), patient.stroke,
                                              coords, labels >= GREY, spacing)
    cbf, cbv, delay, tmax = _parameter_maps(rng, labels, artery, penumbra, core, spacing)

    bolus = Bolus.draw(rng)
    times = np.arange(num_frames) * frame_interval_s
    aif = bolus(times).astype(np.float32)
    vof_bolus = Bolus(bolus.arrival_s + rng.uniform(4, 6), bolus.alpha, bolus.beta_s * 1.6, bolus.peak_hu * 1.1,
                      bolus.recirculation_delay_s, bolus.recirculation_fraction)
    vof = vof_bolus(times).astype(np.float32)

    baseline = np.full(shape, BACKGROUND_HU, np.float32)
    for tissue, value in BASELINE_HU.items():
        baseline[labels == tissue] = value
    skull = labels == SKULL
    baseline[skull] += 250 * smooth_field(rng, shape, voxel_sigma(3, spacing))[skull]
    head = labels != AIR
    noise_sd = float(np.clip(25 * np.sqrt(50 / rng.uniform(50, 1250)), 5, 25))  # tube current 50..1250 mAs
    series = np.empty((num_frames,) + shape, np.float32)
    for z in range(shape[0]):  # slice by slice keeps the peak memory near one 4D array
        enhancement = np.zeros((num_frames,) + shape[1:], np.float32)
        perfused = np.flatnonzero(cbf[z] > 0)
        enhancement.reshape(num_frames, -1)[:, perfused] = tissue_curves(
            bolus, cbf[z].ravel()[perfused], cbv[z].ravel()[perfused], delay[z].ravel()[perfused], times
        )
        arterial = artery[z] > 0
        enhancement[:, arterial] = aif[:, None] * artery[z][arterial]
        enhancement[:, vein[z]] = vof[:, None]
        frames = correlated_noise(rng, (num_frames,) + shape[1:])
        frames *= noise_sd
        frames += enhancement
        frames += baseline[z]
        np.round(frames, out=frames)
        frames[:, ~head[z]] = BACKGROUND_HU
        series[:, z] = frames
    plain_noise = correlated_noise(rng, shape) * 3.0
    plain_ct = np.where(head, np.round(baseline + plain_noise), BACKGROUND_HU).astype(np.int32)

    tissue_mask = (labels >= GREY) | (vein | (artery > 0))
    truth = {"cbf": cbf, "cbv": cbv, "mtt": np.where(cbf > 0, 60 * cbv / np.maximum(cbf, 1e-6), 0).astype(np.float32),
             "tmax": tmax, "delay": delay}
    maps = degrade_maps(rng, truth, tissue_mask, vein | (artery > 0.5), noise_sd, spacing)
    dwi = _dwi(rng, labels, dwi_lesion, spacing)
    return {
        "spacing_zyx": spacing,
        "series": series,
        "ct": plain_ct,
        "maps": maps,
        "ot": dwi_lesion.astype(np.uint8),
        "dwi": dwi,
        "truth_maps": truth,
        "masks": {"core": core, "penumbra": penumbra, "brain": labels >= GREY, "tissue_labels": labels},
        "truth": {
            "aif_arrival_s": bolus.arrival_s,
            "aif_peak_hu": bolus.peak_hu,
            "aif": aif.tolist(),
            "vof": vof.tolist(),
            "frame_interval_s": frame_interval_s,
            "num_frames": num_frames,
            "noise_sd_hu": noise_sd,
            "stroke_kind": patient.stroke.kind,
        },
    }


NOISE_CORRELATION_PX = 0.8


def correlated_noise(rng, shape) -> np.ndarray:
    """Unit-variance noise correlated in-plane like a CT reconstruction kernel (Gaussian, 0.8 px).

    The variance lost by the blur is restored with the kernel's exact norm, not the sample's std, so every
    slice of a case has the same noise level.
    """
    sigma = (0,) * (len(shape) - 2) + (NOISE_CORRELATION_PX, NOISE_CORRELATION_PX)
    impulse = np.zeros((33, 33))
    impulse[16, 16] = 1
    norm = float(np.sqrt((ndimage.gaussian_filter(impulse, NOISE_CORRELATION_PX, truncate=2.5) ** 2).sum()))
    noise = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma, truncate=2.5)
    noise /= norm
    return noise


def _dwi(rng, labels, lesion, spacing):
    """Diffusion-weighted image: tissue contrast, hyperintense lesion, Rician-like noise (arbitrary units)."""
    signal = np.zeros(labels.shape, np.float32)
    for tissue, value in {GREY: 520.0, DEEP_GREY: 500.0, WHITE: 450.0, CSF: 150.0, SKULL: 60.0}.items():
        signal[labels == tissue] = value
    signal *= 1 + 0.05 * smooth_field(rng, labels.shape, voxel_sigma(3, spacing))
    signal = np.where(lesion, signal * rng.uniform(1.6, 2.2), signal)
    real = signal + 20 * rng.standard_normal(labels.shape, dtype=np.float32)
    imaginary = 20 * rng.standard_normal(labels.shape, dtype=np.float32)
    return np.hypot(real, imaginary).astype(np.float32)
