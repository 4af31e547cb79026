"""Writing a case's prediction next to the others: the mask (and optionally probabilities and pseudo-DWI) on
the input CT's exact grid, and the run's table of core volumes. Every file is written atomically.

Masks are written with ordinary, consistent qform and sform (not the ISLES identity-sform quirk): any reader,
nibabel included, then gets the true spacing. The grid (size, spacing, origin, direction) is the CT's as
`nifti_io.read_image` resolves it.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Optional

import numpy as np

from isles_pipeline.files import atomic_write_text
from isles_pipeline.imageio.nifti_io import write_image
from isles_pipeline.preprocessing.resampling import to_original_image

PROBABILITIES_FOLDER = "probabilities"
PSEUDO_DWI_FOLDER = "pseudo_dwi"
OVERLAYS_FOLDER = "overlays"
VOLUMES_CSV = "volumes.csv"


def output_name(case: str, smir_names: bool = False, ct_mtt_id: Optional[int] = None,
                smir_name: str = "isles_pipeline") -> str:
    """`<case>.nii.gz`, or the ISLES 2018 submission name `SMIR.<name>.<CT_MTT id>.nii`."""
    if not smir_names:
        return f"{case}.nii.gz"
    if ct_mtt_id is None:
        raise ValueError(f"{case}: --smir_names needs the case's CT_MTT id, which its input does not give "
                         "(ISLES folder names or dataset.json source_ids)")
    return f"SMIR.{smir_name}.{int(ct_mtt_id)}.nii"


def write_array(array: np.ndarray, properties: dict, path: Path) -> None:
    """A (Z, Y, X) array on the case's original grid, written atomically."""
    write_image(to_original_image(np.ascontiguousarray(array), properties), Path(path))


def write_mask(mask: np.ndarray, properties: dict, path: Path) -> None:
    write_array(np.asarray(mask, bool).astype(np.uint8), properties, path)


def write_volumes_csv(rows: list[dict], path: Path) -> None:
    """case, file, core_volume_ml, lesion_count, ct_mtt_id; atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["case", "file", "core_volume_ml", "lesion_count", "ct_mtt_id"])
    writer.writeheader()
    for row in rows:
        writer.writerow({key: row.get(key) for key in writer.fieldnames})
    atomic_write_text(Path(path), buffer.getvalue())
