"""Data-parallel training over several processes (one per GPU, or several on the CPU for tests).

Launch: `torchrun --nproc_per_node N $(which isles_train) ...` (the environment names rank and world size)
or `isles_train ... -num_gpus N`, which spawns the N processes itself. Backend NCCL on CUDA, gloo on CPU.

- The plans' batch size is the GLOBAL batch B: rank r trains on n_r = `local_batch_size(B, world, r)` slices
  (ranks below B mod world get one more). DDP averages gradients over ranks with equal weights, so each rank
  backpropagates its mean loss times world * n_r / B (`BaseTrainer.backward`): the average is then the
  gradient of the mean over the B slices, as in one process (tests/test_ddp.py checks a 2/1 split of 3).
  The logged training loss is weighted the same way.
- Exact for terms that are means over slices (cross-entropy, L1, L2, feature matching); NOT for what depends
  on which slices share a rank: generalised Dice is computed over a rank's slices (its class weights and
  sums are batch-level), and normalisation statistics are per rank: BatchNorm, the input BN and
  SwitchNorm's batch part use each rank's n_r slices (no SyncBatchNorm), like the seed's multi-GPU training
  with per-GPU BN. A rank with one slice normalises by that slice's own statistics in BatchNorm's batch
  mode. Running statistics are broadcast from rank 0 at every forward (DDP's broadcast_buffers), so the
  saved model carries rank 0's. Instance and layer norm are per slice and unaffected.
- Every rank draws its own batches (generator seeded with seed + rank); rank 0 alone writes files (log,
  plots, checkpoints, final validation).
"""
from __future__ import annotations

import gc
import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def local_batch_size(global_batch: int, world_size: int, rank: int) -> int:
    """This rank's share of the global batch."""
    if global_batch < world_size:
        raise ValueError(f"batch size {global_batch} cannot be split over {world_size} processes")
    return global_batch // world_size + (1 if rank < global_batch % world_size else 0)


def context_from_environment() -> DistContext:
    """The torchrun variables, or a single process."""
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        return DistContext(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]),
                           int(os.environ.get("LOCAL_RANK", os.environ["RANK"])))
    return DistContext()


def init_process_group(ctx: DistContext, device: torch.device) -> None:
    if ctx.enabled and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=ctx.rank,
                                world_size=ctx.world_size)


def destroy_process_group() -> None:
    """Collect garbage first, then destroy the group, while the interpreter is whole. The finished trainer sits
    in reference cycles, and its DDP model's reducer holds gloo work objects; freed only at interpreter
    finalization they abort the process (SIGABRT, "terminate called without an active exception"; seen about
    once in 20 two-process test runs; see pytorch/pytorch PR 179291's description of the same crash)."""
    if dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks (no-op in a single process)."""
    if dist.is_initialized():
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def gather_objects(obj) -> list:
    """[obj of rank 0, obj of rank 1, ...] on every rank ([obj] in a single process)."""
    if not dist.is_initialized():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
