"""What a results table reports: lesion cases and lesion-free cases apart, every mean with its 95 % interval.

Why apart: a case with no reference lesion and no predicted lesion scores Dice 1 (the ISLES'22 convention),
so a mean over all cases rises with the share of empty cases, whatever the method does on lesions; and a
lesion-free case's only question is whether the method invents a lesion there. So:
- lesion cases (reference volume > 0): means of Dice, HD95, |dV| (and the other overlap metrics);
- lesion-free cases: their count, the mean false-positive volume (ml; the predicted volume, since every
  predicted voxel is false there) and how many have any false positive.
A comparison of two methods uses only the cases both scored, paired case by case (`statistics`).
"""
from __future__ import annotations

from typing import Mapping

from isles_pipeline.evaluation.statistics import bootstrap_mean_ci, paired_difference_ci

LESION_CASE_METRICS = ("dice", "hd95_mm", "abs_volume_diff_ml", "precision", "recall", "lesion_f1",
                       "lesion_count_diff")
FALSE_POSITIVE_KEY = "false_positive_volume_ml"


def has_reference_lesion(metrics: Mapping) -> bool:
    return float(metrics["reference_volume_ml"]) > 0.0


def split_cases(per_case: Mapping[str, Mapping]) -> tuple[list[str], list[str]]:
    """(lesion case names, lesion-free case names), each sorted."""
    lesion = sorted(name for name, metrics in per_case.items() if has_reference_lesion(metrics))
    return lesion, sorted(set(per_case) - set(lesion))


def summarize_cases(per_case: Mapping[str, Mapping]) -> dict:
    """{"lesion_cases": {"n", "cases", <metric>: bootstrap_mean_ci ...},
        "lesion_free_cases": {"n", "cases", "false_positive_volume_ml": bootstrap_mean_ci,
                              "n_with_false_positive"}} of {case: case_metrics}."""
    lesion, lesion_free = split_cases(per_case)
    false_positive = [float(per_case[name]["predicted_volume_ml"]) for name in lesion_free]
    return {
        "lesion_cases": {"n": len(lesion), "cases": lesion,
                         **{key: bootstrap_mean_ci([per_case[name][key] for name in lesion])
                            for key in LESION_CASE_METRICS}},
        "lesion_free_cases": {"n": len(lesion_free), "cases": lesion_free,
                              FALSE_POSITIVE_KEY: bootstrap_mean_ci(false_positive),
                              "n_with_false_positive": sum(volume > 0 for volume in false_positive)},
    }


def compare_methods(first: Mapping[str, Mapping], second: Mapping[str, Mapping]) -> dict:
    """Paired differences first - second over the cases both scored (lesion status from the reference):
    {"lesion_cases": {"n", "dice", "hd95_mm", "abs_volume_diff_ml"}, "lesion_free_cases": {"n",
    "false_positive_volume_ml"}}, each difference a `paired_difference_ci`."""
    common = {name: first[name] for name in set(first) & set(second)}
    lesion, lesion_free = split_cases(common)
    return {
        "lesion_cases": {"n": len(lesion), **{
            key: paired_difference_ci([first[n][key] for n in lesion], [second[n][key] for n in lesion])
            for key in ("dice", "hd95_mm", "abs_volume_diff_ml")}},
        "lesion_free_cases": {"n": len(lesion_free), FALSE_POSITIVE_KEY: paired_difference_ci(
            [first[n]["predicted_volume_ml"] for n in lesion_free],
            [second[n]["predicted_volume_ml"] for n in lesion_free])},
    }
