"""Stock nnU-Net v2 on our folds, through nnU-Net's own commands in its own virtualenv (scripts/nnunet_venv.sh);
the package never imports nnunetv2.

One work folder holds nnU-Net's three roots (`nnUNet_raw` links to our converted dataset, which is already
nnU-Net's raw format), one planning (`nnUNetv2_plan_and_preprocess -c 2d`, recorded in `planning.json`) and any
number of variants. A variant is a trainer from scripts/nnunet_trainers (found through nnUNet_extTrainer) with
the length settings it reads from the environment, and optionally an edited copy of nnU-Net's plans (the 2d
configuration's batch size, say) saved as `nnUNetPlans_ISLESEdited` beside the stock one, reusing its
preprocessed data. Each variant, in `<work>/<variant name>/`:
1. our splits written as nnU-Net's splits_final.json, then `nnUNetv2_train` for folds 0-3; a fold whose
   checkpoint_final.pth and validation predictions exist from the same splits and settings is not trained again;
2. `cv/`: the folds' own validation predictions (nnU-Net's cross-validation, with its default test-time
   mirroring); `testing/`: imagesTs predicted by the 4-fold ensemble (`nnUNetv2_predict -f 0 1 2 3`);
3. with `mirroring_off`, the same two without test-time mirroring (`--disable_tta`): `testing_no_mirroring/`,
   and `cv_no_mirroring/`, each fold's validation cases predicted from imagesTr by that fold alone.
Every step's seconds go to `<work>/<variant>/row.json` once it succeeded; a rerun skips recorded steps whose
outputs exist (predictions only while no fold was retrained).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from isles_pipeline.files import atomic_write_json, read_json
from isles_pipeline.splits import nnunet_splits

REPOSITORY = Path(__file__).resolve().parents[1]
VENV_SCRIPT = REPOSITORY / "scripts" / "nnunet_venv.sh"
TRAINER_FOLDER = REPOSITORY / "scripts" / "nnunet_trainers"
CONFIGURATION = "2d"
PLANS = "nnUNetPlans"
EDITED_PLANS = "nnUNetPlans_ISLESEdited"
EDITABLE_KEYS = ("batch_size", "patch_size")
NUM_FOLDS = 4
DEFAULT_VENV = Path("/tmp/nnunetv2-2.8.1-isles")
_DATASET_NAME = re.compile(r"Dataset(\d{3})_\S+")


class NnUNetRowError(RuntimeError):
    """One line: which step failed and where its log is."""


@dataclass(frozen=True)
class NnUNetVariant:
    """One nnU-Net row: `name` (its folder), `trainer` (class in scripts/nnunet_trainers), `environment` (the
    length settings the trainer reads), `plans_edit` (2d configuration keys changed in the edited plans; empty:
    nnU-Net's own plans), `mirroring_off` (also predict without test-time mirroring)."""

    name: str
    trainer: str
    environment: Mapping[str, str]
    plans_edit: Mapping[str, object] = field(default_factory=dict)
    mirroring_off: bool = False

    @property
    def plans(self) -> str:
        return EDITED_PLANS if self.plans_edit else PLANS

    def settings(self) -> dict:
        return {"trainer": self.trainer, "plans": self.plans, "environment": dict(self.environment),
                "plans_edit": dict(self.plans_edit)}


def dataset_id(raw_dataset_folder: Path) -> int:
    match = _DATASET_NAME.fullmatch(Path(raw_dataset_folder).name)
    if not match:
        raise NnUNetRowError(f"{raw_dataset_folder}: nnU-Net needs a folder named DatasetXXX_Name")
    return int(match.group(1))


def _cases(raw_dataset_folder: Path, folder: str, suffix: str) -> list[str]:
    ending = suffix + read_json(Path(raw_dataset_folder) / "dataset.json").get("file_ending", ".nii.gz")
    return sorted(p.name[:-len(ending)] for p in (Path(raw_dataset_folder) / folder).glob(f"*{ending}"))


def training_cases(raw_dataset_folder: Path) -> list[str]:
    """Training identifiers as nnU-Net sees them: labelsTr/<case><file_ending>."""
    return _cases(raw_dataset_folder, "labelsTr", "")


def testing_cases(raw_dataset_folder: Path) -> list[str]:
    return _cases(raw_dataset_folder, "imagesTs", "_0000")


def nnunet_venv(venv: Optional[Path] = None) -> Path:
    """The venv made by scripts/nnunet_venv.sh ($NNUNET_VENV or its default); one line when it is missing."""
    venv = Path(venv or os.environ.get("NNUNET_VENV") or DEFAULT_VENV)
    if not all((venv / "bin" / tool).is_file() for tool in ("nnUNetv2_plan_and_preprocess", "nnUNetv2_train",
                                                            "nnUNetv2_predict")):
        raise NnUNetRowError(f"no nnU-Net v2 virtualenv at {venv}: create it with `bash {VENV_SCRIPT}` "
                             "(NNUNET_VENV chooses where)")
    return venv


def install_nnunet(venv: Optional[Path] = None) -> Path:
    """Run scripts/nnunet_venv.sh (a no-op when the venv is ready); the venv's path."""
    env = dict(os.environ)
    if venv is not None:
        env["NNUNET_VENV"] = str(venv)
    result = subprocess.run(["bash", str(VENV_SCRIPT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    if result.returncode != 0:
        raise NnUNetRowError(result.stderr.strip().splitlines()[-1] if result.stderr.strip()
                             else f"{VENV_SCRIPT} failed (exit {result.returncode})")
    return Path(result.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class NnUNetWork:
    """A work folder with nnU-Net's roots, and how to run its commands there."""

    raw_dataset: Path
    work: Path
    venv: Path
    device: str = "cpu"
    num_processes: int = 2

    @property
    def identifier(self) -> str:
        return str(dataset_id(self.raw_dataset))

    @property
    def preprocessed(self) -> Path:
        return self.work / "nnUNet_preprocessed" / self.raw_dataset.name

    def results(self, variant: NnUNetVariant) -> Path:
        return self.work / "nnUNet_results" / self.raw_dataset.name / f"{variant.trainer}__{variant.plans}__2d"

    def device_arguments(self) -> tuple[list[str], dict[str, str]]:
        """nnU-Net takes -device cpu|cuda and a GPU index only through CUDA_VISIBLE_DEVICES."""
        kind, _, index = self.device.partition(":")
        if kind not in ("cpu", "cuda"):
            raise NnUNetRowError(f"device {self.device!r}: nnU-Net runs on cpu or cuda[:N]")
        return ["-device", kind], ({"CUDA_VISIBLE_DEVICES": index} if index else {})

    def run(self, step: str, tool: str, arguments: list[str], log_file: Path,
            environment: Mapping[str, str] = {}) -> float:
        """One nnU-Net command with its output in `log_file`; its wall time in seconds."""
        roots = {name: str(self.work / name) for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
        env = {**os.environ, **roots, **self.device_arguments()[1], **environment,
               "nnUNet_extTrainer": str(TRAINER_FOLDER), "nnUNet_n_proc_DA": str(self.num_processes),
               "nnUNet_def_n_proc": str(self.num_processes)}
        command = [str(self.venv / "bin" / tool), *arguments]
        log_file.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with open(log_file, "w") as log:  # a live log of a child process, not a result file: written as it runs
            log.write("$ " + " ".join(command) + "\n")
            log.flush()
            code = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
        if code != 0:
            raise NnUNetRowError(f"nnU-Net {step} failed (exit {code}); log: {log_file}")
        return time.perf_counter() - start


def _link_raw(raw_dataset_folder: Path, nnunet_raw: Path) -> None:
    link = nnunet_raw / raw_dataset_folder.name
    nnunet_raw.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and link.resolve() == raw_dataset_folder.resolve():
        return
    if link.is_symlink():
        link.unlink()
    elif link.exists():
        raise NnUNetRowError(f"{link} exists and is not a link to {raw_dataset_folder}")
    link.symlink_to(raw_dataset_folder.resolve(), target_is_directory=True)


def gather(files: list[Path], destination: Path) -> Path:
    """Copy into a fresh `destination` (built beside it, then renamed: never half a folder)."""
    partial = destination.with_name(destination.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for file in files:
        shutil.copy2(file, partial / file.name)
    shutil.rmtree(destination, ignore_errors=True)
    partial.rename(destination)
    return destination


def plan(nnunet: NnUNetWork) -> dict:
    """nnUNetv2_plan_and_preprocess -c 2d once per work folder (with nnU-Net's integrity check); its plans."""
    _link_raw(nnunet.raw_dataset, nnunet.work / "nnUNet_raw")
    record_file = nnunet.work / "planning.json"
    record = read_json(record_file) if record_file.is_file() else {}
    plans_file = nnunet.preprocessed / f"{PLANS}.json"
    if record.get("dataset") != str(nnunet.raw_dataset) or not plans_file.is_file():
        seconds = nnunet.run("plan_and_preprocess", "nnUNetv2_plan_and_preprocess",
                             ["-d", nnunet.identifier, "-c", CONFIGURATION, "-np", str(nnunet.num_processes),
                              "-npfp", str(nnunet.num_processes), "--verify_dataset_integrity"],
                             nnunet.work / "logs" / "plan_and_preprocess.log")
        atomic_write_json(record_file, {"dataset": str(nnunet.raw_dataset), "seconds": round(seconds, 1)})
    return read_json(plans_file)


def write_edited_plans(nnunet: NnUNetWork, edit: Mapping[str, object]) -> None:
    """nnU-Net's plans with the 2d configuration's `edit` applied, as EDITED_PLANS (same preprocessed data)."""
    unknown = sorted(set(edit) - set(EDITABLE_KEYS))
    if unknown:
        raise NnUNetRowError(f"plans edit of {unknown}: only {list(EDITABLE_KEYS)} keep nnU-Net's network valid")
    plans = read_json(nnunet.preprocessed / f"{PLANS}.json")
    configuration = plans["configurations"][CONFIGURATION]
    if "patch_size" in edit and list(edit["patch_size"]) != list(configuration["patch_size"]):
        raise NnUNetRowError(f"patch {list(edit['patch_size'])} differs from nnU-Net's {configuration['patch_size']}"
                             ": its network topology is planned for that patch; plan a new one instead")
    configuration.update(edit)
    plans["plans_name"] = EDITED_PLANS
    atomic_write_json(nnunet.preprocessed / f"{EDITED_PLANS}.json", plans)


def _fold_done(results: Path, fold: int, validation: list[str]) -> bool:
    folder = results / f"fold_{fold}"
    return (folder / "checkpoint_final.pth").is_file() and all(
        (folder / "validation" / f"{case}.nii.gz").is_file() for case in validation)


def run_variant(nnunet: NnUNetWork, splits: list[dict], variant: NnUNetVariant) -> dict[str, Path]:
    """Steps 1-3 of the module docstring for one variant (after `plan`); {"cv", "testing" and, with
    mirroring off, "cv_no_mirroring", "testing_no_mirroring": folder of <case>.nii.gz}."""
    try:
        exported = nnunet_splits(splits, training_cases(nnunet.raw_dataset))
    except ValueError as error:
        raise NnUNetRowError(f"{nnunet.raw_dataset}: {error}") from None
    if len(exported) != NUM_FOLDS:
        raise NnUNetRowError(f"the nnU-Net row trains {NUM_FOLDS} folds; the splits have {len(exported)}")
    if variant.plans_edit:
        write_edited_plans(nnunet, variant.plans_edit)
    atomic_write_json(nnunet.preprocessed / "splits_final.json", exported)
    out, results = nnunet.work / variant.name, nnunet.results(variant)
    record_file = out / "row.json"
    previous = read_json(record_file) if record_file.is_file() else {}
    same_setup = (previous.get("dataset") == str(nnunet.raw_dataset) and previous.get("splits") == exported
                  and previous.get("settings") == variant.settings())
    record = {"dataset": str(nnunet.raw_dataset), "splits": exported, "settings": variant.settings(),
              "device": nnunet.device, "seconds": dict(previous.get("seconds", {})) if same_setup else {}}
    atomic_write_json(record_file, record)
    device_arguments = nnunet.device_arguments()[0]
    retrained = False
    for fold in range(NUM_FOLDS):
        if not (same_setup and _fold_done(results, fold, exported[fold]["val"])):
            retrained = True
            record["seconds"][f"train_fold_{fold}"] = round(nnunet.run(
                f"train fold {fold}", "nnUNetv2_train",
                [nnunet.identifier, CONFIGURATION, str(fold), "-tr", variant.trainer, "-p", variant.plans,
                 *device_arguments], out / "logs" / f"train_fold_{fold}.log", variant.environment), 1)
            atomic_write_json(record_file, record)
        if not _fold_done(results, fold, exported[fold]["val"]):
            raise NnUNetRowError(f"nnU-Net train fold {fold} wrote no complete validation in {results}; log: "
                                 f"{out / 'logs' / f'train_fold_{fold}.log'}")
    folders = {"cv": gather([results / f"fold_{fold}" / "validation" / f"{case}.nii.gz"
                             for fold in range(NUM_FOLDS) for case in exported[fold]["val"]], out / "cv")}
    predict = _Predictions(nnunet, variant, record, record_file, reuse=same_setup and not retrained)
    folders["testing"] = predict.testing(mirroring=True)
    if variant.mirroring_off:
        folders["testing_no_mirroring"] = predict.testing(mirroring=False)
        folders["cv_no_mirroring"] = predict.cross_validation_without_mirroring(exported)
    return folders


@dataclass
class _Predictions:
    nnunet: NnUNetWork
    variant: NnUNetVariant
    record: dict
    record_file: Path
    reuse: bool

    def _predict(self, step: str, images: Path, output: Path, folds: list[int], mirroring: bool) -> None:
        shutil.rmtree(output, ignore_errors=True)
        self.record["seconds"][step] = round(self.nnunet.run(
            step, "nnUNetv2_predict",
            ["-i", str(images), "-o", str(output), "-d", self.nnunet.identifier, "-c", CONFIGURATION,
             "-tr", self.variant.trainer, "-p", self.variant.plans, "-f", *map(str, folds),
             "-npp", str(self.nnunet.num_processes), "-nps", str(self.nnunet.num_processes),
             "--disable_progress_bar", *([] if mirroring else ["--disable_tta"]),
             *self.nnunet.device_arguments()[0]],
            self.nnunet.work / self.variant.name / "logs" / f"{step}.log"), 1)

    def _done(self, step: str, folder: Path, cases: list[str]) -> bool:
        return (self.reuse and step in self.record["seconds"]
                and all((folder / f"{case}.nii.gz").is_file() for case in cases))

    def testing(self, mirroring: bool) -> Path:
        suffix = "" if mirroring else "_no_mirroring"
        step, folder = f"predict_testing{suffix}", self.nnunet.work / self.variant.name / f"testing{suffix}"
        expected = testing_cases(self.nnunet.raw_dataset)
        if self._done(step, folder, expected):
            return folder
        raw_output = folder.with_name(folder.name + "_raw")
        self._predict(step, self.nnunet.raw_dataset / "imagesTs", raw_output, list(range(NUM_FOLDS)), mirroring)
        missing = [case for case in expected if not (raw_output / f"{case}.nii.gz").is_file()]
        if missing:
            raise NnUNetRowError(f"nnU-Net {step} wrote no prediction for {missing[:3]} ({len(missing)} missing); "
                                 f"log: {self.nnunet.work / self.variant.name / 'logs' / f'{step}.log'}")
        gather([raw_output / f"{case}.nii.gz" for case in expected], folder)
        atomic_write_json(self.record_file, self.record)
        return folder

    def cross_validation_without_mirroring(self, exported: list[dict]) -> Path:
        folder = self.nnunet.work / self.variant.name / "cv_no_mirroring"
        cases = sorted(case for fold in exported for case in fold["val"])
        if self._done("predict_cv_no_mirroring", folder, cases):
            return folder
        scratch = self.nnunet.work / self.variant.name / "cv_no_mirroring_scratch"
        shutil.rmtree(scratch, ignore_errors=True)
        seconds, files = 0.0, []
        for fold, split in enumerate(exported):
            images = scratch / f"fold_{fold}_images"
            images.mkdir(parents=True)
            for case in split["val"]:
                for image in (self.nnunet.raw_dataset / "imagesTr").glob(f"{case}_[0-9][0-9][0-9][0-9].*"):
                    (images / image.name).symlink_to(image.resolve())
            self._predict(f"predict_cv_no_mirroring_fold_{fold}", images, scratch / f"fold_{fold}", [fold], False)
            seconds += self.record["seconds"].pop(f"predict_cv_no_mirroring_fold_{fold}")
            files += [scratch / f"fold_{fold}" / f"{case}.nii.gz" for case in split["val"]]
        missing = [file for file in files if not file.is_file()]
        if missing:
            raise NnUNetRowError(f"nnU-Net predict wrote no {missing[0]} ({len(missing)} missing)")
        gather(files, folder)
        shutil.rmtree(scratch, ignore_errors=True)
        self.record["seconds"]["predict_cv_no_mirroring"] = round(seconds, 1)
        atomic_write_json(self.record_file, self.record)
        return folder
