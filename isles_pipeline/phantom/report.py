"""How realistic a generated phantom is, measured on the files themselves (documentation/results/
phantom-realism.md quotes these figures).

`phantom_report(folder)` reads a phantom folder (case files and `phantom_truth/`) and measures:
- lesion volumes (ml) of the DWI lesions, quantiles over cases that have one;
- the perfusion-threshold baseline (`evaluation.threshold_baseline`, rCBF < 30 % inside Tmax > 6 s on the
  delivered maps): Dice and |dV| (ml) over lesion cases, false-positive volume over lesion-free cases;
- per centre: the delivered maps' Spearman correlation with the true parameters inside the brain
  parenchyma, and the same for the project's own deconvolution of the written series
  (`isles_pipeline.perfusion.compute_maps`, oSVD) on the same voxels;
- per tissue: peak enhancement of grey and white matter (mean curve) and the frame noise (temporal SD over
  the pre-bolus frames, median over white-matter voxels).

Published references (Hakim et al., Stroke 2021, ISLES 2018): median infarct 15.2 ml (IQR 5.7 to 45);
threshold baseline Dice 0.30, |dV| 15.3 ml.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats

from isles_pipeline.evaluation.metrics import dice
from isles_pipeline.evaluation.threshold_baseline import threshold_core
from isles_pipeline.files import read_json
from isles_pipeline.imageio.nifti_io import read_array
from isles_pipeline.parallel import map_cases
from isles_pipeline.phantom.anatomy import GREY, WHITE

SPEARMAN_VOXELS = 20000
MAPS = ("cbf", "cbv", "mtt", "tmax")
DELIVERED = {"cbf": "CT_CBF", "cbv": "CT_CBV", "mtt": "CT_MTT", "tmax": "CT_Tmax"}
PUBLISHED = {"median_lesion_ml": 15.2, "lesion_iqr_ml": (5.7, 45.0), "threshold_dice": 0.30,
             "threshold_abs_volume_diff_ml": 15.3}


def _modality(case_dir: Path, modality: str) -> Path:
    found = sorted(case_dir.glob(f"SMIR.Brain.XX.O.{modality}.*/*.nii"))
    if not found:
        raise FileNotFoundError(f"{case_dir}: no {modality} file")
    return found[0]


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 10:
        return float("nan")
    if a.size > SPEARMAN_VOXELS:
        index = np.random.default_rng(0).choice(a.size, SPEARMAN_VOXELS, replace=False)
        a, b = a[index], b[index]
    return float(stats.spearmanr(a, b).statistic)


def _own_maps(series: np.ndarray, spacing_zyx) -> dict[str, np.ndarray] | None:
    from isles_pipeline.errors import CaseError
    from isles_pipeline.perfusion import compute_maps  # torch: only when asked for

    try:
        result = compute_maps(series, np.arange(series.shape[0], dtype=float), spacing_zyx, method="osvd",
                              device="cpu")
    except CaseError:
        return None
    return result.maps


def measure_case(folder: str, case_name: str, own_maps: bool) -> dict:
    """All per-case measurements (plain floats, JSON-ready)."""
    case_dir = Path(folder) / case_name
    truth_dir = Path(folder) / "phantom_truth" / case_name
    truth = read_json(truth_dir / "truth.json")
    lesion, image = read_array(truth_dir / "lesion_dwi.nii.gz")
    lesion = lesion.astype(bool)
    spacing = tuple(reversed(image.GetSpacing()[:3]))
    ml_per_voxel = float(np.prod(spacing)) / 1000.0
    labels = read_array(truth_dir / "tissue_labels.nii.gz")[0]
    brain = read_array(truth_dir / "brain.nii.gz")[0].astype(bool)
    delivered = {name: read_array(_modality(case_dir, DELIVERED[name]))[0].astype(np.float64) for name in MAPS}
    true_maps = {name: read_array(truth_dir / f"{name}.nii.gz")[0] for name in MAPS}
    series = read_array(_modality(case_dir, "CT_4DPWI"))[0]

    predicted = threshold_core(delivered["cbf"], delivered["tmax"])
    result = {
        "case": case_name,
        "centre": truth["centre"]["name"],
        "lesion_ml": float(lesion.sum() * ml_per_voxel),
        "threshold_dice": float(dice(lesion, predicted)),
        "threshold_abs_volume_diff_ml": float(abs(int(predicted.sum()) - int(lesion.sum())) * ml_per_voxel),
        "threshold_volume_ml": float(predicted.sum() * ml_per_voxel),
    }
    valid = brain & (delivered["cbf"] > 0)
    own = _own_maps(series, spacing) if own_maps else None
    if own is not None:
        valid &= own["cbf"] > 0
    for name in MAPS:
        result[f"delivered_{name}_spearman"] = _spearman(delivered[name][valid], true_maps[name][valid])
        if own is not None:
            result[f"own_{name}_spearman"] = _spearman(own[name][valid].astype(np.float64), true_maps[name][valid])

    first_rise = max(int(np.floor(truth["aif_arrival_s"])), 2)
    for tissue, label in (("grey", GREY), ("white", WHITE)):
        voxels = series[:, labels == label]
        if voxels.shape[1]:
            curve = voxels.mean(axis=1)
            result[f"{tissue}_enhancement_hu"] = float(curve.max() - curve[:first_rise].mean())
    white = series[:first_rise, labels == WHITE]
    result["noise_hu"] = float(np.median(white.std(axis=0, ddof=1))) if white.shape[1] else float("nan")
    return result


def _mean(values) -> float:
    values = [v for v in values if v == v]
    return float(np.mean(values)) if values else float("nan")


def _median(values) -> float:
    values = [v for v in values if v == v]
    return float(np.median(values)) if values else float("nan")


def summarise(cases: list[dict]) -> dict:
    lesion_cases = [c for c in cases if c["lesion_ml"] > 0]
    lesion_free = [c for c in cases if c["lesion_ml"] == 0]
    volumes = np.array([c["lesion_ml"] for c in lesion_cases]) if lesion_cases else np.zeros(1)
    summary = {
        "cases": len(cases),
        "lesion_cases": len(lesion_cases),
        "lesion_free_cases": len(lesion_free),
        "lesion_ml_quantiles": {q: float(np.percentile(volumes, int(q[1:]))) for q in ("q25", "q50", "q75")},
        "threshold_dice_lesion_cases": _mean(c["threshold_dice"] for c in lesion_cases),
        "threshold_abs_volume_diff_ml_lesion_cases": _mean(c["threshold_abs_volume_diff_ml"] for c in lesion_cases),
        "threshold_false_positive_ml_lesion_free": _mean(c["threshold_volume_ml"] for c in lesion_free),
        "published": PUBLISHED,
        "centres": {},
    }
    for centre in sorted({c["centre"] for c in cases}):
        members = [c for c in cases if c["centre"] == centre]
        with_lesion = [c for c in members if c["lesion_ml"] > 0]
        row = {"cases": len(members), "threshold_dice_lesion_cases": _mean(c["threshold_dice"] for c in with_lesion)}
        for source in ("delivered", "own"):
            for name in MAPS:
                key = f"{source}_{name}_spearman"
                if any(key in c for c in members):
                    row[key] = _median(c.get(key, float("nan")) for c in members)
        for key in ("grey_enhancement_hu", "white_enhancement_hu", "noise_hu"):
            row[key] = _median(c.get(key, float("nan")) for c in members)
        summary["centres"][centre] = row
    for source in ("delivered", "own"):
        for name in MAPS:
            key = f"{source}_{name}_spearman"
            if any(key in c for c in cases):
                summary[f"median_{key}"] = _median(c.get(key, float("nan")) for c in cases)
    return summary


def phantom_report(folder, own_maps: bool = True, num_processes: int = 1) -> dict:
    """Measure a generated phantom folder; returns {"summary": ..., "cases": [...]}."""
    folder = Path(folder)
    if not (folder / "phantom_truth").is_dir():
        raise FileNotFoundError(f"{folder}: no phantom_truth folder (not a generated phantom)")
    names = sorted((p.name for p in folder.glob("case_*") if p.is_dir()), key=lambda n: int(n.split("_")[1]))
    if not names:
        raise FileNotFoundError(f"{folder}: no case_N folders")
    jobs = [(name, (str(folder), name, own_maps)) for name in names]
    cases, failures = [], []
    for name, result, error in map_cases(measure_case, jobs, num_processes, desc="phantom report", progress=False):
        (failures if error else cases).append(error or result)
    if failures:
        raise RuntimeError("phantom report failed: " + "; ".join(failures))
    cases.sort(key=lambda c: int(c["case"].split("_")[1]))
    return {"summary": summarise(cases), "cases": cases}


def format_report(report: dict) -> str:
    """The report as a plain-text table."""
    s = report["summary"]
    q = s["lesion_ml_quantiles"]
    p = s["published"]
    lines = [
        f"cases {s['cases']} (with a lesion {s['lesion_cases']}, lesion-free {s['lesion_free_cases']})",
        f"lesion volume ml, quantiles 25/50/75: {q['q25']:.1f} / {q['q50']:.1f} / {q['q75']:.1f}"
        f"   (ISLES 2018: {p['lesion_iqr_ml'][0]} / {p['median_lesion_ml']} / {p['lesion_iqr_ml'][1]})",
        f"threshold baseline over lesion cases: Dice {s['threshold_dice_lesion_cases']:.3f}, |dV| "
        f"{s['threshold_abs_volume_diff_ml_lesion_cases']:.1f} ml   (ISLES 2018: Dice {p['threshold_dice']}, "
        f"|dV| {p['threshold_abs_volume_diff_ml']} ml)",
        f"threshold baseline over lesion-free cases: false-positive volume "
        f"{s['threshold_false_positive_ml_lesion_free']:.1f} ml",
        "",
        "Spearman with the truth in brain parenchyma (median over cases): delivered maps | own oSVD of the series",
    ]
    header = "centre  n   CBF          CBV          MTT          Tmax         thr.Dice  GM enh.  WM enh.  noise"
    lines.append(header)
    for centre, row in s["centres"].items():
        cells = []
        for name in MAPS:
            own = row.get(f"own_{name}_spearman", float("nan"))
            cells.append(f"{row[f'delivered_{name}_spearman']:.2f} | {own:.2f}")
        lines.append(f"{centre:<7} {row['cases']:<3} " + "  ".join(f"{c:<11}" for c in cells)
                     + f"  {row['threshold_dice_lesion_cases']:<8.3f}  {row['grey_enhancement_hu']:<7.1f}"
                     + f"  {row['white_enhancement_hu']:<7.1f}  {row['noise_hu']:.1f}")
    cells = []
    for name in MAPS:
        own = s.get(f"median_own_{name}_spearman", float("nan"))
        cells.append(f"{s[f'median_delivered_{name}_spearman']:.2f} | {own:.2f}")
    lines.append(f"{'all':<7} {s['cases']:<3} " + "  ".join(f"{c:<11}" for c in cells))
    lines.append("(enhancement: peak of the mean tissue curve over its pre-bolus level, HU; noise: temporal SD of "
                 "pre-bolus frames in white matter, HU)")
    return "\n".join(lines)
