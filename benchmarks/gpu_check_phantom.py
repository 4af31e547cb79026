"""Preparing the phantom the device check carries (here, with the full dependency set): preprocess a few phantom
cases with the project, thin them, and pack them with a manifest into a small tarball the GPU machine unpacks
(it has PyTorch and NumPy only). Used by `python -m benchmarks.gpu_check -prepare`."""
from __future__ import annotations

import json
import tarfile
import tempfile
from pathlib import Path
from typing import Optional, Sequence

MANIFEST = "gpu_check_manifest.json"
MAX_PHANTOM_BYTES = 20 * 2**20


# ---- preparing the carried phantom (here, with the full dependency set) -----------------------------------
def pack_preprocessed(dataset_folder: Path, plans_name: str, output: Path, cases: Optional[Sequence[str]] = None,
                      configuration: str = "2d") -> Path:
    """A tarball of a preprocessed dataset (plans, dataset.json, splits, the configuration's case arrays) that
    the check trains on without the preprocessing stack. Refuses to write one over 20 MB."""
    from isles_pipeline.files import atomic_path, read_json

    dataset_folder = Path(dataset_folder)
    plans = read_json(dataset_folder / f"{plans_name}.json")
    data_folder = dataset_folder / plans["configurations"][configuration]["data_identifier"]
    splits = read_json(dataset_folder / "splits_final.json")
    wanted = sorted(set(cases) if cases else {c for s in splits for c in s["train"] + s["val"]})
    manifest = {"dataset": dataset_folder.name, "plans": plans_name, "configuration": configuration,
                "data_identifier": data_folder.name, "cases": wanted}
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(output) as tmp:
        with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
            for name in (f"{plans_name}.json", "dataset.json", "splits_final.json"):
                if (dataset_folder / name).is_file():
                    tar.add(dataset_folder / name, arcname=name)
            for path in sorted(data_folder.iterdir()):
                if any(path.name.startswith(case + ".") or path.name.startswith(case + "_") for case in wanted):
                    tar.add(path, arcname=f"{data_folder.name}/{path.name}")
            blob = json.dumps(manifest, indent=1).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(blob)
            import io

            tar.addfile(info, io.BytesIO(blob))
        size = Path(tmp).stat().st_size
        if size > MAX_PHANTOM_BYTES:
            raise ValueError(f"{output}: the packed phantom takes {size / 2**20:.1f} MiB, over the "
                             f"{MAX_PHANTOM_BYTES / 2**20:.0f} MiB that may travel; use fewer or thinner cases")
    return output


def thin_cases(dataset_folder: Path, plans_name: str, staging: Path, max_slices: int,
               configuration: str = "2d") -> Path:
    """A copy of a preprocessed dataset whose cases keep at most `max_slices` slices each (lesion slices
    first, then their neighbours in order), so a 256 x 256 phantom fits the transfer budget. Only the arrays
    are thinned (the properties still describe the whole case): fine for training, not for final validation,
    which the check does not run."""
    import shutil

    import numpy as np

    from isles_pipeline.files import atomic_path, read_json
    from isles_pipeline.preprocessing.storage import ARRAY_SUFFIXES, case_paths, load_preprocessed_case

    dataset_folder, staging = Path(dataset_folder), Path(staging) / Path(dataset_folder).name
    identifier = read_json(dataset_folder / f"{plans_name}.json")["configurations"][configuration]["data_identifier"]
    (staging / identifier).mkdir(parents=True, exist_ok=True)
    for name in (f"{plans_name}.json", "dataset.json", "splits_final.json"):
        if (dataset_folder / name).is_file():
            shutil.copyfile(dataset_folder / name, staging / name)
    splits = read_json(dataset_folder / "splits_final.json")
    cases = sorted({c for split in splits for c in split["train"] + split["val"]})
    for case in cases:
        stored = load_preprocessed_case(dataset_folder / identifier, case)
        lesion = np.flatnonzero(np.asarray(stored["seg"]).reshape(len(stored["seg"]), -1).any(axis=1))
        order = list(lesion) + [z for z in range(len(stored["seg"])) if z not in set(lesion)]
        keep = sorted(order[:max_slices])
        target = case_paths(staging / identifier, case)
        for key in ARRAY_SUFFIXES:
            if stored[key] is not None:
                with atomic_path(target[key]) as tmp:
                    with open(tmp, "wb") as f:
                        np.save(f, np.ascontiguousarray(np.asarray(stored[key])[keep]), allow_pickle=False)
        shutil.copyfile(case_paths(dataset_folder / identifier, case)["properties"], target["properties"])
    return staging


def prepare_phantom(output: Path, cases: int = 5, seed: int = 7, num_processes: int = 2,
                    max_slices: int = 4) -> Path:
    """Generate a 256 x 256 phantom with DWI, convert, plan and preprocess it with the full ISLESPlanner, thin
    its cases until the tarball fits in 20 MB, and pack it (run here: needs SimpleITK and preprocessing)."""
    from isles_pipeline.dataset_conversion.convert import convert_isles2018
    from isles_pipeline.paths import data_roots_under, find_dataset_folder, isles_preprocessed
    from isles_pipeline.phantom import generate_phantom
    from isles_pipeline.planners.api import plan_and_preprocess

    with tempfile.TemporaryDirectory(prefix="isles_gpu_check_prepare_") as work, data_roots_under(Path(work)):
        generate_phantom(Path(work) / "TRAINING", cases, "TRAINING", seed, 256, True, num_processes)
        conversion = convert_isles2018(Path(work) / "TRAINING", None, 18, "ISLES2018", num_processes)
        if conversion.failures:
            raise RuntimeError("conversion failed: " + "; ".join(conversion.failures))
        plan_and_preprocess(18, "ISLESPlanner", num_processes)
        dataset = find_dataset_folder(isles_preprocessed(), 18)
        for slices in range(max_slices, 0, -1):
            staged = thin_cases(dataset, "ISLESPlans", Path(work) / f"thin_{slices}", slices)
            try:
                return pack_preprocessed(staged, "ISLESPlans", output)
            except ValueError as error:
                if slices == 1:
                    raise
                print(f"{error}; trying {slices - 1} slices per case")
    raise AssertionError("unreachable")


