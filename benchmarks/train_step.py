"""Training throughput of the trainer's own loop: batch sampling with foreground oversampling from device-
resident slices, the one-grid augmentation and the chain's training step (forward, all losses, backward,
RMSprop, lr schedule), in slices/s, plus peak memory. Synthetic slices, so no dataset is needed; the
hyper-parameters come from the planner of the chosen preset (small: ISLESSmallPlanner, full: ISLESPlanner).

    python -m benchmarks.train_step [-device cpu|cuda] [-preset small|full] [-size N]
        [-slices N] [-steps N] [-warmup N] [-threads N] [--no_dwi] [--compile [reduce-overhead]]
        [-precision auto|bf16|fp32]

The device paths are the trainer's own (isles_pipeline.acceleration): "auto" is bf16 autocast + channels_last
on CUDA, float32 on the CPU; `--compile reduce-overhead` adds CUDA graphs on CUDA.

Peak memory is CUDA's max allocated, or on the CPU the process's peak RSS (data included).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import torch

from benchmarks.chain_step import peak_mib, reset_peak, timed
from isles_pipeline.planners.isles_planner import ISLESPlanner, ISLESSmallPlanner
from isles_pipeline.trainers.chain_trainer import ISLESChainTrainer
from isles_pipeline.trainers.data import SliceSet

PLANNERS = {"small": ISLESSmallPlanner, "full": ISLESPlanner}
DEFAULT_SIZE = {"small": 128, "full": 256}  # ISLES 2018's 256 x 256 slices, halved by the small planner


def synthetic_configuration(preset: str, size: int) -> dict:
    """The planner's method values (network, loss, optimiser, schedule, augmentation) at a given slice size."""
    planner = PLANNERS[preset]({"total_slices": 400}, {})
    frames, maps = planner.channels()
    return {**planner.training(), "network": planner.network(len(maps)), "frame_channels": frames,
            "map_channels": maps, "input_channels": frames + maps, "patch_size": [size, size],
            "in_plane_size": [size, size], "inference": {"threshold": 0.5, "ensemble": "mean_probability"}}


def synthetic_slices(n: int, channels: int, size: int, device: torch.device, dwi: bool) -> SliceSet:
    """Random inputs with a disc lesion on every other slice, float16 like the preprocessed data."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    disc = ((yy - size // 3) ** 2 + (xx - size // 2) ** 2 < (size // 8) ** 2)
    seg = torch.zeros(n, size, size, dtype=torch.uint8)
    seg[::2] = disc.to(torch.uint8)
    inputs = torch.randn(n, channels, size, size, generator=g).half()
    weight = (1 + 4 * seg.float()).half()
    dwi_t = torch.randn(n, size, size, generator=g).half() if dwi else None
    lesion = torch.arange(0, n, 2)
    return SliceSet(inputs.to(device), seg.to(device), weight.to(device),
                    dwi_t.to(device) if dwi_t is not None else None, lesion, ["synthetic"])


class _SyntheticTrainer(ISLESChainTrainer):
    slices, with_dwi = 40, True

    def load_data(self) -> None:
        channels = len(self.config["input_channels"])
        self.train_data = self.val_data = synthetic_slices(self.slices, channels, self.config["patch_size"][0],
                                                           self.device, self.with_dwi)
        self.data_location = self.device
        self.train_has_dwi = self.with_dwi


def build_trainer(args: argparse.Namespace, folder: Path) -> ISLESChainTrainer:
    size = args.size or DEFAULT_SIZE[args.preset]
    config = synthetic_configuration(args.preset, size)
    _SyntheticTrainer.slices, _SyntheticTrainer.with_dwi = args.slices, not args.no_dwi
    trainer = _SyntheticTrainer(plans={"plans_name": "benchmark", "configurations": {"2d": config}},
                                configuration="2d", fold=0, dataset_json={}, data_folder=folder,
                                splits=[{"train": ["synthetic"], "val": ["synthetic"]}], model_folder=folder,
                                device=torch.device(args.device), compile_network=args.compile or False,
                                precision=getattr(args, "precision", None))
    trainer.print.echo = False
    trainer.initialize()
    trainer.train_module.train()
    return trainer


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.train_step", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-device", "--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   choices=["cpu", "cuda"])
    p.add_argument("-preset", "--preset", default="small", choices=sorted(PLANNERS))
    p.add_argument("-size", "--size", type=int, default=None, help="slice size (default 128 small, 256 full)")
    p.add_argument("-slices", "--slices", type=int, default=40, help="resident synthetic slices")
    p.add_argument("-steps", "--steps", type=int, default=10)
    p.add_argument("-warmup", "--warmup", type=int, default=3)
    p.add_argument("-threads", "--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    p.add_argument("--no_dwi", "--no-dwi", action="store_true")
    p.add_argument("--compile", nargs="?", const="default", default=None, choices=["default", "reduce-overhead"])
    p.add_argument("-precision", "--precision", default=None, choices=["auto", "bf16", "fp32"])
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("-device cuda, but CUDA is not available")
    return args


def measure(args: argparse.Namespace) -> dict:
    """Figures of the trainer's own step: data + augmentation + step, data + augmentation, augmentation alone."""
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = build_trainer(args, Path(tmp))
        reset_peak(device)

        def step() -> None:
            trainer.train_step(trainer.next_train_batch())
            trainer.scheduler.step()

        step_s = timed(step, args.steps, args.warmup, device)
        data_s = timed(trainer.next_train_batch, args.steps, args.warmup, device)
        batch = trainer.gather(trainer.train_data, torch.arange(trainer.batch_size), None, None)
        images = torch.cat([batch.frames, batch.maps, batch.weight], dim=1)
        augment_s = timed(lambda: trainer.augmentation.augment(images, batch.target, trainer.generator),
                          args.steps, args.warmup, device)
        peak = peak_mib(device)
        trainer.stop_stream()
    return {"device": args.device, "preset": args.preset, "size": trainer.config["patch_size"][0],
            "batch": trainer.batch_size, "paths": trainer.acceleration.describe(),
            "notes": list(trainer.acceleration.notes), "dwi": not args.no_dwi,
            "train_slices_per_s": trainer.batch_size / step_s, "step_ms": step_s * 1000,
            "data_and_augmentation_ms": data_s * 1000, "augmentation_ms": augment_s * 1000, "peak_mib": peak}


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    r = measure(args)
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device {name} | torch {torch.__version__} | preset {r['preset']} | {r['size']}x{r['size']} | "
          f"batch {r['batch']} | {r['paths']} | DWI {'on' if r['dwi'] else 'off'}")
    for note in r["notes"]:
        print(note)
    print(f"training: {r['train_slices_per_s']:.2f} slices/s "
          f"(data + augmentation + step, {r['step_ms']:.1f} ms/batch); "
          f"data + augmentation alone {r['data_and_augmentation_ms']:.2f} ms/batch, augmentation alone "
          f"{r['augmentation_ms']:.2f} ms/batch; peak memory {r['peak_mib']:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
