"""Indicator-dilution physics of a CT perfusion bolus.

Tissue concentration (Ostergaard 1996):
    C(t) = (rho / kH) * CBF * (AIF conv R)(t - delay),   R(t) = exp(-t / MTT),   MTT = CBV / CBF,
with CBF in ml/g/s inside the formula, rho = 1.05 g/ml and kH = 0.73 (large/small-vessel haematocrit).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RHO = 1.05
K_H = 0.73
FINE_STEP_S = 0.25  # integration step (frame times are multiples of it); frames are sampled from this grid


@dataclass(frozen=True)
class Bolus:
    """Arterial input: gamma variate a (t - t0)^alpha exp(-(t - t0) / beta) plus a recirculation bump."""

    arrival_s: float
    alpha: float
    beta_s: float
    peak_hu: float
    recirculation_delay_s: float
    recirculation_fraction: float

    @staticmethod
    def draw(rng: np.random.Generator) -> "Bolus":
        """Mostly timely boluses; some late (poor cardiac output, delayed injection: the scan may end before
        washout) and some weak (small or slow injection, a narrow venous access)."""
        late, weak = rng.random() < 0.15, rng.random() < 0.15
        return Bolus(
            arrival_s=float(rng.uniform(12, 20) if late else rng.uniform(4, 11)),
            alpha=float(rng.uniform(2.6, 3.4)),
            beta_s=float(rng.uniform(1.3, 2.0)),
            peak_hu=float(rng.uniform(150, 250) if weak else rng.uniform(300, 500)),
            recirculation_delay_s=float(rng.uniform(10, 14)),
            recirculation_fraction=float(rng.uniform(0.08, 0.18)),
        )

    def _gamma(self, t, arrival, beta, peak):
        s = np.clip(t - arrival, 0, None)
        shape = s**self.alpha * np.exp(-s / beta)
        mode = self.alpha * beta  # the gamma variate peaks at t0 + alpha * beta
        return peak * shape / (mode**self.alpha * np.exp(-self.alpha))

    def __call__(self, t: np.ndarray) -> np.ndarray:
        """Arterial concentration over baseline (HU) at times t (s)."""
        first_pass = self._gamma(t, self.arrival_s, self.beta_s, self.peak_hu)
        second = self._gamma(
            t,
            self.arrival_s + self.recirculation_delay_s,
            2.0 * self.beta_s,
            self.recirculation_fraction * self.peak_hu,
        )
        return first_pass + second


def tissue_curves(bolus: Bolus, cbf, cbv, delay_s, dispersion_s, frame_times_s: np.ndarray) -> np.ndarray:
    """Enhancement (HU) of N voxels at the frame times: array (T, N).

    The arterial input reaching a voxel is the AIF delayed by `delay_s` and dispersed by an exponential
    kernel of mean `dispersion_s` (the standard vascular transport model, e.g. Calamante et al., MRM 2000);
    the tissue then holds it with the residue exp(-t/MTT). Both convolutions are integrated by their exact
    recursions for an input constant over a step of the fine grid (0.25 s), vectorised over voxels, with the
    AIF tabulated once and each voxel's delay rounded to a whole step, so a step costs one gather.
    """
    cbf = np.asarray(cbf, np.float64)
    cbv = np.asarray(cbv, np.float64)
    flow_per_s = cbf / 6000.0  # ml/100g/min -> ml/g/s
    mtt = np.maximum(np.where(cbf > 0, cbv / np.maximum(cbf, 1e-9) * 60.0, 1.0), 1e-2)  # (ml/100g)/(ml/100g/min) -> s
    dispersion = np.maximum(np.asarray(dispersion_s, np.float64), 1e-2)
    h = FINE_STEP_S
    residue_decay = np.exp(-h / mtt).astype(np.float32)
    residue_gain = (mtt * (1 - np.exp(-h / mtt))).astype(np.float32)
    dispersion_decay = np.exp(-h / dispersion).astype(np.float32)
    dispersion_gain = (1 - dispersion_decay).astype(np.float32)
    scale = (RHO / K_H * flow_per_s).astype(np.float32)
    frame_steps = np.round(np.asarray(frame_times_s) / h).astype(int)
    steps = int(frame_steps[-1]) + 1
    delay_steps = np.round(np.asarray(delay_s, np.float64) / h).astype(int)
    # aif_table[i] = AIF at time (i - steps) * h, so index step - delay_steps + steps is never negative.
    aif_table = bolus((np.arange(2 * steps) - steps) * h).astype(np.float32)
    index = steps - np.clip(delay_steps, 0, steps)
    out = np.zeros((len(frame_steps), cbf.size), np.float32)
    arterial = np.zeros(cbf.size, np.float32)
    tissue = np.zeros(cbf.size, np.float32)
    frame = 0
    for step in range(steps):
        arterial *= dispersion_decay
        arterial += dispersion_gain * aif_table[index + step]
        tissue *= residue_decay
        tissue += residue_gain * arterial
        while frame < len(frame_steps) and frame_steps[frame] <= step:
            out[frame] = scale * tissue
            frame += 1
    return out
