"""Indicator-dilution physics of a CT perfusion bolus.

Tissue concentration (Ostergaard 1996; DESIGN section 4):
    C(t) = (rho / kH) * CBF * (AIF conv R)(t - delay),   R(t) = exp(-t / MTT),   MTT = CBV / CBF,
with CBF in ml/g/s inside the formula, rho = 1.05 g/ml and kH = 0.73 (large/small-vessel haematocrit).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RHO = 1.05
K_H = 0.73
FINE_STEP_S = 0.1  # integration step; frames are sampled from this grid


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
        return Bolus(
            arrival_s=float(rng.uniform(5, 10)),
            alpha=float(rng.uniform(2.6, 3.4)),
            beta_s=float(rng.uniform(1.3, 1.7)),
            peak_hu=float(rng.uniform(250, 500)),
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


def tissue_curves(bolus: Bolus, cbf, cbv, delay_s, frame_times_s: np.ndarray) -> np.ndarray:
    """Enhancement (HU) of N voxels at the frame times: array (T, N).

    The convolution with an exponential residue is integrated by its exact recursion on a fine grid,
    y(t + h) = y(t) e^{-h/MTT} + h * AIF(t + h - delay), vectorised over voxels. The AIF is tabulated once
    on the grid and each voxel's delay rounded to a whole step (0.1 s), so a step costs one gather.
    """
    cbf = np.asarray(cbf, np.float64)
    cbv = np.asarray(cbv, np.float64)
    flow_per_s = cbf / 6000.0  # ml/100g/min -> ml/g/s
    mtt = np.where(cbf > 0, cbv / np.maximum(cbf, 1e-9) * 60.0, 1.0)  # (ml/100g)/(ml/100g/min) -> s
    decay = np.exp(-FINE_STEP_S / np.maximum(mtt, 1e-3)).astype(np.float32)
    scale = (RHO / K_H * flow_per_s).astype(np.float32)
    frame_steps = np.round(np.asarray(frame_times_s) / FINE_STEP_S).astype(int)
    steps = int(frame_steps[-1]) + 1
    delay_steps = np.round(np.asarray(delay_s, np.float64) / FINE_STEP_S).astype(int)
    # aif_table[i] = AIF at time (i - steps) * h, so index step - delay_steps + steps is never negative.
    aif_table = (FINE_STEP_S * bolus((np.arange(2 * steps) - steps) * FINE_STEP_S)).astype(np.float32)
    index = steps - np.clip(delay_steps, 0, steps)
    out = np.zeros((len(frame_steps), cbf.size), np.float32)
    state = np.zeros(cbf.size, np.float32)
    frame = 0
    for step in range(steps):
        state *= decay
        state += aif_table[index + step]
        while frame < len(frame_steps) and frame_steps[frame] <= step:
            out[frame] = scale * state
            frame += 1
    return out
