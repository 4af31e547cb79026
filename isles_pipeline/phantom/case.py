"""One simulated acquisition (a slab): 4D series, plain CT, vendor maps, DWI lesion and the truth."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isles_pipeline.phantom.acquisition import Motion, beam_hardening, correlated_noise, move, resample_to_seconds
from isles_pipeline.phantom.anatomy import (
    AIR,
    CSF,
    DEEP_GREY,
    GREY,
    LEUKOARAIOSIS,
    OLD_INFARCT,
    SKULL,
    WHITE,
    HeadShape,
    build_anatomy,
    in_plane_box,
    physical_grid,
)
from isles_pipeline.phantom.centres import Centre, centre_at, frame_noise_hu
from isles_pipeline.phantom.fields import smooth_field, voxel_sigma, white_noise
from isles_pipeline.phantom.lesion import Stroke, build_lesion
from isles_pipeline.phantom.physiology import Bolus, tissue_curves
from isles_pipeline.phantom.population import independent_quantiles
from isles_pipeline.phantom.vendor_maps import compute_vendor_maps

BACKGROUND_HU = -23.0  # the real ISLES 2018 CT's value outside the head
BASELINE_HU = {SKULL: 1400.0, CSF: 12.0, GREY: 35.0, WHITE: 29.0, DEEP_GREY: 34.0, OLD_INFARCT: 16.0,
               LEUKOARAIOSIS: 24.0}
# CBF ml/100g/min, CBV ml/100g: grey and white matter at typical adult values; leukoaraiosis about two thirds of
# normal white matter flow; chronic infarcts almost none.
NORMAL_FLOW = {GREY: (55.0, 4.0), DEEP_GREY: (50.0, 3.8), WHITE: (25.0, 2.0), LEUKOARAIOSIS: (16.0, 1.6),
               OLD_INFARCT: (5.0, 0.8)}


@dataclass(frozen=True)
class Patient:
    """What the slabs of one patient share: centre, head, stroke, slab geometry, protocol timing, bolus."""

    centre: Centre
    head: HeadShape
    stroke: Stroke
    num_slices: int
    slice_mm: float
    pixel_mm: float
    slab_centres_mm: tuple[float, ...]
    frame_times_s: tuple[float, ...]
    mas: float
    bolus: Bolus

    @staticmethod
    def draw(rng: np.random.Generator, num_slabs: int, size: int,
             quantiles: dict[str, float] | None = None) -> "Patient":
        """A patient; `quantiles` (population.patient_quantiles) stratify a seed's patients, else drawn here."""
        quantiles = independent_quantiles(rng) if quantiles is None else quantiles
        centre = centre_at(quantiles["centre"])
        protocol = centre.protocol
        num_slices = protocol.slice_count_at(quantiles["slice_count"])
        slice_mm = float(rng.choice(protocol.slice_mm))
        thickness = num_slices * slice_mm
        first = -15.0 + 40.0 * quantiles["slab_position"]
        centres = tuple(first + i * thickness for i in range(num_slabs))
        z_low, z_high = centres[0] - thickness / 2, centres[-1] + thickness / 2
        margin = min(0.25 * (z_high - z_low), 10.0)
        return Patient(
            centre=centre,
            head=HeadShape.draw(rng),
            stroke=Stroke.draw(rng, (z_low + margin, z_high - margin), quantiles),
            num_slices=num_slices,
            slice_mm=slice_mm,
            pixel_mm=float(rng.uniform(*protocol.pixel_mm)) * 256.0 / size,
            slab_centres_mm=centres,
            frame_times_s=tuple(float(t) for t in protocol.frame_times(rng)),
            mas=float(rng.uniform(*protocol.mas)),
            bolus=Bolus.draw(rng),
        )


def _parameter_maps(rng, anatomy, lesion, spacing_zyx):
    """True tissue CBF and CBV (ml/100g/min, ml/100g) before partial volume."""
    cbf = np.zeros(anatomy.labels.shape, np.float32)
    cbv = np.zeros(anatomy.labels.shape, np.float32)
    for tissue, (flow, volume) in NORMAL_FLOW.items():
        cbf[anatomy.labels == tissue] = flow
        cbv[anatomy.labels == tissue] = volume
    variation = 1 + 0.08 * smooth_field(rng, anatomy.labels.shape, voxel_sigma(8, spacing_zyx))
    return cbf * variation * lesion.flow_fraction, cbv * variation * lesion.volume_fraction


def simulate_slab(rng, patient: Patient, slab: int, size: int):
    """Arrays of one case in numpy order (z, y, x) / (t, z, y, x), plus the truth dictionary."""
    shape = (patient.num_slices, size, size)
    spacing = (patient.slice_mm, patient.pixel_mm, patient.pixel_mm)
    centre_mm = patient.slab_centres_mm[slab]
    anatomy = build_anatomy(np.random.default_rng(rng.integers(2**32)), patient.head, shape, spacing, centre_mm)
    labels = anatomy.labels
    coords = physical_grid(shape, spacing, centre_mm)
    coords = (coords[0], coords[1] - patient.head.centre_shift[1], coords[2] - patient.head.centre_shift[0])
    lesion = build_lesion(np.random.default_rng(rng.integers(2**32)), patient.stroke, anatomy, coords, spacing)
    cbf, cbv = _parameter_maps(rng, anatomy, lesion, spacing)
    fraction = anatomy.tissue_fraction

    bolus = patient.bolus
    times = np.array(patient.frame_times_s)
    aif = bolus(times).astype(np.float32)
    # The venous outflow carries the same indicator mass later and wider (equal area: peak / 1.6 for 1.6 beta).
    vof_bolus = Bolus(bolus.arrival_s + 5.0, bolus.alpha, bolus.beta_s * 1.6, bolus.peak_hu / 1.6,
                      bolus.recirculation_delay_s, bolus.recirculation_fraction)
    vof = vof_bolus(times).astype(np.float32)

    baseline = np.full(shape, BACKGROUND_HU, np.float32)
    for tissue, value in BASELINE_HU.items():
        baseline[labels == tissue] = value
    parenchyma = labels >= GREY
    baseline = np.where(parenchyma, fraction * baseline + (1 - fraction) * BASELINE_HU[CSF], baseline)
    baseline -= 2.0 * lesion.core  # early ischaemic oedema: net water uptake lowers density a little
    skull = labels == SKULL
    baseline[skull] += 250 * smooth_field(rng, shape, voxel_sigma(3, spacing))[skull]
    baseline += beam_hardening(anatomy.skull_distance_mm, anatomy.brain & ~skull)
    head = labels != AIR
    noise_sd = frame_noise_hu(patient.mas, patient.slice_mm, patient.pixel_mm)
    motion = Motion.draw(rng, len(times))
    series = np.full((len(times),) + shape, BACKGROUND_HU, np.float32)
    # Only the head's bounding box (plus room for the motion) is simulated; outside it the air is constant.
    margin = int(np.ceil(4.5 / patient.pixel_mm)) + 2
    rows, cols = in_plane_box(head, margin)
    box = (len(times), rows.stop - rows.start, cols.stop - cols.start)
    for z in range(shape[0]):  # slice by slice keeps the peak memory near one 4D array
        enhancement = np.zeros(box, np.float32)
        cbf_z = cbf[z, rows, cols]
        perfused = np.flatnonzero(cbf_z > 0)
        enhancement.reshape(len(times), -1)[:, perfused] = fraction[z, rows, cols].ravel()[perfused] * tissue_curves(
            bolus, cbf_z.ravel()[perfused], cbv[z, rows, cols].ravel()[perfused],
            lesion.delay_s[z, rows, cols].ravel()[perfused], lesion.dispersion_s[z, rows, cols].ravel()[perfused],
            times)
        artery = anatomy.artery[z, rows, cols]
        arterial = artery > 0
        enhancement[:, arterial] = aif[:, None] * artery[arterial]
        enhancement[:, anatomy.vein[z, rows, cols]] = vof[:, None]
        enhancement += baseline[z, rows, cols]
        enhancement[:, ~head[z, rows, cols]] = BACKGROUND_HU
        move(enhancement, motion, patient.pixel_mm, BACKGROUND_HU)
        frames = correlated_noise(rng, box)
        frames *= noise_sd
        frames += enhancement
        np.round(frames, out=frames)
        frames[enhancement == BACKGROUND_HU] = BACKGROUND_HU
        series[:, z, rows, cols] = frames
    plain_noise = correlated_noise(rng, shape) * 3.0
    plain_ct = np.where(head, np.round(baseline + plain_noise), BACKGROUND_HU).astype(np.int32)

    maps = compute_vendor_maps(series, times, patient.centre.vendor, patient.pixel_mm)
    written_series = resample_to_seconds(series, times)
    del series
    mtt = np.where(cbf > 0, 60 * cbv / np.maximum(cbf, 1e-6), 0).astype(np.float32)
    truth_maps = {"cbf": (cbf * fraction).astype(np.float32), "cbv": (cbv * fraction).astype(np.float32),
                  "mtt": mtt, "tmax": np.where(cbf > 0, lesion.delay_s, 0).astype(np.float32),
                  # delay only where blood arrives (the parenchyma): outside it the field has no meaning, and
                  # its noise-like values there made it the costliest truth file to compress
                  "delay": np.where(parenchyma, lesion.delay_s, 0).astype(np.float32),
                  "dispersion": lesion.dispersion_s,
                  "flow_fraction": lesion.flow_fraction, "damage": lesion.damage}
    stroke = patient.stroke
    washout = float(vof[-1] / max(vof.max(), 1e-6))
    return {
        "spacing_zyx": spacing,
        "series": written_series,
        "ct": plain_ct,
        "maps": maps,
        "ot": lesion.dwi.astype(np.uint8),
        "dwi": _dwi(rng, labels, lesion, spacing),
        "truth_maps": truth_maps,
        "masks": {"core": lesion.core, "penumbra": lesion.penumbra, "brain": parenchyma, "tissue_labels": labels,
                  "territory": anatomy.territory},
        "truth": {
            "centre": patient.centre.describe(),
            "frame_times_s": [float(t) for t in times],
            "resampled_to_1s": not patient.centre.protocol.uniform,
            "aif_arrival_s": bolus.arrival_s,
            "aif_peak_hu": bolus.peak_hu,
            "aif": aif.tolist(),
            "vof": vof.tolist(),
            "frame_interval_s": 1.0,
            "num_frames": int(written_series.shape[0]),
            "noise_sd_hu": noise_sd,
            "tube_current_mas": patient.mas,
            "truncated": washout > 0.3,
            "motion": None if motion is None else {"first_frame": motion.first, "frames": motion.length,
                                                   "shift_mm": [float(v) for v in motion.shift_mm]},
            "stroke_kind": stroke.kind,
            "occlusion": stroke.kind,
            "side": "x<0" if stroke.side < 0 else "x>0",
            "collaterals": stroke.collaterals,
            "ctp_to_mri_min": stroke.interval_min,
            "reperfused": stroke.reperfused,
            "emboli": len(stroke.emboli),
            "old_infarcts": len(patient.head.old_infarcts),
            "leukoaraiosis": patient.head.leukoaraiosis,
        },
    }


def _dwi(rng, labels, lesion, spacing):
    """Diffusion-weighted image (b = 1000, arbitrary units): tissue contrast, the acute lesion brighter the
    deeper its damage, chronic infarcts and leukoaraiosis mildly bright from T2 shine-through, Rician noise."""
    signal = np.zeros(labels.shape, np.float32)
    for tissue, value in {GREY: 520.0, DEEP_GREY: 500.0, WHITE: 450.0, CSF: 150.0, SKULL: 60.0,
                          LEUKOARAIOSIS: 500.0, OLD_INFARCT: 560.0}.items():
        signal[labels == tissue] = value
    signal *= 1 + 0.05 * smooth_field(rng, labels.shape, voxel_sigma(3, spacing))
    signal = np.where(lesion.dwi, signal * (1.3 + 0.9 * lesion.damage), signal)
    real = signal + 20 * white_noise(rng, labels.shape)
    imaginary = 20 * white_noise(rng, labels.shape)
    return np.hypot(real, imaginary).astype(np.float32)
