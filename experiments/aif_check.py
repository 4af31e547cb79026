"""How often the automatic AIF is not an artery, on phantom folders written by `isles_generate_phantom`.

    python -m experiments.aif_check PHANTOM_FOLDER [PHANTOM_FOLDER ...] [-cut_after_peak_s S]
        [-cut_after_venous_peak_s S] [-o rows.json]

A case's AIF is wrong when the peak of the AIF the deconvolution used (after the VOF rescaling) is outside
+-30 % of the simulated arterial peak (the largest sample of `aif` in `phantom_truth/case_N/truth.json`, the
curve the phantom put in its arteries before partial volume). Prints one line per wrong case and the count,
and how many of the wrong or right ones the engine flagged as implausible (`quality.plausible` false).
-cut_after_peak_s S makes every case a truncated scan: only the frames up to S seconds after the simulated
arterial peak are kept (the phantom's own cases are rarely truncated), so the count covers truncation too;
-cut_after_venous_peak_s S cuts S seconds after the simulated venous outflow's peak instead (a scan that ends
during the venous washout, the common clinical truncation).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from isles_pipeline.files import atomic_write_json, read_json

TOLERANCE = 0.3


def check_case(case_dir: Path, truth_dir: Path, cut_after_peak_s: float | None = None,
               cut_after: str = "aif") -> dict:
    from isles_pipeline.perfusion import compute_maps
    from isles_pipeline.perfusion.io import read_series

    series_path = next(case_dir.glob("*CT_4DPWI*/*.nii"))
    series, image, times = read_series(series_path)
    truth = read_json(truth_dir / "truth.json")
    true_peak = float(max(truth["aif"]))
    truncated = bool(truth.get("truncated"))
    if cut_after_peak_s is not None:  # the simulated curves are sampled at the protocol's frame times
        frame_times = np.asarray(truth["frame_times_s"], float)
        peak_s = float(frame_times[int(np.argmax(truth[cut_after]))] - frame_times[0])
        keep = times <= times[0] + peak_s + cut_after_peak_s
        series, times, truncated = series[keep], times[keep], True
    result = compute_maps(series, times, image.GetSpacing()[2::-1], device="cpu", name=str(series_path))
    arterial = result.arterial
    used_peak = float(arterial.scaled_aif.max())
    quality = getattr(arterial, "quality", None) or {}
    return {"case": f"{case_dir.parent.name}/{case_dir.name}", "true_peak_hu": true_peak, "used_peak_hu": used_peak,
            "scale": float(arterial.scale), "ratio": used_peak / true_peak,
            "wrong": bool(abs(used_peak / true_peak - 1) > TOLERANCE),
            "flagged": quality.get("plausible") is False, "motion": truth.get("motion") is not None,
            "truncated": truncated, "frames": int(len(times)), "vof_area": quality.get("vof_area")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("-cut_after_peak_s", type=float, default=None,
                        help="keep only the frames up to this many seconds after the simulated arterial peak")
    parser.add_argument("-cut_after_venous_peak_s", type=float, default=None,
                        help="keep only the frames up to this many seconds after the simulated venous peak")
    parser.add_argument("-o", dest="output", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.cut_after_peak_s is not None and args.cut_after_venous_peak_s is not None:
        parser.error("give -cut_after_peak_s or -cut_after_venous_peak_s, not both")
    cut_s, cut_after = ((args.cut_after_venous_peak_s, "vof") if args.cut_after_venous_peak_s is not None
                        else (args.cut_after_peak_s, "aif"))
    rows = []
    for folder in args.folders:
        cases = sorted((p for p in folder.glob("case_*") if p.is_dir()), key=lambda p: int(p.name.split("_")[1]))
        for case in cases:
            row = check_case(case, folder / "phantom_truth" / case.name, cut_s, cut_after)
            rows.append(row)
            if row["wrong"] or row["flagged"]:
                print(f"{row['case']}: AIF peak {row['used_peak_hu']:.0f} HU (scale {row['scale']:.2f}) against "
                      f"{row['true_peak_hu']:.0f} HU true, VOF area {row['vof_area']}"
                      f"{' WRONG' if row['wrong'] else ''}"
                      f"{', flagged' if row['flagged'] else ''}{', motion' if row['motion'] else ''}", flush=True)
    wrong = sum(r["wrong"] for r in rows)
    print(f"{wrong} wrong AIFs of {len(rows)} cases (peak outside +-{100 * TOLERANCE:.0f} % of the simulated "
          f"arterial peak); flagged: {sum(r['flagged'] and r['wrong'] for r in rows)} of the wrong, "
          f"{sum(r['flagged'] and not r['wrong'] for r in rows)} of the right; median ratio "
          f"{np.median([r['ratio'] for r in rows]):.2f}; {sum(r['truncated'] for r in rows)} truncated scans, "
          f"{sum(r['wrong'] for r in rows if r['truncated'])} of them wrong")
    if args.output:
        atomic_write_json(args.output, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
