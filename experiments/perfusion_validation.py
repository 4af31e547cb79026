"""Validation of `isles_pipeline.perfusion` against known truth, every method in the same run.

    python -m experiments.perfusion_validation [--kudo_noise 0 5 10 20] [--kudo_seeds 2 3] [--seeds 1 2 3]
        [-n 2] [-size 128] [--skip_kudo] [--skip_anatomical] [-o rows.json]
    python -m experiments.perfusion_validation --noise_table [-n 2] [-noise 10 15 25] [-i TRAINING]

By default: the Kudo-design block phantom's table (`experiments.kudo_validation`) and the anatomical
phantom's over several seeds (`experiments.anatomical_table`), each for the engine as shipped, the engine
without denoising and a plain fixed-threshold bcSVD. With --noise_table, the engine alone:

Simulates `-n` phantom cases (or reads `-i` an existing phantom TRAINING folder with its `phantom_truth`),
brings each case's 4D series to each total noise SD by adding the phantom's own spatially correlated noise
(levels below a case's own noise are skipped; level 0 is the case as simulated), computes the maps and compares
them with the true parameter maps: per tissue class (grey, white, penumbra, core: truth masks; grey and white
without lesion) the mean
estimate and the true mean over the voxels both call brain, the bias in %, Spearman's rho over all brain
voxels, and the Dice of the core rule rCBF < 30 % inside Tmax > 6 s against the true core (rCBF relative to
the median CBF where Tmax < 4 s), also for the same rule on the TRUE maps, the rule's own ceiling.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from isles_pipeline.evaluation.metrics import dice
from isles_pipeline.files import atomic_write_json, read_json
from isles_pipeline.imageio.nifti_io import read_array
from isles_pipeline.perfusion import compute_maps
from isles_pipeline.phantom.case import correlated_noise

MAPS = ("cbf", "cbv", "mtt", "tmax")
GREY, WHITE, DEEP_GREY = 3, 4, 5


def core_rule(cbf: np.ndarray, tmax: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """rCBF < 30 % inside Tmax > 6 s; rCBF relative to the median CBF of normally perfused brain (Tmax < 4 s)."""
    normal = brain & (tmax < 4)
    reference = float(np.median(cbf[normal])) if normal.any() else float(np.median(cbf[brain]))
    return brain & (tmax > 6) & (cbf < 0.3 * reference)


def tissue_classes(truth: dict) -> dict[str, np.ndarray]:
    core = truth["core"] > 0
    penumbra = (truth["penumbra"] > 0) & ~core
    lesion = core | penumbra
    labels = truth["tissue_labels"]
    return {"grey": np.isin(labels, (GREY, DEEP_GREY)) & ~lesion, "white": (labels == WHITE) & ~lesion,
            "penumbra": penumbra, "core": core}


def compare(maps: dict, valid: np.ndarray, truth: dict) -> dict:
    brain = valid & (truth["brain"] > 0)
    row = {"brain_voxels": int(brain.sum())}
    for name in MAPS:
        estimate, true = maps[name], truth[name]
        row[f"{name}_rho"] = float(spearmanr(estimate[brain], true[brain])[0])
        for tissue, mask in tissue_classes(truth).items():
            inside = mask & brain
            if inside.sum() < 10:
                continue
            mean_est, mean_true = float(estimate[inside].mean()), float(true[inside].mean())
            row[f"{name}_{tissue}"] = (mean_est, mean_true)
    true_core = truth["core"] > 0
    row["core_dice"] = dice(true_core & brain, core_rule(maps["cbf"], maps["tmax"], brain))
    row["core_dice_true_maps"] = dice(true_core & brain, core_rule(truth["cbf"], truth["tmax"], brain))
    row["true_core_voxels"] = int((true_core & brain).sum())
    return row


def evaluate_case(case_dir: Path, truth_dir: Path, noise_levels, method: str, vof_correction: bool,
                  seed: int = 0) -> list[dict]:
    series_path = next(case_dir.glob("*CT_4DPWI*/*.nii"))
    series, image = read_array(series_path)
    series = series.astype(np.float32)
    spacing = image.GetSpacing()
    truth = {name: read_array(truth_dir / f"{name}.nii.gz")[0]
             for name in MAPS + ("brain", "core", "penumbra", "tissue_labels")}
    own_noise = float(read_json(truth_dir / "truth.json")["noise_sd_hu"])
    head = series[0] > -20  # the phantom's background (-23 HU) gets no added noise
    rows = []
    rng = np.random.default_rng(seed)
    for level in noise_levels:
        if 0 < level < own_noise:
            continue  # level 0: the case as simulated
        extra = float(np.sqrt(max(level**2 - own_noise**2, 0.0)))
        noisy = series + (extra * correlated_noise(rng, series.shape) * head[None] if extra > 0 else 0)
        result = compute_maps(noisy, np.arange(series.shape[0]) * spacing[3], spacing[2::-1], method=method,
                              vof_correction=vof_correction, name=series_path.name)
        row = compare(result.maps, result.masks.valid, truth)
        row.update(case=case_dir.name, noise_sd_hu=level, aif_scale=result.arterial.scale)
        rows.append(row)
    return rows


def summarise(rows: list[dict], noise_levels) -> str:
    """The results table (documentation/results/perfusion-validation.md): one block per noise level, mean over cases."""
    lines = []
    for level in noise_levels:
        chosen = [r for r in rows if r["noise_sd_hu"] == level]
        if not chosen:
            continue
        lines.append(f"noise SD {level:g} HU ({len(chosen)} cases; AIF scale "
                     f"{np.mean([r['aif_scale'] for r in chosen]):.2f}; "
                     f"core Dice {np.mean([r['core_dice'] for r in chosen]):.2f}, "
                     f"same rule on the true maps {np.mean([r['core_dice_true_maps'] for r in chosen]):.2f})")
        lines.append("| map | grey est/true (bias) | white | penumbra | core | Spearman rho |")
        lines.append("|---|---|---|---|---|---|")
        for name in MAPS:
            cells = []
            for tissue in ("grey", "white", "penumbra", "core"):
                pairs = [r[f"{name}_{tissue}"] for r in chosen if f"{name}_{tissue}" in r]
                if not pairs:
                    cells.append("-")
                    continue
                est, true = np.mean([p[0] for p in pairs]), np.mean([p[1] for p in pairs])
                cells.append(f"{est:.2f}/{true:.2f} ({100 * (est - true) / max(abs(true), 1e-6):+.0f} %)")
            rho = np.mean([r[f"{name}_rho"] for r in chosen])
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {rho:.2f} |")
        lines.append("")
    return "\n".join(lines)


def noise_table(args) -> int:
    """The engine alone at several added noise levels on one phantom seed (the former table)."""
    with tempfile.TemporaryDirectory() as work:
        phantom = args.phantom
        if phantom is None:
            from isles_pipeline.phantom import generate_phantom

            phantom = Path(work) / "TRAINING"
            generate_phantom(phantom, num_cases=args.num_cases, seed=args.seed, size=args.size)
        rows = []
        cases = sorted((p for p in phantom.glob("case_*") if p.is_dir()), key=lambda p: int(p.name.split("_")[1]))
        if not cases:
            print(f"perfusion_validation: {phantom}: no phantom case folders (case_N) to validate on", file=sys.stderr)
            return 1
        for case in cases[: args.num_cases]:
            rows += evaluate_case(case, phantom / "phantom_truth" / case.name, args.noise, args.method,
                                  not args.no_vof_correction, args.seed)
    print(f"method {args.method}, VOF correction {'off' if args.no_vof_correction else 'on'}, "
          f"{len(cases[: args.num_cases])} phantom cases")
    print(summarise(rows, args.noise))
    if args.output:
        atomic_write_json(args.output, rows)
    return 0


def comparison(args) -> int:
    """The block phantom's table and the anatomical phantom's, every method in the same run."""
    from experiments import anatomical_table, kudo_validation

    output = {}
    if not args.skip_kudo:
        kudo_rows = kudo_validation.run(args.kudo_noise, args.kudo_seeds)
        print(f"Kudo-design block phantom (840 blocks; noise seeds {' '.join(map(str, args.kudo_seeds))})")
        print(kudo_validation.table(kudo_rows))
        output["kudo"] = kudo_rows
    if not args.skip_anatomical:
        rows = []
        with tempfile.TemporaryDirectory() as work:
            from isles_pipeline.phantom import generate_phantom

            for seed in args.seeds:
                folder = Path(work) / f"seed_{seed}" / "TRAINING"
                generate_phantom(folder, num_cases=args.num_cases, seed=seed, size=args.size)
                for case in sorted(p for p in folder.glob("case_*") if p.is_dir()):
                    rows += anatomical_table.case_rows(case, folder / "phantom_truth" / case.name)
        print(f"anatomical phantom: {args.num_cases} cases x seeds {' '.join(map(str, args.seeds))}, size {args.size}, "
              "noise as simulated; class means over grey, white, penumbra, core")
        print(anatomical_table.table(rows))
        print("per class (mean over cases of the class mean's relative error; Tmax in s):")
        print(anatomical_table.class_table(rows))
        output["anatomical"] = rows
    if args.output:
        atomic_write_json(args.output, output)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", dest="phantom", type=Path, default=None,
                        help="existing phantom TRAINING folder for --noise_table (default: simulate one)")
    parser.add_argument("-n", dest="num_cases", type=int, default=2, help="phantom cases per seed")
    parser.add_argument("-size", type=int, default=128)
    parser.add_argument("-seed", type=int, default=0, help="--noise_table's phantom seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="anatomical phantom seeds")
    parser.add_argument("--kudo_noise", type=float, nargs="+", default=[0.0, 5.0, 10.0, 20.0])
    parser.add_argument("--kudo_seeds", type=int, nargs="+", default=[2, 3],
                        help="noise seeds of the block phantom (seed 1 was used to choose the engine's settings)")
    parser.add_argument("--skip_kudo", action="store_true")
    parser.add_argument("--skip_anatomical", action="store_true")
    parser.add_argument("--noise_table", action="store_true",
                        help="instead: the engine alone at the -noise levels on one phantom seed")
    parser.add_argument("-noise", type=float, nargs="+", default=[10.0, 15.0, 25.0])
    parser.add_argument("-method", default="osvd")
    parser.add_argument("--no_vof_correction", action="store_true")
    parser.add_argument("-o", dest="output", type=Path, default=None, help="JSON file for the rows")
    args = parser.parse_args(argv)
    return noise_table(args) if args.noise_table or args.phantom is not None else comparison(args)


if __name__ == "__main__":
    raise SystemExit(main())
