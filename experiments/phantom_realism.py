"""Phantom realism over seeds: is the phantom ISLES-2018-like for its population, or only for one seed?

For each (size, seed) it generates `--num_cases` TRAINING cases with the phantom generator, measures them with
the phantom report (lesion volumes; the perfusion-threshold baseline on the delivered vendor maps) and prints,
per seed: median lesion volume with its IQR, threshold Dice and |dV| over lesion cases, false-positive volume
over lesion-free cases (means with percentile-bootstrap 95 % intervals over cases), and whether the seed meets
the realism bands; then the spread of each figure across seeds. Lesion and lesion-free cases are kept apart.

The cases come from the phantom (isles_pipeline.phantom) and their vendor maps from the perfusion engine
(isles_pipeline.perfusion), so the table records a content hash of both packages: numbers measured under other
code are not comparable.

    python -m experiments.phantom_realism -size 128 -seeds 1 2 3 4 5 -num_cases 40 -np 2
    python -m experiments.phantom_realism -size 256 -seeds 1 2 -num_cases 40 -np 2

Per-seed measurements are cached in -work_dir (keyed by that hash), so a rerun only measures what is missing.
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import isles_pipeline
from isles_pipeline.evaluation.statistics import bootstrap_mean_ci
from isles_pipeline.files import atomic_write_json, read_json
from isles_pipeline.phantom.generator import generate_phantom
from isles_pipeline.phantom.report import phantom_report

# Bands every seed's cases must meet (published ISLES 2018: median 15.2 ml, IQR 5.7 to 45; threshold Dice 0.30,
# |dV| 15.3 ml; Hakim et al., Stroke 2021).
BANDS = {"median_lesion_ml": (10.0, 25.0), "lesion_iqr_ml": (20.0, float("inf")),
         "threshold_dice": (0.20, 0.40), "threshold_abs_volume_diff_ml": (8.0, 25.0)}
FIGURES = ("median_lesion_ml", "lesion_iqr_ml", "threshold_dice", "threshold_abs_volume_diff_ml",
           "false_positive_ml_lesion_free")


def engine_version() -> str:
    """sha256 (12 hex) over the perfusion engine's and the phantom's source files, and the checkout's commit when
    known."""
    package = Path(isles_pipeline.__file__).parent
    digest = hashlib.sha256()
    for path in sorted([*(package / "perfusion").rglob("*.py"), *(package / "phantom").rglob("*.py")]):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    try:
        commit = subprocess.run(["git", "-C", str(package), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(package), "status", "--porcelain", "--", "."], capture_output=True,
                               text=True, check=True).stdout.strip()
        commit += "+dirty" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return f"perfusion + phantom sha256 {digest.hexdigest()[:12]} (commit {commit})"


def measure_seed(size: int, seed: int, num_cases: int, work_dir: Path, num_processes: int, engine: str,
                 keep: bool) -> list[dict]:
    """Per-case measurements of one seed's phantom (cached in work_dir for this engine and case count)."""
    cache = work_dir / f"size{size}_seed{seed}_n{num_cases}.json"
    if cache.is_file():
        cached = read_json(cache)
        if cached["engine"] == engine:
            return cached["cases"]
    folder = work_dir / f"size{size}_seed{seed}" / "TRAINING"
    if folder.exists():
        shutil.rmtree(folder)
    start = time.time()
    generate_phantom(folder, num_cases=num_cases, seed=seed, size=size, num_processes=num_processes)
    cases = phantom_report(folder, own_maps=False, num_processes=num_processes)["cases"]
    atomic_write_json(cache, {"engine": engine, "size": size, "seed": seed, "seconds": time.time() - start,
                              "cases": cases})
    if not keep:
        shutil.rmtree(folder.parent)
    return cases


def _median_ci(values: np.ndarray, n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap 95 % interval of a median (resampling cases)."""
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(values, size=(n_resamples, values.size), replace=True), axis=1)
    return float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))


def seed_row(cases: list[dict]) -> dict:
    """The realism figures of one seed; lesion cases and lesion-free cases apart."""
    lesion = [c for c in cases if c["lesion_ml"] > 0]
    free = [c for c in cases if c["lesion_ml"] == 0]
    volumes = np.array([c["lesion_ml"] for c in lesion], float)
    row = {"cases": len(cases), "lesion_cases": len(lesion), "lesion_free_cases": len(free)}
    if volumes.size:
        q25, q50, q75 = np.percentile(volumes, [25, 50, 75])
        row.update(median_lesion_ml=float(q50), lesion_q25_ml=float(q25), lesion_q75_ml=float(q75),
                   lesion_iqr_ml=float(q75 - q25), median_lesion_ci=_median_ci(volumes))
    for key, source, group in (("threshold_dice", "threshold_dice", lesion),
                               ("threshold_abs_volume_diff_ml", "threshold_abs_volume_diff_ml", lesion),
                               ("false_positive_ml_lesion_free", "threshold_volume_ml", free)):
        summary = bootstrap_mean_ci([c[source] for c in group])
        row[key] = summary["mean"]
        row[f"{key}_ci"] = (summary["ci_low"], summary["ci_high"])
    row["fails"] = [name for name, (low, high) in BANDS.items()
                    if row.get(name) is None or not low <= row[name] <= high]
    return row


def spread(rows: dict[int, dict]) -> dict:
    """Across seeds: min, max, mean and SD of each figure (a seed is one draw of the population)."""
    result = {}
    for key in FIGURES:
        values = np.array([r[key] for r in rows.values() if r.get(key) is not None], float)
        if values.size:
            result[key] = {"min": float(values.min()), "max": float(values.max()), "mean": float(values.mean()),
                           "sd": float(values.std(ddof=1)) if values.size > 1 else 0.0}
    return result


def _ci(row: dict, key: str, digits: int) -> str:
    low, high = row.get(f"{key}_ci", (None, None))
    value = row.get(key)
    if value is None:
        return "-"
    interval = f" [{low:.{digits}f}, {high:.{digits}f}]" if low is not None else ""
    return f"{value:.{digits}f}{interval}"


def format_table(size: int, rows: dict, engine: str) -> str:
    lines = [f"Phantom realism at {size} x {size}; engine: {engine}",
             "| seed | cases (lesion / free) | median lesion ml [95% CI] | IQR ml (q25-q75) | threshold Dice, "
             "lesion cases | abs dV ml, lesion cases | FP ml, lesion-free | outside bands |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for seed, r in rows.items():
        if seed == "pooled":
            lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        median = "-"
        if r.get("median_lesion_ml") is not None:
            low, high = r["median_lesion_ci"]
            median = f"{r['median_lesion_ml']:.1f} [{low:.1f}, {high:.1f}]"
        iqr = f"{r['lesion_iqr_ml']:.1f} ({r['lesion_q25_ml']:.1f}-{r['lesion_q75_ml']:.1f})" \
            if r.get("lesion_iqr_ml") is not None else "-"
        lines.append(f"| {seed} | {r['cases']} ({r['lesion_cases']} / {r['lesion_free_cases']}) | {median} | {iqr} | "
                     f"{_ci(r, 'threshold_dice', 3)} | {_ci(r, 'threshold_abs_volume_diff_ml', 1)} | "
                     f"{_ci(r, 'false_positive_ml_lesion_free', 1)} | {', '.join(r['fails']) or 'none'} |")
    seeds = {seed: r for seed, r in rows.items() if seed != "pooled"}
    lines.append("")
    lines.append("Spread across seeds (min / max / mean / SD):")
    for key, s in spread(seeds).items():
        lines.append(f"- {key}: {s['min']:.3f} / {s['max']:.3f} / {s['mean']:.3f} / {s['sd']:.3f}")
    bands = ", ".join(f"{k} {lo:g}-{hi:g}" for k, (lo, hi) in BANDS.items())
    lines.append(f"Bands: {bands}; seeds meeting all: {sum(not r['fails'] for r in seeds.values())} of {len(seeds)}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-size", type=int, default=128)
    parser.add_argument("-seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("-num_cases", type=int, default=40)
    parser.add_argument("-work_dir", type=Path, default=Path("phantom_realism_work"))
    parser.add_argument("-np", dest="num_processes", type=int, default=1)
    parser.add_argument("--keep_cases", action="store_true", help="keep the generated case folders")
    parser.add_argument("-o", dest="output", type=Path, help="write the per-seed rows and spread as JSON")
    args = parser.parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    engine = engine_version()
    rows, every_case = {}, []
    for seed in args.seeds:
        cases = measure_seed(args.size, seed, args.num_cases, args.work_dir, args.num_processes, engine,
                             args.keep_cases)
        rows[seed] = seed_row(cases)
        every_case += cases
        print(f"seed {seed}: {rows[seed]['lesion_cases']} lesion cases measured", file=sys.stderr)
    pooled = seed_row(every_case)  # the population: every seed's cases together (intervals ignore the seeds)
    print(format_table(args.size, {**rows, "pooled": pooled}, engine))
    if args.output:
        bands = {k: [low, high if np.isfinite(high) else None] for k, (low, high) in BANDS.items()}
        atomic_write_json(args.output, {"size": args.size, "num_cases": args.num_cases, "engine": engine,
                                        "bands": bands, "seeds": rows, "pooled": pooled, "spread": spread(rows)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
