"""A small nnU-Net-like trainer: the loop, checkpoints and bookkeeping, with hooks for what a method
changes. Hyper-parameters come from the plans configuration only; a variant overrides a hook or one of the
class attributes below.

Hooks (override in a subclass): build_network, build_loss, build_optimizer, build_scheduler, load_data,
train_step, validation_step, on_train_start, on_epoch_end, on_train_end, final_validation_predictor.
Life cycle: `initialize()` -> optionally `load_checkpoint(path)` -> `run_training()` -> `perform_final_validation()`.
Several processes (DDP): the plans' batch is the global batch; `backward` weights each rank's loss by its share
of it, so the step is the one-process step for terms that are means over slices. Batch statistics (BatchNorm,
input BN, SwitchNorm's batch part) and generalised Dice stay per rank (distributed.py says what that means).
"""
from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from isles_pipeline.acceleration import Acceleration, compile_module, mark_step_begin, resolve_acceleration
from isles_pipeline.augmentation import SpatialAugmentation
from isles_pipeline.files import atomic_write_json
from isles_pipeline.planners.plans import frame_and_map_positions
from isles_pipeline.preprocessing.storage import case_paths
from isles_pipeline.trainers import checkpoint as ckpt
from isles_pipeline.trainers.data import (
    Batch,
    SliceSet,
    fits_on_device,
    gather_batch,
    load_slices,
    nbytes_of_cases,
    pinned,
    sample_indices,
)
from isles_pipeline.trainers.distributed import DistContext, all_reduce_sum, gather_objects, local_batch_size
from isles_pipeline.trainers.optim import build_optimizer
from isles_pipeline.trainers.progress import EMA_MOMENTUM, TextLog, TrainingLog, plot_progress
from isles_pipeline.trainers.schedule import build_scheduler


class BaseTrainer:
    """See the module doc. `model_folder` is <Trainer>__<Plans>__<configuration>; files go to fold_N/."""

    num_epochs_override: Optional[int] = None  # training-length variants
    iterations_override: Optional[int] = None
    save_every = 5  # epochs between checkpoint_latest.pth writes
    data_mode = "auto"  # "resident" | "streamed" | "auto" (see load_data)
    stream_processes = 2
    use_dwi_if_present = True
    seed = 12345
    # Device paths (isles_pipeline.acceleration): "auto" = bf16 autocast + channels_last on CUDA, float32 on CPU;
    # "bf16" / "channels_last" ask for them on any device. compile_mode: None (eager), "default",
    # "reduce-overhead" (CUDA graphs). Constructor arguments override these class attributes.
    precision = "auto"
    memory_format = "auto"
    compile_mode: Optional[str] = None

    def __init__(self, plans: dict, configuration: str, fold, dataset_json: dict, data_folder: Path,
                 splits: list, model_folder: Path, device: torch.device, dist: DistContext = DistContext(),
                 compile_network=False, raw_labels: Optional[Path] = None, precision: Optional[str] = None,
                 memory_format: Optional[str] = None) -> None:
        self.plans, self.configuration_name, self.fold = plans, configuration, fold
        self.config = plans["configurations"][configuration]
        self.dataset_json = dataset_json
        self.data_folder, self.model_folder = Path(data_folder), Path(model_folder)
        self.fold_folder = self.model_folder / f"fold_{fold}"
        self.device, self.dist = device, dist
        if compile_network:  # True: torch.compile's default mode; a string: that mode
            self.compile_mode = "default" if compile_network is True else str(compile_network)
        self.compile_network = self.compile_mode is not None
        self.precision = precision or self.precision
        self.memory_format = memory_format or self.memory_format
        self.raw_labels = raw_labels
        if fold == "all":
            cases = sorted({c for s in splits for c in s["train"] + s["val"]})
            self.train_cases, self.val_cases = cases, cases
        else:
            self.train_cases, self.val_cases = list(splits[fold]["train"]), list(splits[fold]["val"])
        self.num_epochs = int(self.num_epochs_override or self.config["num_epochs"])
        self.iterations = int(self.iterations_override or self.config["iterations_per_epoch"])
        self.val_iterations = int(self.config["val_iterations_per_epoch"])
        self.global_batch_size = int(self.config["batch_size"])
        self.batch_size = local_batch_size(self.global_batch_size, dist.world_size, dist.rank)
        # DDP averages the ranks' gradients with equal weights; this rank's share of the global batch undoes
        # that, so a 2/1/1/1 split of batch 5 trains as batch 5 (distributed.py). Exactly 1 in one process.
        self.rank_loss_weight = dist.world_size * self.batch_size / self.global_batch_size
        self.generator = torch.Generator().manual_seed(self.seed + 1000 * dist.rank)
        self.current_epoch = 0
        self.log = TrainingLog()
        self.best_ema: Optional[float] = None
        self.ema: Optional[float] = None
        if dist.is_main:
            self.fold_folder.mkdir(parents=True, exist_ok=True)
        self.print = TextLog(self.fold_folder / "training_log.txt" if dist.is_main else None, echo=dist.is_main)
        self.train_stream = None  # set by load_data in streamed mode
        self.train_has_dwi = False
        self.initialized = False

    # ---- hooks ------------------------------------------------------------------------------------------
    def build_network(self) -> nn.Module:
        raise NotImplementedError

    def build_loss(self) -> nn.Module:
        raise NotImplementedError

    def build_train_module(self) -> nn.Module:
        """The module DDP wraps: forward(batch tensors) -> (loss terms, logits)."""
        raise NotImplementedError

    def build_optimizer(self) -> torch.optim.Optimizer:
        params = list(self.network.parameters()) + list(self.loss.parameters())
        return build_optimizer(params, self.config["optimizer"])

    def build_scheduler(self):
        return build_scheduler(self.optimizer, self.config["lr_schedule"], self.iterations)

    def build_augmentation(self) -> Optional[SpatialAugmentation]:
        return SpatialAugmentation.from_plans(self.config["augmentation"])

    def load_data(self) -> None:
        """`data_mode` "resident": all slices on the device (the usual case); "streamed": training batches
        from memory-mapped cases through batchgenerators' workers (streaming.py), validation slices in host
        memory; "auto": resident when the arrays fit on the device, else streamed."""
        needed = nbytes_of_cases(self.data_folder, sorted(set(self.train_cases) | set(self.val_cases)))
        mode = self.data_mode
        if mode == "auto":
            mode = "resident" if fits_on_device(needed, self.device) else "streamed"
        pin = self.device.type == "cuda"
        self.train_stream = None
        if mode == "resident":
            self.data_location = f"{self.device} (resident, {needed / 2**20:.0f} MiB)"
            self.train_data = load_slices(self.data_folder, self.train_cases, self.device, self.use_dwi_if_present)
            self.val_data = load_slices(self.data_folder, self.val_cases, self.device, self.use_dwi_if_present)
            self.train_has_dwi = self.train_data.dwi is not None
            return
        from isles_pipeline.trainers.streaming import streamed_batches

        self.data_location = (f"streamed from memory-mapped cases ({needed / 2**20:.0f} MiB), "
                              f"{self.stream_processes} workers")
        self.train_data = None
        self.train_has_dwi = self.use_dwi_if_present and all(
            case_paths(self.data_folder, c)["dwi"].is_file() for c in self.train_cases)
        self.train_stream = streamed_batches(self.data_folder, self.train_cases, self.batch_size,
                                             self.config["foreground_oversampling"], self.train_has_dwi,
                                             self.seed + 1000 * self.dist.rank, self.stream_processes)
        self.val_data = load_slices(self.data_folder, self.val_cases, torch.device("cpu"), self.train_has_dwi)
        if pin:
            self.val_data = pinned(self.val_data)

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def validation_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Returns {"loss": scalar, "tp", "fp", "fn": scalars} (float32 on the device)."""
        raise NotImplementedError

    def final_validation_predictor(self):
        """An `inference.Predictor` of the trained network (one fold, no post-processing): final validation
        predicts exactly as isles_predict does."""
        raise NotImplementedError

    def on_train_start(self) -> None:
        if self.dist.is_main:
            for name, obj in (("plans.json", self.plans), ("dataset.json", self.dataset_json)):
                atomic_write_json(self.model_folder / name, obj)
        slices = (f" ({self.train_data.num_slices} slices, {len(self.train_data.lesion_slices)} with lesion)"
                  if self.train_data is not None else "")
        self.print(f"{type(self).__name__}: fold {self.fold}, {len(self.train_cases)} training cases{slices}, "
                   f"{len(self.val_cases)} validation cases; {self.num_epochs} epochs x {self.iterations} "
                   f"iterations, batch {self.global_batch_size} over {self.dist.world_size} process(es), "
                   f"device {self.device}, data on {self.data_location}")
        self.print(f"device paths: {self.acceleration.describe()}")
        for note in self.acceleration.notes:
            self.print(note)
        if self.acceleration.cuda_graphs and self.train_stream is not None:
            self.print("CUDA graphs with streamed data: each batch is copied into the graph's static inputs")

    # ---- set-up -----------------------------------------------------------------------------------------
    def initialize(self) -> None:
        torch.manual_seed(self.seed)
        np.random.seed(self.seed)
        random.seed(self.seed)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed slice size: let cuDNN pick its fastest kernels
        self.acceleration: Acceleration = resolve_acceleration(self.device, self.precision, self.memory_format,
                                                               self.compile_mode, self.dist.enabled, self.batch_size)
        self.network = self.build_network().to(self.device)
        self.loss = self.build_loss().to(self.device)
        if self.acceleration.channels_last:  # the loss holds networks A and B
            self.network = self.network.to(memory_format=torch.channels_last)
            self.loss = self.loss.to(memory_format=torch.channels_last)
        module = self.build_train_module()
        if self.dist.enabled:
            module = nn.parallel.DistributedDataParallel(
                module, device_ids=[self.dist.local_rank] if self.device.type == "cuda" else None,
                find_unused_parameters=self.find_unused_parameters())
        self.train_module = compile_module(module, self.acceleration)
        self.optimizer = self.build_optimizer()
        self.scheduler = self.build_scheduler()
        self.augmentation = self.build_augmentation()
        self.load_data()
        self.initialized = True

    def find_unused_parameters(self) -> bool:
        return True

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate this rank's mean loss weighted by its share of the global batch (see __init__)."""
        (loss * self.rank_loss_weight).backward()

    def autocast(self):
        """bf16 autocast when the acceleration says so (losses compute in float32 themselves), else nothing."""
        return self.acceleration.autocast()

    def step_begin(self) -> None:
        """Called before each compiled train/validation step: CUDA graph trees may then reuse the last
        step's output buffers (the loop keeps only detached copies)."""
        mark_step_begin(self.acceleration)

    # ---- checkpoints ------------------------------------------------------------------------------------
    def checkpoint_state(self) -> dict:
        return {
            "network_weights": {k: v.detach().cpu() for k, v in ckpt.unwrap(self.network).state_dict().items()},
            "trainer_name": type(self).__name__, "plans_name": self.plans["plans_name"],
            "configuration": self.configuration_name, "fold": self.fold, "epoch": self.current_epoch,
            "optimizer_state": self.optimizer.state_dict(), "scheduler_state": self.scheduler.state_dict(),
            "loss_state": self.loss.state_dict(), "rng_states": ckpt.capture_rng_states(self.generator),
            "logs": self.log.state(), "best_ema": self.best_ema, "ema_pseudo_dice": self.ema,
        }

    def save_checkpoint(self, name: str) -> None:
        """Called on every rank (the batch streams of all ranks are gathered); rank 0 writes."""
        streams = gather_objects(self.generator.get_state())
        if self.dist.is_main:
            state = self.checkpoint_state()
            state["rng_states"]["trainer_per_rank"] = streams
            ckpt.atomic_torch_save(state, self.fold_folder / name)

    def load_checkpoint(self, path: Path) -> None:
        state = ckpt.load_checkpoint(path)
        ckpt.unwrap(self.network).load_state_dict(state["network_weights"])
        self.loss.load_state_dict(state["loss_state"])
        self.optimizer.load_state_dict(state["optimizer_state"])
        self.scheduler.load_state_dict(state["scheduler_state"])
        ckpt.restore_rng_states(state["rng_states"], self.generator)
        streams = state["rng_states"].get("trainer_per_rank") or []
        if len(streams) == self.dist.world_size:
            self.generator.set_state(streams[self.dist.rank])
        elif self.dist.rank:  # saved with another number of processes: a fresh stream per rank
            self.generator.manual_seed(self.seed + 1000 * self.dist.rank + int(state["epoch"]))
        self.log = TrainingLog(state["logs"])
        self.current_epoch = int(state["epoch"])
        self.best_ema, self.ema = state["best_ema"], state["ema_pseudo_dice"]
        self.print(f"resumed from {Path(path).name} after epoch {self.current_epoch}")

    # ---- the loop ---------------------------------------------------------------------------------------
    def next_train_batch(self) -> Batch:
        if self.train_stream is not None:
            from isles_pipeline.trainers.streaming import batch_to_slices

            batch = batch_to_slices(next(self.train_stream), pin=self.device.type == "cuda")
            return self.gather(batch, torch.arange(batch.num_slices), self.augmentation, self.generator)
        idx = sample_indices(self.train_data.num_slices, self.train_data.lesion_slices, self.batch_size,
                             self.config["foreground_oversampling"], self.generator)
        return self.gather(self.train_data, idx, self.augmentation, self.generator)

    def gather(self, data: SliceSet, idx: torch.Tensor, augmentation, generator) -> Batch:
        frames, maps = frame_and_map_positions(self.config)
        return gather_batch(data, idx, frames, maps, augmentation, generator, self.device)

    def train_epoch(self) -> dict[str, float]:
        self.train_module.train()
        self.epoch_start_lr = self.optimizer.param_groups[0]["lr"]  # logged: the lr the epoch started with
        sums: dict[str, torch.Tensor] = {}
        bar = self._progress_bar(self.iterations, f"epoch {self.current_epoch}")
        for _ in bar:
            terms = self.train_step(self.next_train_batch())
            self.scheduler.step()
            for key, value in terms.items():
                sums[key] = sums.get(key, 0) + value.detach().float()
        keys = sorted(sums)
        weighted = torch.stack([sums[k] for k in keys]) / self.iterations * self.rank_loss_weight
        totals = all_reduce_sum(weighted) / self.dist.world_size  # the global batch's mean, as trained
        return {k: float(v) for k, v in zip(keys, totals.cpu())}

    @torch.no_grad()
    def validation_epoch(self) -> dict[str, float]:
        self.train_module.eval()
        generator = torch.Generator().manual_seed(self.seed + 7919 * (self.current_epoch + 1) + self.dist.rank)
        sums = torch.zeros(4, device=self.device)
        for _ in range(self.val_iterations):
            idx = sample_indices(self.val_data.num_slices, self.val_data.lesion_slices, self.batch_size,
                                 self.config["foreground_oversampling"], generator)
            out = self.validation_step(self.gather(self.val_data, idx, None, None))
            sums += torch.stack([out["loss"].float(), out["tp"], out["fp"], out["fn"]])
        loss, tp, fp, fn = (float(v) for v in all_reduce_sum(sums).cpu())
        dice = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) > 0 else 0.0
        return {"val_loss": loss / (self.val_iterations * self.dist.world_size), "pseudo_dice": dice}

    def on_epoch_end(self, train: dict[str, float], val: dict[str, float], seconds: float) -> None:
        self.ema = val["pseudo_dice"] if self.ema is None else \
            EMA_MOMENTUM * self.ema + (1 - EMA_MOMENTUM) * val["pseudo_dice"]
        self.log.append(epoch=self.current_epoch, lr=self.epoch_start_lr,
                        **{f"train_{k}": v for k, v in train.items()}, **val, ema_pseudo_dice=self.ema,
                        epoch_time_s=seconds)
        terms = ", ".join(f"{k} {v:.4f}" for k, v in train.items() if k != "total")
        self.print(f"epoch {self.current_epoch}: train loss {train['total']:.4f} ({terms}); val loss "
                   f"{val['val_loss']:.4f}; pseudo Dice {val['pseudo_dice']:.4f} (moving avg {self.ema:.4f}); "
                   f"lr {self.log.last('lr'):.6g}; {seconds:.1f} s")
        self.current_epoch += 1
        if self.best_ema is None or self.ema > self.best_ema:
            self.best_ema = self.ema
            self.save_checkpoint(ckpt.BEST)
            self.print(f"new best moving-average pseudo Dice {self.ema:.4f}: checkpoint_best.pth")
        if self.current_epoch % self.save_every == 0 and self.current_epoch < self.num_epochs:
            self.save_checkpoint(ckpt.LATEST)
        if self.dist.is_main:
            plot_progress(self.log, self.fold_folder / "progress.png")

    def on_train_end(self) -> None:
        self.stop_stream()
        self.save_checkpoint(ckpt.FINAL)
        if self.dist.is_main:  # as nnU-Net: the final checkpoint supersedes the interim one (35 MB a fold)
            (self.fold_folder / ckpt.LATEST).unlink(missing_ok=True)
        self.print("training done: checkpoint_final.pth written, checkpoint_latest.pth removed")

    def stop_stream(self) -> None:
        if getattr(self, "train_stream", None) is not None:
            self.train_stream._finish()
            self.train_stream = None

    def run_training(self) -> None:
        if not self.initialized:
            self.initialize()
        self.on_train_start()
        try:
            while self.current_epoch < self.num_epochs:
                start = time.perf_counter()
                train = self.train_epoch()
                val = self.validation_epoch()
                self.on_epoch_end(train, val, time.perf_counter() - start)
        except BaseException:
            self.stop_stream()
            raise
        self.on_train_end()

    def perform_final_validation(self, save_probabilities: bool = False) -> Optional[dict]:
        """Rank 0 predicts the fold's validation cases on their original grids (see final_validation)."""
        if not self.dist.is_main:
            return None
        from isles_pipeline.trainers.final_validation import validate_cases  # SimpleITK: only when validating

        ckpt.unwrap(self.network).eval()
        self.loss.eval()
        summary = validate_cases(self.final_validation_predictor(), self.data_folder, self.val_cases,
                                 self.fold_folder / "validation", save_probabilities,
                                 self.raw_labels, self.dataset_json.get("file_ending", ".nii.gz"), self.print)
        self.print(f"validation: mean Dice {summary['mean'].get('dice')} over {len(self.val_cases)} cases")
        return summary

    def _progress_bar(self, n: int, description: str):
        if not self.dist.is_main or not sys.stderr.isatty():
            return range(n)
        from tqdm import tqdm

        return tqdm(range(n), desc=description, leave=False)
