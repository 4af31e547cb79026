"""Speed and memory of `compute_maps` on a full-size series: 16 slices of 256 x 256, 50 frames.

    python -m benchmarks.perfusion [-device auto|cpu|cuda] [-method osvd] [-repeats 1]
        [--no_denoise] [-threads N] [-stages]

On a CPU shared with other jobs, torch's two OpenMP threads spin-wait on each other and CPU time balloons:
`-threads 1` gives the figure a busy machine can reproduce. It limits torch's threads (the GPU engine's
kernels), numpy's BLAS threads and the CPU engine's own (`compute_maps(threads=)`).

The series is a phantom slab (the project's simulator, 16 slices, 1 s frames), simulated before timing.
Reported: wall time of each `compute_maps` call, CPU time, the peak resident memory of the process during the
calls (`PeakMemory`) and the resident memory before them (the series itself, ~210 MB, is counted in both).
`-stages` adds one more call under cProfile (CPU clock) and reports the CPU seconds of each step
(`stage_cpu_s`); CPU seconds are the figure a machine shared with other jobs reproduces, wall time is not.
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import json
import pstats
import resource
import time

import numpy as np
import torch

from benchmarks.preprocess import PeakMemory
from isles_pipeline.perfusion import compute_maps
from isles_pipeline.phantom.case import Patient, simulate_slab


def full_size_series(num_slices: int = 16, size: int = 256, frames: int = 50, seed: int = 0):
    rng = np.random.default_rng(seed)
    patient = dataclasses.replace(Patient.draw(rng, 1, size), num_slices=num_slices, slice_mm=5.0,
                                  frame_times_s=tuple(float(t) for t in range(frames)))
    case = simulate_slab(rng, patient, 0, size)
    return case["series"], case["spacing_zyx"]


# step of `compute_maps` -> (module, function) pairs whose cumulative CPU time it is
STAGES = {
    "input check, head curve, noise SD": [("compute", "check_series"), ("compute", "_head_curve"),
                                          ("denoise", "estimate_noise_sd")],
    "bilateral denoising": [("denoise", "profile_bilateral_inside"), ("numpy_kernels", "profile_bilateral_inside")],
    "masks": [("masks", "tissue_masks")],
    "parenchyma smoothing": [("compute", "_smooth_parenchyma")],
    "AIF and VOF": [("aif", "select_arterial_input")],
    "deconvolution": [("deconvolution", "for_aif"), ("deconvolution", "residues"), ("numpy_kernels", "for_aif"),
                      ("numpy_kernels", "residues")],
    "CBF and Tmax": [("maps", "flow_and_tmax")],
    "CBV, TTP, MTT": [("maps", "blood_volume"), ("maps", "time_to_peak"), ("maps", "transit_time")],
}


def stage_cpu_seconds(series, times, spacing, **settings) -> dict:
    """CPU seconds of each step of one `compute_maps` call (cProfile with the process CPU clock); `other` is
    the rest: copies, baseline subtraction, the search region, masking the maps."""
    profiler = cProfile.Profile(time.process_time)
    profiler.runcall(compute_maps, series, times, spacing, **settings)
    stats = pstats.Stats(profiler).stats  # (file, line, function) -> (calls, calls, own, cumulative, callers)
    cumulative = {(file.rsplit("/", 1)[-1].removesuffix(".py"), function): row[3]
                  for (file, _, function), row in stats.items() if "isles_pipeline/perfusion/" in file}
    total = cumulative.get(("compute", "compute_maps"), 0.0)
    stages = {stage: round(sum(cumulative.get(key, 0.0) for key in keys), 3) for stage, keys in STAGES.items()}
    stages["other"] = round(total - sum(stages.values()), 3)
    stages["total"] = round(total, 3)
    return stages


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(device: str = "auto", method: str = "osvd", repeats: int = 1, num_slices: int = 16, size: int = 256,
        frames: int = 50, denoise: bool = True, stages: bool = False, threads: int | None = None) -> dict:
    series, spacing = full_size_series(num_slices, size, frames)
    times = np.arange(series.shape[0], dtype=float)
    with PeakMemory() as idle:
        time.sleep(0.2)
    walls, cpus = [], []
    with PeakMemory() as memory:
        for _ in range(repeats):
            start, cpu = time.perf_counter(), _cpu_seconds()
            result = compute_maps(series, times, spacing, method=method, device=device, denoise=denoise,
                                  threads=threads)
            if result.device.startswith("cuda"):
                torch.cuda.synchronize()
            walls.append(time.perf_counter() - start)
            cpus.append(_cpu_seconds() - cpu)
    report = {
        "series_shape_tzyx": list(series.shape), "method": method, "device": result.device, "denoise": denoise,
        "torch_threads": torch.get_num_threads(), "engine_threads": threads, "wall_s": [round(w, 2) for w in walls],
        "cpu_s": [round(c, 1) for c in cpus], "peak_rss_gb": round(memory.peak_bytes / 1e9, 3),
        "rss_before_gb": round(idle.peak_bytes / 1e9, 3), "brain_voxels": int(result.masks.valid.sum()),
    }
    if stages:
        report["stage_cpu_s"] = stage_cpu_seconds(series, times, spacing, method=method, device=device,
                                                  denoise=denoise, threads=1)  # cProfile sees one thread
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("-method", default="osvd")
    parser.add_argument("-repeats", type=int, default=1)
    parser.add_argument("-slices", type=int, default=16)
    parser.add_argument("-size", type=int, default=256)
    parser.add_argument("-frames", type=int, default=50)
    parser.add_argument("--no_denoise", action="store_true", help="time the deconvolution path alone")
    parser.add_argument("-threads", type=int, default=None,
                        help="threads: torch's intra-op, numpy's BLAS and the CPU engine's (default: theirs)")
    parser.add_argument("--stages", action="store_true", help="also the CPU seconds of each step (one more call)")
    args = parser.parse_args(argv)
    limits = contextlib.nullcontext()
    if args.threads:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        limits = threadpool_limits(args.threads)
    with limits:
        print(json.dumps(run(args.device, args.method, args.repeats, args.slices, args.size, args.frames,
                             not args.no_denoise, args.stages, args.threads)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
