"""The block-phantom table: every method on the same noisy copies of the Kudo-design phantom, per noise level.

    python -m experiments.kudo_validation [--noise 0 5 10 20] [--seeds 1 2] [-o rows.json]

Metrics per map (Kudo et al. 2013 graded packages on per-block means): Pearson r of the block means against
the true values; the median relative error of the block means (signed; Tmax, whose truth is often 0 s, as the
median absolute error in s; CBF also per residue shape, since truncated SVD reads an exponential residue low
and a box residue high, and pooled the two can cancel); the relative CBF of the lowest blocks (true CBF <= 5
ml/100g/min, i.e. rCBF <= 0.08 against the normal tissue around them), small and large; delay sensitivity:
the median and the worst ratio of a block's CBF at 5 s delay to the same block's at 0 s. Large blocks are read
2 px inside their edges (an ROI inside a tile), small blocks whole (what smoothing does to them is the point).
Methods: `engine` (compute_maps as shipped), `engine_bilateral` (the profile bilateral filter without the
Gaussian after it: `smoothing_mm=0`, the command's `-smoothing_mm 0`), `engine_raw` (denoise=False), `plain`
(fixed-threshold bcSVD on
the artery's own curve, `experiments.plain_svd`).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from experiments.kudo_phantom import DELAY_LEVELS, NORMAL, RESIDUES, KudoPhantom, block_region, build_phantom
from experiments.plain_svd import plain_maps
from isles_pipeline.files import atomic_write_json
from isles_pipeline.perfusion import compute_maps
from isles_pipeline.perfusion.compute import DEFAULT_SMOOTHING_MM

MAPS = ("cbf", "cbv", "mtt", "tmax")
METHODS = ("engine", "engine_bilateral", "engine_raw", "plain")
LOW_CBF = 5.0
PLAIN_BASELINE_FRAMES = 6  # the phantom's bolus arrives at 8 s


def engine_settings(method: str) -> dict:
    """compute_maps' denoising settings of each engine row."""
    return {"denoise": method != "engine_raw", "smoothing_mm": 0.0 if method == "engine_bilateral" else
            DEFAULT_SMOOTHING_MM}


def method_maps(method: str, phantom: KudoPhantom, series: np.ndarray) -> tuple[dict, dict]:
    """(maps, extra): the maps of one method and what it reports (AIF peak, time)."""
    start = time.perf_counter()
    if method == "plain":
        aif_curve = series[:, phantom.artery].mean(axis=1)
        aif_curve = aif_curve - aif_curve[:PLAIN_BASELINE_FRAMES].mean()
        maps = plain_maps(series, float(phantom.frame_times_s[1] - phantom.frame_times_s[0]), aif_curve,
                          PLAIN_BASELINE_FRAMES)
        return maps, {"seconds": time.perf_counter() - start, "aif_peak_hu": float(aif_curve.max())}
    result = compute_maps(series, phantom.frame_times_s, phantom.spacing_zyx, device="cpu",
                          **engine_settings(method), name="kudo phantom")
    return result.maps, {"seconds": time.perf_counter() - start, "aif_peak_hu": float(result.arterial.aif.max()),
                         "aif_scale": float(result.arterial.scale)}


def block_means(maps: dict, phantom: KudoPhantom) -> dict[str, np.ndarray]:
    """Per block: the mean of each map inside the block's ROI."""
    means = {name: np.empty(len(phantom.blocks)) for name in MAPS}
    for index, block in enumerate(phantom.blocks):
        region = block_region(block, 2 if block["size"] == "large" else 0)
        for name in MAPS:
            means[name][index] = float(maps[name][region].mean())
    return means


def normal_cbf(maps: dict, phantom: KudoPhantom) -> np.ndarray:
    """Per section, the median estimated CBF of normal tissue at least 3 px from any block (the reference)."""
    from scipy import ndimage

    blocks = ndimage.binary_dilation(phantom.truth["block"] >= 0, np.ones((1, 7, 7), bool))
    normal = phantom.truth["brain"] & ~blocks
    return np.array([float(np.median(maps["cbf"][z][normal[z]])) for z in range(normal.shape[0])])


def score(maps: dict, phantom: KudoPhantom) -> dict:
    """The table's row for one method on one noisy copy."""
    means = block_means(maps, phantom)
    truth = {name: np.array([b["delay" if name == "tmax" else name] for b in phantom.blocks]) for name in MAPS}
    row = {}
    for name in MAPS:
        estimate, true = means[name], truth[name]
        row[f"{name}_r"] = float(np.corrcoef(estimate, true)[0, 1]) if estimate.std() > 0 else 0.0
        if name == "tmax":
            row["tmax_median_abs_error_s"] = float(np.median(np.abs(estimate - true)))
            row["tmax_median_error_s"] = float(np.median(estimate - true))
        else:
            row[f"{name}_median_rel_error"] = float(np.median((estimate - true) / true))
    for residue in RESIDUES:  # per shape: pooled, the two shapes' opposite biases can cancel
        chosen = np.array([b["residue"] == residue for b in phantom.blocks])
        if chosen.any():
            row[f"cbf_median_rel_error_{residue}"] = float(np.median(
                (means["cbf"][chosen] - truth["cbf"][chosen]) / truth["cbf"][chosen]))
    reference = normal_cbf(maps, phantom)
    for size in ("large", "small"):
        low = [i for i, b in enumerate(phantom.blocks) if b["size"] == size and b["cbf"] <= LOW_CBF]
        if low:
            relative = [means["cbf"][i] / max(reference[phantom.blocks[i]["section"]], 1e-6) for i in low]
            true_relative = [phantom.blocks[i]["cbf"] / NORMAL["cbf"] for i in low]
            row[f"low_rcbf_{size}"] = (float(np.mean(relative)), float(np.mean(true_relative)))
    pairs = {}
    for i, b in enumerate(phantom.blocks):
        key = (b["section"], b["mtt"])
        if b["delay"] in (DELAY_LEVELS[0], DELAY_LEVELS[-1]):
            pairs.setdefault(key, {})[b["delay"]] = means["cbf"][i]
    ratios = [p[DELAY_LEVELS[-1]] / p[DELAY_LEVELS[0]] for p in pairs.values() if p.get(DELAY_LEVELS[0], 0) > 1e-3]
    row["delay_ratio_median"] = float(np.median(ratios))
    row["delay_ratio_worst"] = float(max(ratios, key=lambda r: abs(np.log(max(r, 1e-6)))))
    return row


def run(noise_levels, seeds, methods=METHODS, phantom: KudoPhantom | None = None) -> list[dict]:
    phantom = build_phantom() if phantom is None else phantom
    rows = []
    for noise in noise_levels:
        for seed in (seeds if noise > 0 else seeds[:1]):  # noise 0: one copy is all copies
            series = phantom.noisy(noise, seed)
            for method in methods:
                maps, extra = method_maps(method, phantom, series)
                rows.append({"method": method, "noise_sd_hu": noise, "seed": seed, **extra, **score(maps, phantom)})
    return rows


def table(rows: list[dict]) -> str:
    """One markdown block per noise level, the mean over seeds."""
    lines = []
    for noise in sorted({r["noise_sd_hu"] for r in rows}):
        at = [r for r in rows if r["noise_sd_hu"] == noise]
        lines.append(f"noise SD {noise:g} HU ({len({r['seed'] for r in at})} noise seed(s))")
        lines.append("| method | CBF r | CBV r | MTT r | Tmax r | CBF rel.err | CBF rel.err exp. / box | CBV rel.err "
                     "| MTT rel.err | Tmax abs.err s | rCBF lowest large (true) | rCBF lowest small (true) "
                     "| CBF x at 5 s delay (worst) | s |")
        lines.append("|---|" + "---|" * 13)
        for method in dict.fromkeys(r["method"] for r in at):
            chosen = [r for r in at if r["method"] == method]

            def mean(key: str) -> float:
                return float(np.mean([r[key] for r in chosen]))

            def by_residue() -> str:
                keys = [f"cbf_median_rel_error_{residue}" for residue in RESIDUES]
                return " / ".join(f"{mean(key):+.2f}" if key in chosen[0] else "-" for key in keys)

            def pair(key: str) -> str:
                if key not in chosen[0]:
                    return "-"
                return f"{np.mean([r[key][0] for r in chosen]):.2f} ({chosen[0][key][1]:.2f})"

            lines.append(
                f"| {method} | {mean('cbf_r'):.3f} | {mean('cbv_r'):.3f} | {mean('mtt_r'):.3f} | {mean('tmax_r'):.3f} "
                f"| {mean('cbf_median_rel_error'):+.2f} | {by_residue()} | {mean('cbv_median_rel_error'):+.2f} "
                f"| {mean('mtt_median_rel_error'):+.2f} | {mean('tmax_median_abs_error_s'):.2f} "
                f"| {pair('low_rcbf_large')} | {pair('low_rcbf_small')} "
                f"| {mean('delay_ratio_median'):.2f} ({mean('delay_ratio_worst'):.2f}) | {mean('seconds'):.1f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 5.0, 10.0, 20.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("-o", dest="output", type=Path, default=None, help="JSON file for the rows")
    args = parser.parse_args(argv)
    rows = run(args.noise, args.seeds)
    print("Kudo-design block phantom (20 sections, 840 blocks, 144 x 144 px, 80 frames)")
    print(table(rows))
    if args.output:
        atomic_write_json(args.output, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
