"""Which cases are slabs of the same patient: cross-validation must keep them in one fold.

Order of trust: a user's table (`--patients CSV` with columns `case,patient[,slab]`, `case` being the source
folder name such as `case_7`), then the SMIR metadata descriptions ("Train_07_B"), then a heuristic. The table
comes first because it is the one thing the user gave explicitly, typically to correct a grouping: it wins
over the metadata (each case where they disagree is logged as a warning), never silently ignored.

The heuristic (reported whenever it is used): ISLES 2018 numbers the slabs of a patient consecutively and
both slabs come from one acquisition protocol, so two consecutive cases are taken as slabs A and B of one
patient when their CT grids have the same in-plane size and spacing, the same slice thickness and the same
number of slices, and their 4D series the same number of frames. A patient has at most two slabs.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AcquisitionKey:
    """What two slabs of one patient share under the heuristic."""

    in_plane_size: tuple[int, int]
    spacing: tuple[float, float, float]
    num_slices: int
    num_frames: int


def read_patient_table(path: Path) -> dict[str, tuple[str, str]]:
    """case folder name -> (patient, slab) from a CSV with a header row."""
    table: dict[str, tuple[str, str]] = {}
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"case", "patient"} <= {f.strip() for f in reader.fieldnames}:
            raise ValueError(f"{path}: the patient table needs a header with columns case,patient[,slab]")
        for row in reader:
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            table[row["case"]] = (row["patient"], row.get("slab", ""))
    return table


def group_by_heuristic(ordered_cases: list[str], keys: dict[str, AcquisitionKey],
                       prefix: str) -> dict[str, tuple[str, str]]:
    """Pair consecutive cases with equal acquisition keys; name patients `<prefix>_NN` in order."""
    assigned: dict[str, tuple[str, str]] = {}
    index, patient_number = 0, 0
    while index < len(ordered_cases):
        patient_number += 1
        patient = f"{prefix}_{patient_number:02d}"
        case = ordered_cases[index]
        following = ordered_cases[index + 1] if index + 1 < len(ordered_cases) else None
        if following is not None and keys[case] == keys[following]:
            assigned[case] = (patient, "A")
            assigned[following] = (patient, "B")
            index += 2
        else:
            assigned[case] = (patient, "")
            index += 1
    return assigned


def resolve_patients(ordered_cases: list[str], from_metadata: dict[str, tuple[str | None, str]],
                     table: dict[str, tuple[str, str]] | None, keys: dict[str, AcquisitionKey],
                     prefix: str) -> tuple[dict[str, tuple[str, str]], str]:
    """(case -> (patient, slab), source) where source says which rule decided for these cases."""
    if table is not None:
        missing = [c for c in ordered_cases if c not in table]
        if missing:
            raise ValueError(f"the patient table lacks case(s): {', '.join(missing[:10])}")
        for case in ordered_cases:
            described = from_metadata.get(case, (None, ""))
            if described[0] and (str(described[0]), described[1]) != tuple(table[case]):
                logger.warning("%s: the patient table says %s, the SMIR metadata %s; using the table",
                               case, table[case], described)
        return {c: table[c] for c in ordered_cases}, "table"
    if ordered_cases and all(from_metadata.get(c, (None, ""))[0] for c in ordered_cases):
        return {c: (str(from_metadata[c][0]), from_metadata[c][1]) for c in ordered_cases}, "metadata"
    return group_by_heuristic(ordered_cases, keys, prefix), "heuristic"
