"""Printed results tables (phantom_results, the demo, isles_evaluate): one layout for `summary` dicts.

Each mean is printed as `mean [low, high]` (95 % bootstrap interval); a paired difference whose interval
includes 0 is marked `*` and the table says what that means: no evidence of a difference on these cases.
"""
from __future__ import annotations

from typing import Mapping, Optional

from isles_pipeline.evaluation.summary import FALSE_POSITIVE_KEY

NO_EVIDENCE = "* the interval includes 0: no evidence of a difference on these cases"
_LESION_COLUMNS = (("dice", "Dice", 3), ("hd95_mm", "HD95 mm", 2), ("abs_volume_diff_ml", "|dV| ml", 2))


def _number(value: Optional[float], digits: int, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def interval_cell(estimate: Mapping, digits: int, key: str = "mean", signed: bool = False,
                  mark: str = "") -> str:
    """`mean [low, high]`, `mean` alone when there is no interval (fewer than 2 cases), `n/a` with no value;
    then `mark`, then how many cases had the metric undefined."""
    text = _number(estimate[key], digits, signed)
    if estimate["ci_low"] is not None:
        text += f" [{_number(estimate['ci_low'], digits, signed)}, {_number(estimate['ci_high'], digits, signed)}]"
    text += mark
    if estimate.get("n_undefined"):
        text += f" ({estimate['n_undefined']} undefined)"
    return text


def _aligned(rows: list[list[str]]) -> list[str]:
    """Rows of cells as lines, each column as wide as its widest cell, two spaces apart."""
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(max(map(len, rows)))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def summary_table(rows: Mapping[str, Mapping]) -> list[str]:
    """Lines of the lesion-case and lesion-free-case tables of {method name: summarize_cases(...)}."""
    first = next(iter(rows.values()))
    lesion = [["", *(title for _, title, _ in _LESION_COLUMNS)]]
    lesion += [[name, *(interval_cell(summary["lesion_cases"][key], digits) for key, _, digits in _LESION_COLUMNS)]
               for name, summary in rows.items()]
    free = [["", "false-positive ml", "cases with any"]]
    free += [[name, interval_cell(summary["lesion_free_cases"][FALSE_POSITIVE_KEY], 2),
              f"{summary['lesion_free_cases']['n_with_false_positive']} of {summary['lesion_free_cases']['n']}"]
             for name, summary in rows.items()]
    return ([f"Cases with a reference lesion (n={first['lesion_cases']['n']}): mean [95 % bootstrap CI]"]
            + _aligned(lesion)
            + [f"Lesion-free cases (n={first['lesion_free_cases']['n']}): false-positive volume, mean [95 % CI]"]
            + _aligned(free))


def _difference_cell(difference: Mapping, digits: int) -> str:
    mark = "*" if difference["interval_includes_zero"] or difference["mean_difference"] is None else ""
    return interval_cell(difference, digits, "mean_difference", signed=True, mark=mark)


def comparison_table(comparisons: Mapping[str, Mapping], against: str) -> list[str]:
    """Lines of the paired differences {method name: compare_methods(method, against)} (row minus `against`)."""
    table = [["", *(f"d {title}" for _, title, _ in _LESION_COLUMNS), "d false-positive ml"]]
    for name, comparison in comparisons.items():
        lesion, free = comparison["lesion_cases"], comparison["lesion_free_cases"]
        table.append([name, *(_difference_cell(lesion[key], digits) for key, _, digits in _LESION_COLUMNS),
                      _difference_cell(free[FALSE_POSITIVE_KEY], 2) if free["n"] else "(no lesion-free case)"])
    return ([f"Paired differences, row minus {against}, over the same cases: mean [95 % bootstrap CI]"]
            + _aligned(table) + [NO_EVIDENCE])
