"""Benchmark of the phantom generator and the converter: wall time and peak memory of each step.

    python -m benchmarks.conversion -n 94 -np 2 [--generate_only]

Generates `-n` TRAINING cases at 256 x 256 into a work folder, then converts them to the raw format, each
step timed separately with the peak resident memory of the whole process tree (see `PeakMemory`).
Generation includes everything a case costs: the physics, the noise, and each centre's vendor software
deconvolving the series into its maps; `--generate_only` stops there (the phantom's own speed figure,
without the conversion's minutes). Wall time moves with other load on the machine; the CPU seconds
(this process and its workers) and the load averages before and after say how much.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.preprocess import PeakMemory


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children: unlike wall time, barely moved by other load."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(step):
    with PeakMemory() as memory:
        start, cpu_start = time.perf_counter(), _cpu_seconds()
        value = step()
        elapsed, cpu = time.perf_counter() - start, _cpu_seconds() - cpu_start
    return value, round(elapsed, 2), round(cpu, 1), round(memory.peak_bytes / 1e9, 3)


def _size_gb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e9, 2)


def run(work: Path, num_cases: int = 94, num_processes: int = 2, size: int = 256, convert: bool = True) -> dict:
    from isles_pipeline.dataset_conversion.convert import convert_isles2018
    from isles_pipeline.phantom import generate_phantom

    training = work / "phantom" / "TRAINING"  # the layout benchmarks.preprocess reuses
    shutil.rmtree(training, ignore_errors=True)
    shutil.rmtree(work / "raw", ignore_errors=True)
    load_before = os.getloadavg()[0]
    _, generate_s, generate_cpu_s, generate_gb = _timed(
        lambda: generate_phantom(training, num_cases, "TRAINING", 0, size, num_processes=num_processes))
    load_after_generation = os.getloadavg()[0]
    figures = {
        "num_cases": num_cases, "size": size, "num_processes": num_processes, "cpu_count": os.cpu_count(),
        "load_average_before": round(load_before, 2), "load_average_after_generation": round(load_after_generation, 2),
        "generate_s": generate_s, "generate_cpu_s": generate_cpu_s,
        "generate_cpu_s_per_case": round(generate_cpu_s / max(num_cases, 1), 2), "generate_peak_rss_gb": generate_gb,
        "phantom_on_disk_gb": _size_gb(training),
    }
    if not convert:
        return figures
    result, convert_s, convert_cpu_s, convert_gb = _timed(
        lambda: convert_isles2018(training, num_processes=num_processes, output_root=work / "raw"))
    return dict(figures, load_average_after=round(os.getloadavg()[0], 2),
                convert_s=convert_s, convert_cpu_s=convert_cpu_s, convert_peak_rss_gb=convert_gb,
                raw_on_disk_gb=_size_gb(work / "raw"), converted=len(result.converted), failed=len(result.failures))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=94, help="TRAINING cases (default 94, as ISLES 2018)")
    parser.add_argument("-np", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("-size", type=int, default=256, help="in-plane size (default 256)")
    parser.add_argument("-o", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    parser.add_argument("--generate_only", action="store_true", help="time the phantom generation only")
    args = parser.parse_args(argv)
    work = args.o or Path(tempfile.mkdtemp(prefix="isles_bench_conversion_"))
    try:
        result = run(work, args.n, args.np, args.size, convert=not args.generate_only)
    finally:
        if args.o is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 1 if result.get("failed") else 0


if __name__ == "__main__":
    raise SystemExit(main())
