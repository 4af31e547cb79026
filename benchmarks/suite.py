"""`python -m benchmarks.suite`: every stage's benchmark on the present machine, one table.

Each stage runs in its own Python process (so peak memory is that stage's, not the maximum so far) and
reports a JSON dict; the suite prints a table and writes all of it, with machine and date, to `-o`.

    python -m benchmarks.suite          # 94 cases at 256 x 256; chain and inference: full preset on a GPU,
                                        # small on a CPU
    python -m benchmarks.suite --quick  # 12 cases at 128 x 128, small preset: a smoke run of the command
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from isles_pipeline.cli.errors import reports_file_errors
from isles_pipeline.files import atomic_write_json

STAGES = ("generate_and_convert", "preprocess", "chain_step", "inference")


def _stage(name: str, options: dict) -> dict:
    """Run one stage in this process and return its figures (called in the child process)."""
    work = Path(options["work"])
    if name == "generate_and_convert":
        from benchmarks import conversion

        return conversion.run(work, options["cases"], options["np"], options["size"])
    if name == "preprocess":
        from benchmarks import preprocess

        return preprocess.run(work, options["cases"], options["np"], options["size"], options["planner"])
    if name == "chain_step":
        import torch

        from benchmarks import chain_step

        args = chain_step.parse_args(["-preset", options["preset"], "-device", options["device"]]
                                     + (["--bf16", "--channels_last"] if options["device"] == "cuda" else []))
        result = chain_step.measure(args, "switch")
        return {"preset": options["preset"], "device": options["device"], "torch_threads": torch.get_num_threads(),
                "batch": args.batch, **vars(result)}
    if name == "inference":
        from benchmarks import inference

        return inference.run(inference.parse_args(["-preset", options["preset"], "-device", options["device"]]))
    raise ValueError(f"unknown stage {name!r}")


def _run_child(name: str, options: dict) -> dict:
    command = [sys.executable, "-m", "benchmarks.suite", "-stage", name,
               "-options", json.dumps(options)]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail}"}
    return json.loads(lines[-1])


def _machine() -> dict:
    import torch

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"date": datetime.date.today().isoformat(), "cpu_count": os.cpu_count(), "gpu": gpu,
            "platform": platform.platform(), "torch": torch.__version__}


def _rows(results: dict) -> list[tuple[str, str]]:
    rows = []
    conversion = results.get("generate_and_convert", {})
    if "error" not in conversion and conversion:
        rows.append((f"generate {conversion['num_cases']} cases at {conversion['size']} px",
                     f"{conversion['generate_s']} s, {conversion['num_cases'] / conversion['generate_s']:.2f} cases/s, "
                     f"peak {conversion['generate_peak_rss_gb']} GB"))
        rows.append(("convert them", f"{conversion['convert_s']} s, "
                     f"{conversion['num_cases'] / conversion['convert_s']:.2f} cases/s, "
                     f"peak {conversion['convert_peak_rss_gb']} GB"))
    prep = results.get("preprocess", {})
    if "error" not in prep and prep:
        rows.append(("fingerprint + plan + preprocess", f"{prep['total_s']} s, "
                     f"{prep['num_cases'] / prep['total_s']:.2f} cases/s, peak {prep['peak_rss_tree_gb']} GB"))
    chain = results.get("chain_step", {})
    if "error" not in chain and chain:
        rows.append((f"chain training step ({chain['preset']}, batch {chain['batch']})",
                     f"{chain['train_slices_per_s']:.2f} slices/s, peak {chain['train_peak_mib']:.0f} MiB; "
                     f"inference {chain['inference_slices_per_s']:.2f} slices/s"))
    infer = results.get("inference", {})
    if "error" not in infer and infer:
        seconds = infer["seconds"]
        rows.append((f"predict one case, {infer['folds']} folds ({infer['preset']})",
                     ", ".join(f"{stage} {seconds[stage] * 1000:.0f} ms" for stage in (
                         "preprocessing", "network", "resampling", "postprocessing", "writing"))))
    rows += [(name, results[name]["error"]) for name in STAGES if "error" in results.get(name, {})]
    return rows


def run(options: dict, stages: Sequence[str] = STAGES) -> dict:
    results = {"machine": _machine(), "options": options}
    for name in stages:
        print(f"benchmark: {name} ...", flush=True)
        results[name] = _run_child(name, options)
    return results


@reports_file_errors
def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.suite", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("-o", type=Path, default=Path("benchmark_results.json"), help="results JSON")
    parser.add_argument("-np", type=int, default=2, help="worker processes for the data stages")
    parser.add_argument("--quick", action="store_true", help="12 cases at 128 px, small preset")
    parser.add_argument("-stages", "--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("-stage", "--stage", help=argparse.SUPPRESS)
    parser.add_argument("-options", "--options", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage:  # child process: one stage, JSON on the last line
        print(json.dumps(_stage(args.stage, json.loads(args.options)), default=str))
        return 0
    from isles_pipeline.devices import resolve_device

    device = resolve_device(args.device).type
    preset = "full" if device == "cuda" and not args.quick else "small"
    with tempfile.TemporaryDirectory(prefix="isles_benchmark_") as work:
        options = {"work": work, "device": device, "preset": preset, "np": args.np,
                   "cases": 12 if args.quick else 94, "size": 128 if args.quick else 256,
                   "planner": "ISLESSmallPlanner" if preset == "small" else "ISLESPlanner"}
        results = run(options, args.stages)
    machine = results["machine"]
    print(f"\n{machine['date']}, {machine['cpu_count']} CPU cores, GPU: {machine['gpu'] or 'none'}, "
          f"torch {machine['torch']}")
    rows = _rows(results)
    width = max(len(name) for name, _ in rows) if rows else 0
    for name, value in rows:
        print(f"{name:{width}s}  {value}")
    atomic_write_json(args.o, json.loads(json.dumps(results, default=str)))
    print(f"results: {args.o}")
    return 1 if any("error" in results.get(name, {}) for name in args.stages) else 0


if __name__ == "__main__":
    sys.exit(main())
