"""`run_training`: the Python API behind `isles_train` (find data, plans, splits and trainer; train one fold,
possibly on several processes; validate).

    from isles_pipeline.trainers import run_training
    run_training(18, 0, "ISLESChainTrainer_5epochs", "ISLESSmallPlans", device="cpu")
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional, Union

import torch

from isles_pipeline import devices
from isles_pipeline.acceleration import AccelerationError, resolve_acceleration
from isles_pipeline.files import read_json
from isles_pipeline.paths import (
    DEFAULT_CONFIGURATION,
    DEFAULT_PLANS,
    DEFAULT_TRAINER,
    find_dataset_folder,
    isles_preprocessed,
    isles_raw,
    model_folder,
)
from isles_pipeline.planners.plans import get_configuration, load_plans
from isles_pipeline.preprocessing.case_preprocessor import preprocessing_hash
from isles_pipeline.preprocessing.storage import case_paths, is_case_done, preprocessed_case_names
from isles_pipeline.splits import SPLITS_FILE, load_splits
from isles_pipeline.trainers import checkpoint as ckpt
from isles_pipeline.trainers import distributed as ddp
from isles_pipeline.trainers.base_trainer import BaseTrainer
from isles_pipeline.trainers.errors import TrainingError
from isles_pipeline.trainers.registry import find_trainer


def _no_data(dataset_id: int, why: str) -> TrainingError:
    return TrainingError(f"{why}: run isles_plan_and_preprocess -d {dataset_id} first")


def _fold(fold: Union[int, str], num_folds: int) -> Union[int, str]:
    if str(fold) == "all":
        return "all"
    try:
        value = int(fold)
    except ValueError:
        value = -1
    if not 0 <= value < num_folds:
        raise TrainingError(f"fold {fold!r} is out of range: use 0..{num_folds - 1} or 'all'")
    return value


def check_cases(dataset_id: int, data_folder: Path, config: dict, splits: list, fold) -> None:
    """Every case of the fold is stored, completely, by preprocessing with these plans' settings."""
    cases = sorted({c for s in splits for c in s["train"] + s["val"]}) if fold == "all" else \
        sorted(set(splits[fold]["train"]) | set(splits[fold]["val"]))
    digest = preprocessing_hash(config)
    missing = [c for c in cases if not case_paths(data_folder, c)["properties"].is_file()]
    if missing:
        raise _no_data(dataset_id, f"{SPLITS_FILE} lists cases that are not preprocessed in {data_folder}: "
                                   f"{missing[:5]}{' ...' if len(missing) > 5 else ''} (or edit {SPLITS_FILE})")
    stale = [c for c in cases if not is_case_done(data_folder, c, digest)]
    if stale:
        raise _no_data(dataset_id, f"cases preprocessed with other settings than the plans' (or incomplete) in "
                                   f"{data_folder}: {stale[:5]}{' ...' if len(stale) > 5 else ''}")


def prepare(dataset_id: int, fold, trainer_name, plans_name: str, configuration: str) -> dict:
    """Everything a trainer needs, checked, as constructor keyword arguments (minus device and dist)."""
    trainer_class = trainer_name if isinstance(trainer_name, type) else find_trainer(trainer_name)
    try:
        folder = find_dataset_folder(isles_preprocessed(), dataset_id)
    except FileNotFoundError:
        raise _no_data(dataset_id, f"no preprocessed data for dataset {dataset_id} in {isles_preprocessed()}") from None
    except FileExistsError as error:
        raise TrainingError(str(error)) from None
    try:
        plans = load_plans(dataset_id, plans_name, folder)
    except FileNotFoundError:
        raise _no_data(dataset_id, f"no plans {plans_name}.json in {folder}") from None
    try:
        config = get_configuration(plans, configuration)
    except KeyError as error:
        raise TrainingError(str(error).strip('"')) from None
    if list(config["patch_size"]) != list(config["in_plane_size"]):
        raise TrainingError(f"plans {plans_name}: patch_size {config['patch_size']} differs from in_plane_size "
                            f"{config['in_plane_size']}; the trainer trains on whole slices (the augmentation's "
                            "random crop is resized back), so they must be equal")
    data_folder = folder / config["data_identifier"]
    if not data_folder.is_dir() or not preprocessed_case_names(data_folder):
        raise _no_data(dataset_id, f"no preprocessed cases in {data_folder}")
    if not (folder / SPLITS_FILE).is_file():
        raise _no_data(dataset_id, f"no {SPLITS_FILE} in {folder}")
    splits = load_splits(folder / SPLITS_FILE)
    fold = _fold(fold, len(splits))
    check_cases(dataset_id, data_folder, config, splits, fold)
    try:
        raw_labels: Optional[Path] = find_dataset_folder(isles_raw(), dataset_id) / "labelsTr"
    except (FileNotFoundError, FileExistsError):
        raw_labels = None
    dataset_json = read_json(folder / "dataset.json") if (folder / "dataset.json").is_file() else {}
    return {"trainer_class": trainer_class, "plans": plans, "configuration": configuration,
            "fold": fold, "dataset_json": dataset_json, "data_folder": data_folder,
            "splits": splits, "raw_labels": raw_labels,
            "model_folder": model_folder(dataset_id, trainer_class.__name__, plans["plans_name"], configuration,
                                         must_exist=False)}


def train_fold(setup: dict, device: torch.device, dist: ddp.DistContext, continue_training: bool,
               only_validation: bool, save_probabilities: bool, compile_network: Union[bool, str],
               final_validation: bool = True, precision: Optional[str] = None,
               memory_format: Optional[str] = None) -> BaseTrainer:
    """Build, (resume,) train and validate one fold in this process."""
    kwargs = {k: v for k, v in setup.items() if k != "trainer_class"}
    trainer = setup["trainer_class"](device=device, dist=dist, compile_network=compile_network,
                                     precision=precision, memory_format=memory_format, **kwargs)
    trainer.initialize()
    if only_validation:
        final = trainer.fold_folder / ckpt.FINAL
        if not final.is_file():
            raise TrainingError(f"--val needs {final}; train the fold first")
        trainer.load_checkpoint(final)
    else:
        if continue_training:
            path = ckpt.find_resume_checkpoint(trainer.fold_folder)
            if path is None:
                trainer.print(f"--c: no checkpoint in {trainer.fold_folder}; starting a fresh training")
            else:
                trainer.load_checkpoint(path)
        try:
            trainer.run_training()
        except torch.cuda.OutOfMemoryError:
            from isles_pipeline.trainers.memory import largest_fitting_batch

            fits = largest_fitting_batch(trainer, trainer.batch_size)
            hint = (f"batch size {fits * dist.world_size} fits (set batch_size in the plans)" if fits else
                    "not even batch size 1 fits (use a smaller preset)")
            raise TrainingError(f"out of GPU memory at batch size {trainer.global_batch_size}: {hint}") from None
    if final_validation or only_validation:
        trainer.perform_final_validation(save_probabilities)
    return trainer


def _worker(rank: int, world_size: int, setup: dict, device_name: str, options: dict) -> None:
    """One process of a -num_gpus N run (mp.spawn)."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    dist = ddp.DistContext(rank, world_size, rank)
    device = torch.device(device_name if device_name == "cpu" else f"cuda:{rank}")
    if device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    ddp.init_process_group(dist, device)
    try:
        train_fold(setup, device, dist, **options)
    finally:
        ddp.destroy_process_group()
    # Done, and every file is written and closed: leave without interpreter finalization, where gloo objects
    # still held by the finished run can abort the process (see ddp.destroy_process_group). An exception above
    # still propagates to mp.spawn, which reports it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def run_training(dataset_id: int, fold: Union[int, str], trainer_name: Union[str, type] = DEFAULT_TRAINER,
                 plans_name: str = DEFAULT_PLANS, configuration: str = DEFAULT_CONFIGURATION, device: str = "auto",
                 continue_training: bool = False, only_validation: bool = False, save_probabilities: bool = False,
                 num_gpus: int = 1, compile_network: Union[bool, str] = False, precision: Optional[str] = None,
                 memory_format: Optional[str] = None) -> Path:
    """Train (or, with only_validation, validate) one fold; returns the fold folder. Raises TrainingError
    with one clear line on bad input. num_gpus > 1 spawns that many processes (gloo on the CPU).

    compile_network: False (eager), True or "default" (torch.compile), "reduce-overhead" (CUDA graphs);
    precision "auto" | "bf16" | "fp32" and memory_format "auto" | "channels_last" | "contiguous" (None: the
    trainer's own, "auto" unless a variant says otherwise); see isles_pipeline.acceleration."""
    setup = prepare(dataset_id, fold, trainer_name, plans_name, configuration)
    try:
        dev = devices.resolve_device(device)
        resolve_acceleration(dev, precision or "auto", memory_format or "auto",
                             None if not compile_network else "default" if compile_network is True else compile_network)
    except (devices.DeviceError, AccelerationError) as error:
        raise TrainingError(str(error)) from None
    options = {"continue_training": continue_training, "only_validation": only_validation,
               "save_probabilities": save_probabilities, "compile_network": compile_network,
               "precision": precision, "memory_format": memory_format}
    fold_folder = setup["model_folder"] / f"fold_{setup['fold']}"
    if only_validation and not (fold_folder / ckpt.FINAL).is_file():
        raise TrainingError(f"--val needs {fold_folder / ckpt.FINAL}; train the fold first")
    env = ddp.context_from_environment()
    if env.enabled:  # launched by torchrun
        device_for_rank = dev if dev.type == "cpu" else torch.device(f"cuda:{env.local_rank}")
        ddp.init_process_group(env, device_for_rank)
        try:
            train_fold(setup, device_for_rank, env, **options)
        finally:
            ddp.destroy_process_group()
        return fold_folder
    if num_gpus > 1:
        if dev.type == "cuda" and torch.cuda.device_count() < num_gpus:
            raise TrainingError(f"-num_gpus {num_gpus} asked for, but only {torch.cuda.device_count()} GPU(s) found")
        import torch.multiprocessing as mp

        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ["MASTER_PORT"] = str(ddp.free_port())
        mp.spawn(_worker, args=(num_gpus, setup, dev.type, options), nprocs=num_gpus, join=True)
        return fold_folder
    train_fold(setup, dev, ddp.DistContext(), **options)
    return fold_folder
