"""Micro-benchmark of one training step of the chain (forward, all losses, backward, RMSprop step) and of
inference, in slices/s and peak memory, on synthetic tensors already resident on the device.

    python -m benchmarks.chain_step [-device cpu|cuda] [-preset small|full] [-batch 5]
        [-size N] [--bf16] [--channels_last] [--compile [-compile_mode MODE]] [-steps N] [-warmup N]
        [-threads N] [--no_dwi] [--compare_norm]

`--compare_norm` runs the same measurement with a SwitchNorm segmentor and with a BatchNorm one. Peak memory
is CUDA's max allocated (reset per phase) or, on CPU, the process's peak RSS so far (it cannot be reset).
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch

from isles_pipeline.losses import ChainLoss
from isles_pipeline.networks import IntegratedChain, preset


@dataclass
class Measurement:
    train_slices_per_s: float
    inference_slices_per_s: float
    train_peak_mib: float
    inference_peak_mib: float


def synthetic_batch(batch: int, size: int, device: torch.device, dwi: bool) -> dict[str, Optional[torch.Tensor]]:
    """Random inputs of the chain's shapes with a square lesion, so every loss term is non-trivial."""
    g = torch.Generator().manual_seed(0)
    target = torch.zeros(batch, 1, size, size)
    target[:, :, size // 4: size // 2, size // 3: size // 2] = 1
    tensors = {
        "frames": torch.randn(batch, 11, size, size, generator=g),
        "maps": torch.randn(batch, 6, size, size, generator=g),
        "target": target,
        "weight": 1.0 + 4.0 * target,
        "dwi": torch.randn(batch, 1, size, size, generator=g) if dwi else None,
    }
    return {k: (v.to(device) if v is not None else None) for k, v in tensors.items()}


def peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def timed(fn: Callable[[], None], steps: int, warmup: int, device: torch.device) -> float:
    """Seconds per call after `warmup` untimed calls (compilation, allocator and oneDNN warm-up)."""
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / steps


def measure(args: argparse.Namespace, segmentor_norm: str) -> Measurement:
    device = torch.device(args.device)
    config = preset(args.preset)
    size = args.size or config["patch_size"][0]
    torch.manual_seed(0)
    chain = IntegratedChain(**config["chain"], segmentor_norm=segmentor_norm).to(device)
    loss = ChainLoss(feature_base_channels=config["feature_net"]["base_channels"]).to(device)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    chain, loss = chain.to(memory_format=memory_format), loss.to(memory_format=memory_format)
    data = synthetic_batch(args.batch, size, device, dwi=not args.no_dwi)
    data = {k: (v.contiguous(memory_format=memory_format) if v is not None else None) for k, v in data.items()}
    optimiser = torch.optim.RMSprop([*chain.parameters(), *loss.parameters()], lr=0.002)
    forward, loss_fn = chain, loss
    if args.compile:
        forward = torch.compile(chain, mode=args.compile_mode)
        loss_fn = torch.compile(loss, mode=args.compile_mode)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)

    def train_step() -> None:
        with autocast:
            out = forward(data["frames"], data["maps"])
            terms = loss_fn(out, data["target"], data["weight"], data["dwi"])
        terms["total"].backward()
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)

    def inference_step() -> None:
        with torch.inference_mode(), autocast:
            torch.softmax(forward(data["frames"], data["maps"]).segmentor_logits.float(), dim=1)

    chain.train()
    loss.train()
    reset_peak(device)
    train_s = timed(train_step, args.steps, args.warmup, device)
    train_peak = peak_mib(device)
    chain.eval()
    reset_peak(device)
    infer_s = timed(inference_step, args.steps, args.warmup, device)
    return Measurement(args.batch / train_s, args.batch / infer_s, train_peak, peak_mib(device))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.chain_step", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-device", "--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   choices=["cpu", "cuda"])
    p.add_argument("-preset", "--preset", default="small", choices=["small", "full"])
    p.add_argument("-batch", "--batch", type=int, default=5)
    p.add_argument("-size", "--size", type=int, default=None, help="slice size (default: the preset's patch size)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast")
    p.add_argument("--channels_last", "--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile the chain and the loss")
    p.add_argument("-compile_mode", "--compile-mode", default=None,
                   help="torch.compile mode, e.g. reduce-overhead (CUDA graphs)")
    p.add_argument("-steps", "--steps", type=int, default=10, help="timed steps per phase")
    p.add_argument("-warmup", "--warmup", type=int, default=3, help="untimed steps per phase")
    p.add_argument("-threads", "--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    p.add_argument("--no_dwi", "--no-dwi", action="store_true",
                   help="no DWI target: generator terms off, as on public ISLES")
    p.add_argument("--compare_norm", "--compare-norm", action="store_true", help="SwitchNorm vs BatchNorm segmentor")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("-device cuda, but CUDA is not available")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    size = args.size or preset(args.preset)["patch_size"][0]
    device_name = (torch.cuda.get_device_name() if args.device == "cuda"
                   else f"cpu ({torch.get_num_threads()} threads)")
    print(f"device {device_name} | torch {torch.__version__} | preset {args.preset} | {size}x{size} | "
          f"batch {args.batch} | {'bf16' if args.bf16 else 'fp32'}"
          f"{' | channels_last' if args.channels_last else ''} | "
          f"{'compile ' + (args.compile_mode or 'default') if args.compile else 'eager'} | "
          f"DWI {'off' if args.no_dwi else 'on'} | {args.steps} steps after {args.warmup} warm-up")
    memory = "CUDA max allocated" if args.device == "cuda" else "CPU peak RSS of the process so far"
    results = {}
    for norm in (["switch", "batch"] if args.compare_norm else ["switch"]):
        m = measure(args, norm)
        results[norm] = m
        print(f"segmentor {norm:6s} norm: train {m.train_slices_per_s:8.2f} slices/s, "
              f"inference {m.inference_slices_per_s:8.2f} slices/s | peak memory train "
              f"{m.train_peak_mib:8.0f} MiB, inference {m.inference_peak_mib:8.0f} MiB ({memory})")
    if args.compare_norm:
        s, b = results["switch"], results["batch"]
        print(f"BatchNorm / SwitchNorm speed: train x{b.train_slices_per_s / s.train_slices_per_s:.2f}, "
              f"inference x{b.inference_slices_per_s / s.inference_slices_per_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
