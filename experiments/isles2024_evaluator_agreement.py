"""Does `isles_evaluate --isles2024` score like the ISLES 2024 challenge's own evaluator?

Generates mask pairs chosen to exercise the evaluator's rules (empty masks; a sweep of single-lesion overlaps
across both matching thresholds; multi-lesion cases; lesions that touch by a face, an edge or only a corner;
one-voxel lesions; split and merged lesions; tied overlaps; irregular many-lesion masks; and, with
-phantom_cases N, the phantom's DWI lesions against the perfusion-threshold baseline's predictions), scores them with
isles_pipeline.evaluation.isles2024_metrics, and with the official functions (ezequieldlrosa/isles24
`utils/eval_utils.py`, run with panoptica in its own environment through experiments/isles2024_official_driver.py),
then prints, per kind of pair, how many agree on lesion F1, lesion-count difference, Dice and volume difference,
and every pair that does not.

    python -m experiments.isles2024_evaluator_agreement -panoptica_python .venv-panoptica/bin/python \
        -official_repo /path/to/isles24 [-first_release_repo /path/to/isles24-at-first-release]

With -first_release_repo (a checkout of the official repository at its first release), it also scores our
module at the first release's matching threshold against that release, and lists the pairs the official code
itself scores differently between the two releases. Two pairs outside the challenge's inputs (a 2D mask, a mask
with labels 1 and 2) are scored too and reported apart: they show conventions that binary 3D masks never meet.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from isles_pipeline.evaluation.isles2024_metrics import FIRST_RELEASE_MATCH_IOU, MATCH_IOU, isles2024_case_metrics

DRIVER = Path(__file__).with_name("isles2024_official_driver.py")
SHAPE = (10, 40, 40)
SPACINGS = ((5.0, 1.0, 1.0), (2.0, 0.9, 0.9), (1.0, 1.0, 1.0), (3.5, 0.45, 0.45))
KEYS = ("lesion_f1", "lesion_count_diff", "dice", "abs_volume_diff_ml")
OURS = {"lesion_f1": "isles24_lesion_f1", "lesion_count_diff": "isles24_lesion_count_diff",
        "dice": "isles24_dice", "abs_volume_diff_ml": "isles24_abs_volume_diff_ml"}


def _empty(shape=SHAPE) -> np.ndarray:
    return np.zeros(shape, np.uint8)


def _box(mask: np.ndarray, z: tuple, y: tuple, x: tuple, value: int = 1) -> np.ndarray:
    mask[z[0]:z[1], y[0]:y[1], x[0]:x[1]] = value
    return mask


def _ellipsoids(rng, count: int, shape=SHAPE) -> list[tuple[np.ndarray, np.ndarray]]:
    """(centre, radii) in voxels of `count` random ellipsoids."""
    return [(rng.uniform((1, 5, 5), np.array(shape) - (1, 5, 5)), rng.uniform((0.8, 1.5, 1.5), (2.5, 6.0, 6.0)))
            for _ in range(count)]


def _paint(blobs, shape=SHAPE) -> np.ndarray:
    grid = np.indices(shape).astype(float)
    mask = np.zeros(shape, bool)
    for centre, radii in blobs:
        mask |= sum(((grid[a] - centre[a]) / radii[a]) ** 2 for a in range(3)) <= 1.0
    return mask.astype(np.uint8)


def _line(start: int, stop: int, row: int = 5) -> np.ndarray:
    return _box(_empty(), (4, 5), (row, row + 1), (start, stop))


def make_pairs(seed: int = 0) -> list[dict]:
    """The 3D pairs (kind, name, reference, prediction, spacing) and two pairs outside the challenge's inputs."""
    rng = np.random.default_rng(seed)
    pairs = []

    def add(kind, name, reference, prediction, spacing=None):
        spacing = spacing or SPACINGS[len(pairs) % len(SPACINGS)]
        pairs.append({"kind": kind, "name": name, "reference": reference, "prediction": prediction,
                      "spacing": spacing})

    one = _box(_empty(), (3, 6), (10, 18), (10, 18))
    three = _paint(_ellipsoids(np.random.default_rng(99), 3))
    add("empty", "both empty", _empty(), _empty())
    add("empty", "both empty, other spacing", _empty(), _empty())
    add("empty", "reference empty, one predicted lesion", _empty(), one)
    add("empty", "reference empty, three predicted voxels", _empty(),
        _box(_box(_box(_empty(), (1, 2), (1, 2), (1, 2)), (5, 6), (20, 21), (20, 21)), (8, 9), (30, 31), (5, 6)))
    add("empty", "one lesion, prediction empty", one, _empty())
    add("empty", "three lesions, prediction empty", three, _empty())
    # single lesion, a line of 20 voxels: prediction a part of it, IoU = k / 20 exactly
    for k in (2, 3, 4, 5, 6, 8, 9, 10, 11, 14, 20):
        add("overlap sweep", f"IoU {k / 20:.2f} (line)", _line(10, 30), _line(10, 10 + k))
    for shift in (1, 2, 3, 4):  # a 3 x 6 x 6 box shifted along x: IoU (6 - s) / (6 + s)
        add("overlap sweep", f"IoU {(6 - shift) / (6 + shift):.3f} (shifted box)",
            _box(_empty(), (3, 6), (10, 16), (10, 16)), _box(_empty(), (3, 6), (10, 16), (10 + shift, 16 + shift)))
    for i in range(10):
        blobs = _ellipsoids(rng, int(rng.integers(2, 7)))
        predicted = [(c + rng.normal(0, 1.2, 3) * (0.5, 1, 1), r * rng.uniform(0.5, 1.3, 3))
                     for c, r in blobs if rng.random() > 0.25]
        predicted += _ellipsoids(rng, int(rng.integers(0, 3)))
        add("multi-lesion", f"random ellipsoids {i}", _paint(blobs), _paint(predicted))
    face = _box(_box(_empty(), (3, 6), (10, 14), (10, 14)), (3, 6), (10, 14), (14, 18))
    gap = _box(_box(_empty(), (3, 6), (10, 14), (10, 14)), (3, 6), (10, 14), (15, 19))
    edge = _box(_box(_empty(), (3, 6), (10, 14), (10, 14)), (3, 6), (14, 18), (14, 18))
    corner = _box(_box(_empty(), (2, 4), (10, 14), (10, 14)), (4, 6), (14, 18), (14, 18))
    add("touching", "face-touching pair against a one-voxel gap", face, gap)
    add("touching", "edge-touching pair, exact", edge, edge.copy())
    add("touching", "edge-touching pair, one box predicted", edge, _box(_empty(), (3, 6), (10, 14), (10, 14)))
    add("touching", "corner-touching (26-connected) pair, exact", corner, corner.copy())
    add("touching", "corner-touching pair, one box predicted", corner, _box(_empty(), (2, 4), (10, 14), (10, 14)))
    add("touching", "a prediction drawn as two touching parts (one lesion)", _box(_empty(), (3, 6), (10, 14), (10, 18)),
        _box(_box(_empty(), (3, 6), (10, 14), (10, 13)), (3, 6), (10, 14), (13, 18), value=1))
    voxel = _box(_empty(), (4, 5), (20, 21), (20, 21))
    add("tiny", "one voxel, hit", voxel, voxel.copy())
    add("tiny", "one voxel, neighbour predicted", voxel, _box(_empty(), (4, 5), (20, 21), (21, 22)))
    add("tiny", "one voxel, 2-voxel prediction (IoU 0.5)", voxel, _box(_empty(), (4, 5), (20, 21), (20, 22)))
    add("tiny", "one voxel, 5-voxel prediction (IoU 0.2)", voxel, _box(_empty(), (4, 5), (20, 21), (18, 23)))
    add("tiny", "one voxel, 6-voxel prediction (IoU 0.17)", voxel, _box(_empty(), (4, 5), (20, 21), (18, 24)))
    specks = one.copy()
    for z, y, x in ((0, 0, 0), (9, 39, 39), (1, 30, 5)):
        specks[z, y, x] = 1
    noisy = one.copy()
    for z, y, x in rng.integers(0, (10, 40, 40), size=(6, 3)):
        noisy[z, y, x] = 1
    add("tiny", "lesion and three specks against lesion and random specks", specks, noisy)
    inside = _empty()
    inside[3:6:2, 10:18:3, 10:18:3] = 1
    add("tiny", "isolated voxels inside one lesion", one, inside)
    halves = _line(10, 14)
    halves[4, 5, 16:20] = 1
    add("split/merge", "one lesion predicted as two parts (IoU 0.4 each)", _line(10, 20), halves)
    two = _line(10, 14)
    two[4, 5, 16:20] = 1
    add("split/merge", "two lesions predicted as one", two, _line(10, 20))
    three_lines = _line(5, 9)
    three_lines[4, 5, [11, 12, 13, 15, 16, 17]] = 1
    add("split/merge", "three lesions predicted as one", three_lines, _line(5, 18))
    add("split/merge", "one lesion predicted as three parts", _line(5, 18), three_lines)
    tie = _line(10, 14)
    tie[4, 5, 16:20] = 1
    add("ties", "one prediction across two lesions, equal IoU", tie, _line(12, 18))
    tie_ref = _line(0, 4)
    tie_ref[4, 5, 6:10] = 1
    tie_ref[4, 5, 12:16] = 1
    tie_pred = _line(2, 8)
    tie_pred[4, 5, 9:14] = 1
    add("ties", "chain of overlaps, one prediction tied between two lesions", tie_ref, tie_pred)
    from scipy import ndimage

    for i in range(5):
        field = ndimage.gaussian_filter(rng.normal(size=SHAPE), (0.8, 3, 3))
        field /= field.std()
        noisy_field = field + rng.normal(0, 0.6, SHAPE)
        add("irregular", f"smooth random field {i}", (field > 1.6).astype(np.uint8),
            (ndimage.gaussian_filter(noisy_field, 0.7) > 1.3).astype(np.uint8))
    diagonal = np.zeros((8, 8), np.uint8)
    diagonal[2, 2] = diagonal[3, 3] = 1
    two_labels = _box(_box(_empty(), (3, 6), (10, 14), (10, 14)), (3, 6), (10, 14), (14, 18), value=2)
    single = np.zeros((8, 8), np.uint8)
    single[2, 2] = 1
    outside = [{"kind": "outside", "name": "2D mask, diagonal neighbours, one predicted", "reference": diagonal,
                "prediction": single, "spacing": (1.0, 1.0)},
               {"kind": "outside", "name": "labels 1 and 2 touching, binary prediction", "reference": two_labels,
                "prediction": (two_labels > 0).astype(np.uint8), "spacing": (1.0, 1.0, 1.0)}]
    return pairs + outside


def phantom_pairs(num_cases: int, seed: int) -> list[dict]:
    """Realistic pairs: a small generated phantom's lesion (OT) against the threshold baseline's core (rCBF < 30 %
    inside Tmax > 6 s on the delivered maps), which is speckled with many small components."""
    from isles_pipeline.evaluation.threshold_baseline import threshold_core
    from isles_pipeline.imageio.nifti_io import read_array
    from isles_pipeline.phantom.generator import generate_phantom

    pairs = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "TRAINING"
        for name in generate_phantom(folder, num_cases=num_cases, seed=seed, size=64):
            found = {m: next((folder / name).glob(f"SMIR.Brain.XX.O.{m}.*/*.nii")) for m in ("OT", "CT_CBF", "CT_Tmax")}
            reference, image = read_array(found["OT"])
            predicted = threshold_core(read_array(found["CT_CBF"])[0], read_array(found["CT_Tmax"])[0])
            pairs.append({"kind": "phantom threshold", "name": f"phantom seed {seed} {name}",
                          "reference": (reference > 0).astype(np.uint8), "prediction": predicted.astype(np.uint8),
                          "spacing": tuple(float(v) for v in reversed(image.GetSpacing()[:3]))})
    return pairs


def ours(pairs: list[dict], match_iou: float) -> list[dict]:
    rows = []
    for pair in pairs:
        metrics = isles2024_case_metrics(pair["reference"], pair["prediction"], pair["spacing"], match_iou=match_iou)
        rows.append({key: float(metrics[OURS[key]]) for key in KEYS})
    return rows


def official(panoptica_python: str, repo: Path, pairs: list[dict], adapt: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        arrays = {}
        for i, pair in enumerate(pairs):
            arrays[f"reference_{i}"], arrays[f"prediction_{i}"] = pair["reference"], pair["prediction"]
            arrays[f"voxel_ml_{i}"] = np.float64(np.prod(pair["spacing"]) / 1000.0)
        np.savez_compressed(Path(tmp) / "pairs.npz", **arrays)
        command = [panoptica_python, str(DRIVER), "-official_repo", str(repo), "-pairs",
                   str(Path(tmp) / "pairs.npz"), "-o", str(Path(tmp) / "official.json")]
        done = subprocess.run(command + (["--adapt_new_panoptica"] if adapt else []), capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"the official evaluator failed ({' '.join(command)}):\n{done.stderr[-3000:]}")
        return json.loads((Path(tmp) / "official.json").read_text())


def agrees(key: str, a: float, b: float) -> bool:
    if key == "abs_volume_diff_ml":
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    return abs(a - b) <= 1e-12


def compare(pairs: list[dict], first: list[dict], second: list[dict], title: str) -> tuple[str, list[dict]]:
    """A markdown table (per kind: pairs, and how many agree on each metric) and the disagreeing pairs."""
    kinds = list(dict.fromkeys(p["kind"] for p in pairs))
    lines = [f"{title}", "", "| pairs | n | " + " | ".join(KEYS) + " |", "| --- " * (len(KEYS) + 2) + "|"]
    differing = []
    for kind in kinds + ["all 3D pairs"]:
        index = [i for i, p in enumerate(pairs) if (p["kind"] == kind if kind != "all 3D pairs" else
                                                    p["kind"] != "outside")]
        cells = [f"{sum(agrees(k, first[i][k], second[i][k]) for i in index)}/{len(index)}" for k in KEYS]
        lines.append(f"| {kind} | {len(index)} | " + " | ".join(cells) + " |")
    for i, pair in enumerate(pairs):
        keys = [k for k in KEYS if not agrees(k, first[i][k], second[i][k])]
        if keys:
            differing.append({"pair": i, "kind": pair["kind"], "name": pair["name"],
                              **{k: (first[i][k], second[i][k]) for k in keys}})
    if differing:
        lines += ["", "Pairs that differ (first, second):"]
        lines += [f"- {d['pair']} {d['kind']} / {d['name']}: " + ", ".join(
            f"{k} {d[k][0]:.4g} vs {d[k][1]:.4g}" for k in KEYS if k in d) for d in differing]
    return "\n".join(lines), differing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-panoptica_python", "--panoptica_python", required=True,
                        help="python of an environment with panoptica")
    parser.add_argument("-official_repo", "--official_repo", type=Path, required=True,
                        help="checkout of ezequieldlrosa/isles24 at the commit to compare with (its latest)")
    parser.add_argument("-first_release_repo", "--first_release_repo", type=Path,
                        help="the same repository at its first release")
    parser.add_argument("--adapt_new_panoptica", action="store_true",
                        help="panoptica >= 1.2: adapt its evaluate() result to the shape the official code unpacks")
    parser.add_argument("-seed", type=int, default=0)
    parser.add_argument("-phantom_cases", type=int, default=0,
                        help="also this many phantom cases (64 x 64): lesion against the threshold baseline")
    parser.add_argument("-o", dest="output", type=Path, help="write the per-pair values as JSON")
    args = parser.parse_args(argv)
    pairs = make_pairs(args.seed)
    if args.phantom_cases:
        outside = [p for p in pairs if p["kind"] == "outside"]
        pairs = [p for p in pairs if p["kind"] != "outside"] + phantom_pairs(args.phantom_cases, args.seed) + outside
    n3d = sum(p["kind"] != "outside" for p in pairs)
    latest = official(args.panoptica_python, args.official_repo, pairs, args.adapt_new_panoptica)
    our_rows = ours(pairs, MATCH_IOU)
    print(f"{n3d} 3D mask pairs (+{len(pairs) - n3d} outside the challenge's inputs); panoptica "
          f"{latest['panoptica']}{' (adapted)' if latest['adapted'] else ''}; official commit "
          f"{latest['official_commit']}\n")
    text, differing = compare(pairs, our_rows, latest["pairs"],
                              f"Ours (match IoU >= {MATCH_IOU}) against the official evaluator at its latest commit")
    print(text)
    result = {"pairs": [{k: p[k] for k in ("kind", "name", "spacing")} for p in pairs], "ours": our_rows,
              "official_latest": latest, "differing_latest": differing}
    if args.first_release_repo:
        first = official(args.panoptica_python, args.first_release_repo, pairs, args.adapt_new_panoptica)
        first_ours = ours(pairs, FIRST_RELEASE_MATCH_IOU)
        title = (f"\nOurs at the first release's matching (IoU >= {FIRST_RELEASE_MATCH_IOU}) against the official "
                 f"evaluator at its first release ({first['official_commit']})")
        text, result["differing_first_release"] = compare(pairs, first_ours, first["pairs"], title)
        print(text)
        text, result["official_changes"] = compare(pairs, first["pairs"], latest["pairs"],
                                                   "\nThe official evaluator, first release against latest")
        print(text)
        result["official_first_release"] = first
    if args.output:
        args.output.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
