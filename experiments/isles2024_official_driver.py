"""Run the ISLES 2024 challenge's own evaluation functions on mask pairs; meant for a separate environment.

Why a separate script: the official code (ezequieldlrosa/isles24 `utils/eval_utils.py`) needs panoptica, which
the project does not depend on, and its code is not ours to copy. This driver runs inside an environment that
has panoptica (and numpy) but not necessarily isles_pipeline, imports the official functions from a checkout
given on the command line, and writes their results as JSON for experiments.isles2024_evaluator_agreement.

    PANOPTICA_PYTHON experiments/isles2024_official_driver.py -official_repo DIR -pairs pairs.npz -o out.json

`pairs.npz` holds `reference_<i>`, `prediction_<i>` and `voxel_ml_<i>` for i = 0 .. n-1. The official code
unpacks `evaluate(...)["ungrouped"]` as (result, intermediate data), which panoptica returned up to 1.1.x;
from 1.2 on it returns the result alone, and 2.x renames `num_ref_instances` / `num_pred_instances` to `n_...`.
With a newer panoptica, `--adapt_new_panoptica` wraps the evaluator and its result so that the official code runs
unchanged; without it the official code fails there, as it would for a user.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np


def _official_module(repo: Path):
    utils = repo / "utils"
    if not (utils / "eval_utils.py").is_file():
        raise SystemExit(f"{repo}: no utils/eval_utils.py (not a checkout of ezequieldlrosa/isles24)")
    sys.path.insert(0, str(utils))
    import eval_utils  # noqa: E402  (the official module, from the checkout)

    return eval_utils


class _OldNames:
    """A panoptica 2.x result seen under the 1.x attribute names the official code reads."""
    RENAMED = {"num_ref_instances": "n_ref_instances", "num_pred_instances": "n_pred_instances"}

    def __init__(self, result):
        self._result = result

    def __getattr__(self, name):
        result = object.__getattribute__(self, "_result")
        return getattr(result, self.RENAMED[name] if name in self.RENAMED and not hasattr(result, name) else name)


def _adapt(eval_utils) -> None:
    """Make panoptica >= 1.2's evaluate() return (result, None) per group, the shape the official code unpacks."""
    base = eval_utils.Panoptica_Evaluator

    class TupleResultEvaluator(base):
        def evaluate(self, *args, **kwargs):
            return {group: (_OldNames(result), None) for group, result in super().evaluate(*args, **kwargs).items()}

    eval_utils.Panoptica_Evaluator = TupleResultEvaluator


def _commit(repo: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-official_repo", type=Path, required=True)
    parser.add_argument("-pairs", type=Path, required=True)
    parser.add_argument("-o", dest="output", type=Path, required=True)
    parser.add_argument("--adapt_new_panoptica", action="store_true")
    args = parser.parse_args(argv)
    eval_utils = _official_module(args.official_repo)
    if args.adapt_new_panoptica:
        _adapt(eval_utils)
    data = np.load(args.pairs)
    rows = []
    for i in range(len([k for k in data.files if k.startswith("reference_")])):
        reference, prediction = data[f"reference_{i}"], data[f"prediction_{i}"]
        with contextlib.redirect_stdout(io.StringIO()):  # panoptica prints a citation banner
            f1, count_difference, dice = eval_utils.compute_dice_f1_instance_difference(reference, prediction)
        volume = eval_utils.compute_absolute_volume_difference(reference, prediction,
                                                               np.float64(data[f"voxel_ml_{i}"]))
        rows.append({"lesion_f1": float(f1), "lesion_count_diff": int(count_difference), "dice": float(dice),
                     "abs_volume_diff_ml": float(volume)})
    result = {"panoptica": importlib.metadata.version("panoptica"), "official_commit": _commit(args.official_repo),
              "adapted": args.adapt_new_panoptica, "pairs": rows}
    args.output.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
