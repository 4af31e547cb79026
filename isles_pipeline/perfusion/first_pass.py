"""The area of a bolus' first pass from a gamma-variate fit, for curves the scan cut short.

Why: the AIF's partial-volume correction compares the AIF's area with the venous outflow's (a first pass
conserves indicator mass). A scan that ends while the veins are still draining leaves the VOF's summed area
short, so the correction silently stops working. A first pass is well described by a gamma variate
(Thompson et al., Circ Res 1964; Madsen, Phys Med Biol 1992), whose area follows from its rise and peak;
fitting the samples from the arrival to where the curve has fallen to `FIT_END_FRACTION` of its peak (or to
the scan's end) also leaves recirculation out. Parameterised as in Madsen 1992 (peak height, peak time,
arrival, alpha), so the starting point and bounds come straight from the data.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

ARRIVAL_FRACTION = 0.1  # the bolus arrives at the last sample below this fraction of the peak before it
FIT_END_FRACTION = 0.3  # fit up to where the fall reaches this fraction of the peak (recirculation follows)
MIN_SAMPLES_AFTER_PEAK = 2  # with fewer, the fall (and so the area) is a guess: no fit
ALPHA_RANGE = (0.5, 12.0)


@dataclass(frozen=True)
class GammaVariate:
    """y(t) = peak * (s / rise)^alpha * exp(alpha * (1 - s / rise)), s = t - arrival > 0, rise = peak_time - arrival."""

    peak: float
    peak_time_s: float
    arrival_s: float
    alpha: float

    def __call__(self, t: np.ndarray) -> np.ndarray:
        return _model(np.asarray(t, float), self.peak, self.peak_time_s, self.arrival_s, self.alpha)

    @property
    def area(self) -> float:
        """Integral over all time: peak * rise * e^alpha * Gamma(alpha + 1) / alpha^(alpha + 1)."""
        rise = self.peak_time_s - self.arrival_s
        log_area = (np.log(self.peak * rise) + self.alpha + gammaln(self.alpha + 1)
                    - (self.alpha + 1) * np.log(self.alpha))
        return float(np.exp(log_area))


def _model(t, peak, peak_time, arrival, alpha):
    rise = max(peak_time - arrival, 1e-6)
    s = np.clip((t - arrival) / rise, 0.0, None)
    with np.errstate(divide="ignore"):
        log_shape = alpha * (np.log(np.where(s > 0, s, 1.0)) + 1.0 - s)
    return np.where(s > 0, peak * np.exp(log_shape), 0.0)


def fit_first_pass(curve: np.ndarray, step_s: float) -> GammaVariate | None:
    """The gamma variate of a baseline-subtracted curve's first pass on a uniform grid, or None when the curve
    does not show enough of one (peak in the last `MIN_SAMPLES_AFTER_PEAK` samples, too few rising samples, or
    a fit that does not converge)."""
    curve = np.asarray(curve, float)
    peak_index = int(np.argmax(curve))
    peak = float(curve[peak_index])
    if peak <= 0 or peak_index > len(curve) - 1 - MIN_SAMPLES_AFTER_PEAK:
        return None
    before = np.flatnonzero(curve[:peak_index] < ARRIVAL_FRACTION * peak)
    start = int(before[-1]) if before.size else 0
    after = np.flatnonzero(curve[peak_index:] < FIT_END_FRACTION * peak)
    end = peak_index + int(after[0]) + 1 if after.size else len(curve)
    if peak_index - start < 2:
        return None
    t = np.arange(len(curve)) * step_s
    t_fit, y_fit = t[start:end], curve[start:end]
    peak_time = t[peak_index]
    first_guess = (peak, peak_time, t[start], 3.0)
    lower = (0.5 * peak, peak_time - step_s, t[start] - 2 * step_s, ALPHA_RANGE[0])
    upper = (1.5 * peak, peak_time + step_s, peak_time - 1.5 * step_s, ALPHA_RANGE[1])  # arrival before the peak
    # imported here: scipy.optimize costs `isles_perfusion_maps` ~0.14 s of start-up, and only scans that end
    # during the venous washout are fitted
    from scipy.optimize import OptimizeWarning, curve_fit

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            params, _ = curve_fit(_model, t_fit, y_fit, p0=first_guess, bounds=(lower, upper), max_nfev=2000)
    except (RuntimeError, ValueError):
        return None
    fitted = GammaVariate(*map(float, params))
    return fitted if np.isfinite(fitted.area) and fitted.area > 0 else None
