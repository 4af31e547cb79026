"""Benchmark of plan-and-preprocess on the phantom: wall time per step and peak resident memory.

    python -m benchmarks.preprocess -n 94 -np 2

generates the 94-case training phantom (once, into -o), converts it to the raw format, then times the three
steps with clean=True. Peak memory is the largest sum of resident set sizes over this process and all its
descendants, sampled every 50 ms from /proc (shared pages count once per process, so it over-states rather
than under-states); getrusage's per-process maxima are reported beside it. Linux only.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional, Sequence

from isles_pipeline.files import atomic_write_json, read_json
from isles_pipeline.paths import temporary_environment

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def _process_tree_rss(root: int) -> int:
    """Bytes resident in `root` and its descendants (from /proc/<pid>/stat and statm)."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    parents[int(entry.name)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier += children
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE_BYTES
        except (OSError, IndexError, ValueError):
            continue
    return total


class PeakMemory:
    """Context manager sampling the process tree's total RSS in a thread; `.peak_bytes` afterwards."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s, self.peak_bytes = interval_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, _process_tree_rss(os.getpid()))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def prepare_phantom_dataset(work: Path, num_cases: int, size: int, num_processes: int) -> None:
    """Phantom in work/phantom and its raw dataset in work/raw, made once."""
    from isles_pipeline.dataset_conversion.convert import convert_isles2018
    from isles_pipeline.phantom import generate_phantom

    phantom = work / "phantom"
    if not (phantom / "TRAINING").is_dir():
        generate_phantom(phantom / "TRAINING", num_cases=num_cases, split="TRAINING", seed=0, size=size,
                         num_processes=num_processes)
    if not any((work / "raw").glob("Dataset018_*")):
        convert_isles2018(phantom / "TRAINING", None, dataset_id=18, name="ISLES2018", num_processes=num_processes)


def run(work: Path, num_cases: int = 94, num_processes: int = 2, size: int = 256,
        planner: str = "ISLESPlanner") -> dict:
    """Prepare the data (untimed), then time fingerprint, planning and preprocessing with clean=True; the data
    roots point under `work` for the call only (the caller's environment is restored)."""
    roots = {f"ISLES_{name}": str(Path(work) / name) for name in ("raw", "preprocessed", "results")}
    with temporary_environment(roots):
        return _prepare_and_time(Path(work), num_cases, num_processes, size, planner)


def _prepare_and_time(work: Path, num_cases: int, num_processes: int, size: int, planner: str) -> dict:
    prepare_phantom_dataset(work, num_cases, size, num_processes)
    from isles_pipeline.planners import api

    timings = {}
    with PeakMemory() as memory:
        start = time.perf_counter()
        fingerprint = api.extract_fingerprint(18, num_processes, clean=True)
        timings["fingerprint_s"] = time.perf_counter() - start
        plans_path = api.plan_experiment(18, planner, clean=True)
        timings["plan_s"] = time.perf_counter() - start - timings["fingerprint_s"]
        report = api.preprocess(18, read_json(plans_path)["plans_name"], "2d", num_processes, clean=True)
        timings["total_s"] = time.perf_counter() - start
    timings["preprocess_s"] = timings["total_s"] - timings["fingerprint_s"] - timings["plan_s"]
    return {
        "num_cases": num_cases, "num_processes": num_processes, "size": size, "planner": planner,
        "total_slices": fingerprint["total_slices"], "processed": len(report.processed),
        "failed": report.failed, **{k: round(v, 2) for k, v in timings.items()},
        "peak_rss_tree_gb": round(memory.peak_bytes / 1e9, 3),
        "max_rss_self_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9, 3),
        "max_rss_largest_child_gb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e9, 3),
        "cpu_count": os.cpu_count(),
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark plan-and-preprocess on the phantom.")
    parser.add_argument("-n", type=int, default=94, help="phantom training cases (default 94)")
    parser.add_argument("-np", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("-size", type=int, default=256, help="phantom in-plane size (default 256)")
    parser.add_argument("-pl", default="ISLESPlanner", help="planner (default ISLESPlanner)")
    parser.add_argument("-o", type=Path, default=None,
                        help="work folder, reused between runs (default: a new temporary folder)")
    args = parser.parse_args(argv)
    work = args.o or Path(tempfile.mkdtemp(prefix="isles_bench_preprocess_"))
    work.mkdir(parents=True, exist_ok=True)
    result = run(work, args.n, args.np, args.size, args.pl)
    print(json.dumps(result, indent=2))
    atomic_write_json(work / "benchmark_preprocess.json", result)
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
