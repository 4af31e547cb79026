"""How a simulated vendor's settings move the threshold baseline on its centre's cases (the phantom's calibration
of centres C and D's smoothing).

For each value of one `centres.Vendor` field, every lesion case of the chosen centre among the first -num_cases
TRAINING cases of each seed is simulated in memory with that value (nothing else changes: the series are the
same), and the perfusion-threshold baseline (rCBF < 30 % inside Tmax > 6 s) on the vendor's maps is scored
against the DWI lesion. Also printed: the same rule with the true CBF or the true Tmax in place of the vendor's,
which says which map limits it, and the median rCBF the vendor reads inside the lesion (truth beside it).

    python -m experiments.centre_smoothing -centre D -field smoothing_mm -values 2.5 4 5 -seeds 1 2 3 4 5
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
from multiprocessing import Pool

import numpy as np

from isles_pipeline.evaluation.metrics import dice
from isles_pipeline.evaluation.threshold_baseline import threshold_core
from isles_pipeline.phantom.case import simulate_slab
from isles_pipeline.phantom.centres import centre_by_name
from isles_pipeline.phantom.generator import CaseSpec, plan_cases


def _relative_cbf(cbf: np.ndarray, tmax: np.ndarray, lesion: np.ndarray) -> float:
    reference = cbf[(cbf > 0) & (tmax <= 6.0)]
    return float(np.median(cbf[lesion]) / reference.mean()) if reference.size else float("nan")


def score_case(job: tuple[CaseSpec, str, object, int]) -> dict | None:
    """The threshold rule's Dice on one case with the vendor's `field` set to `value`; None if lesion-free."""
    spec, field, value, size = job
    centre = spec.patient.centre
    if value is not None:
        centre = dataclasses.replace(centre, vendor=dataclasses.replace(centre.vendor, **{field: value}))
    case = simulate_slab(np.random.default_rng(list(spec.seed)), dataclasses.replace(spec.patient, centre=centre),
                         spec.slab_index, size)
    lesion = case["ot"] > 0
    if not lesion.any():
        return None
    cbf, tmax = case["maps"]["CT_CBF"].astype(float), case["maps"]["CT_Tmax"]
    true_cbf, true_tmax = case["truth_maps"]["cbf"] * (cbf > 0), case["truth_maps"]["tmax"]
    return {"dice": dice(lesion, threshold_core(cbf, tmax)),
            "dice_true_cbf": dice(lesion, threshold_core(true_cbf, tmax)),
            "dice_true_tmax": dice(lesion, threshold_core(cbf, true_tmax)),
            "rcbf_in_lesion": _relative_cbf(cbf, tmax, lesion),
            "true_rcbf_in_lesion": _relative_cbf(true_cbf, true_tmax, lesion)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-centre", required=True, choices=["A", "B", "C", "D"])
    parser.add_argument("-field", default="smoothing_mm", help="a centres.Vendor field")
    parser.add_argument("-values", type=float, nargs="+", required=True)
    parser.add_argument("-seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("-num_cases", type=int, default=40)
    parser.add_argument("-size", type=int, default=128)
    parser.add_argument("-np", dest="num_processes", type=int, default=2)
    args = parser.parse_args(argv)
    specs = [spec for seed in args.seeds for spec in plan_cases(args.num_cases, "TRAINING", seed, args.size, False)
             if spec.patient.centre.name == args.centre]
    current = getattr(centre_by_name(args.centre).vendor, args.field)
    print(f"centre {args.centre}, {args.field} (as shipped: {current}); seeds {args.seeds}, "
          f"{args.num_cases} cases each at {args.size} x {args.size}")
    print("value | lesion cases | threshold Dice | with true CBF | with true Tmax | rCBF in lesion (truth)")
    pool = Pool(args.num_processes) if args.num_processes > 1 else None
    with pool or contextlib.nullcontext():
        for value in args.values:
            jobs = [(spec, args.field, value, args.size) for spec in specs]
            rows = [r for r in (pool.map(score_case, jobs) if pool else map(score_case, jobs)) if r]
            if not rows:
                print(f"{value:g} | 0 | - | - | - | -")
                continue
            mean = {key: float(np.nanmean([r[key] for r in rows])) for key in rows[0]}
            print(f"{value:g} | {len(rows)} | {mean['dice']:.3f} | {mean['dice_true_cbf']:.3f} | "
                  f"{mean['dice_true_tmax']:.3f} | {np.nanmedian([r['rcbf_in_lesion'] for r in rows]):.2f} "
                  f"({np.nanmedian([r['true_rcbf_in_lesion'] for r in rows]):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
