"""The prepared device check: one command that, on a bare GPU machine holding only PyTorch (and NumPy), runs
every CUDA path once, measures it against the project's targets and writes `gpu_check.json` and
`gpu_check.md` (a table with a target column).

    python -m benchmarks.gpu_check -prepare .gpu_check/phantom.tar.gz   # here: SimpleITK etc.
    scripts/gpu_check.sh                          # on the GPU machine (carry .gpu_check), under 8 minutes
    python -m benchmarks.gpu_check -device cpu --quick -phantom P.tar.gz -o OUT   # smoke

Sections, in order of importance, each isolated (an error is recorded and the next runs) and skipped when
the time budget (`-budget_s`, default 390 s) would be overrun. Eager figures come first, compiled rows
after them, so a slow compiler costs rows, never the whole check:
  cuda_tests       tests/test_cuda_paths.py under pytest (skipped on a CPU)
  chain_step       the full chain at batch 5 on resident synthetic tensors (benchmarks.chain_step): eager,
                   torch.compile, CUDA graphs; SwitchNorm and BatchNorm segmentors
  train_step       the trainer's own step with data sampling and augmentation (benchmarks.train_step),
                   eager and CUDA graphs; augmentation alone; peak memory
  inference        a 16-slice 256 x 256 case through 4 folds, network time only, synchronised
  short_training   the full configuration trained briefly on the carried preprocessed phantom; loss falling
Nothing here imports SimpleITK, batchgenerators or acvl-utils, except `-prepare` (run here).
`--quick` shrinks everything (small preset, 64 px, 2 steps) so the whole check runs on a CPU in about a
minute; on a CPU the compiled rows are skipped unless `--with_compile` (Inductor on 2 cores takes minutes).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from benchmarks.gpu_check_phantom import MANIFEST, prepare_phantom

# The speed targets (one H100 or H200); each row of the table names the one it is judged by.
TARGETS = {
    "train_slices_per_s": (">=", 400.0, "full chain, batch 5, data + augmentation, training slices/s"),
    "switch_over_batch_norm": ("<=", 1.3, "SwitchNorm segmentor cost / BatchNorm segmentor cost"),
    "augmentation_ms": ("<=", 1.0, "augmentation ms per batch"),
    "inference_network_ms": ("<=", 40.0, "16-slice case through 4 folds, network ms"),
    "peak_gib": ("<=", 8.0, "peak GPU memory at batch 5, GiB"),
}


# ---- the sections ----------------------------------------------------------------------------------------
def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def section_cuda_tests(opts: argparse.Namespace, device: torch.device, compiled: bool) -> dict:
    """tests/test_cuda_paths.py in a child pytest, without the suite's conftest (it needs SimpleITK)."""
    tests = Path(__file__).resolve().parents[1] / "tests" / "test_cuda_paths.py"
    if device.type != "cuda":
        return {"skipped": "no CUDA device"}
    if not tests.is_file():
        return {"error": f"{tests} not found (run from a checkout)"}
    timeout = max(60.0, _DEADLINE[0] - time.monotonic() + 60.0)
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "--noconftest", "-p", "no:cacheprovider",
                               str(tests)], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"the CUDA tests ran past {timeout:.0f} s"}
    tail = [line for line in done.stdout.splitlines() if line.strip()][-12:]
    return {"returncode": done.returncode, "summary": tail[-1] if tail else "", "tail": tail,
            **({"error": "CUDA tests failed"} if done.returncode else {})}


def section_chain_step(opts: argparse.Namespace, device: torch.device, compiled: bool) -> dict:
    """benchmarks.chain_step.measure per mode and segmentor norm: eager in the first pass; CUDA graphs, then
    torch.compile's default mode (lowest priority) in the second."""
    from benchmarks import chain_step

    base = ["-device", device.type, "-preset", opts.preset, "-batch", str(opts.batch),
            "-steps", str(opts.steps), "-warmup", str(opts.warmup)]
    if opts.quick:
        base += ["-size", str(opts.size)]
    if device.type == "cuda":
        base += ["--bf16", "--channels_last"]
    if not compiled:
        rows = [("eager", [], "switch"), ("eager", [], "batch")]
    else:
        rows = [("cuda_graphs", ["--compile", "-compile_mode", "reduce-overhead"], norm)
                for norm in ("switch", "batch")] if device.type == "cuda" else []
        rows += [("compile", ["--compile"], "switch")]
    results = {}
    for mode, extra, norm in rows:
        if compiled and not _time_left(opts, COMPILE_ROW_S):
            results[f"{mode}_{norm}"] = {"skipped": "time budget"}
            continue
        torch._dynamo.reset()
        m = chain_step.measure(chain_step.parse_args(base + extra), norm)
        results[f"{mode}_{norm}"] = {k: round(v, 2) for k, v in vars(m).items()}
    for mode in ("eager", "cuda_graphs"):
        sw, bn = results.get(f"{mode}_switch", {}), results.get(f"{mode}_batch", {})
        if "train_slices_per_s" in sw and "train_slices_per_s" in bn:
            results[f"{mode}_switch_over_batch_norm"] = round(bn["train_slices_per_s"] / sw["train_slices_per_s"], 3)
    return results


def section_train_step(opts: argparse.Namespace, device: torch.device, compiled: bool) -> dict:
    """benchmarks.train_step.measure: data sampling + augmentation + step; eager, then CUDA graphs (on a
    CPU with --with_compile: torch.compile's default mode)."""
    from benchmarks import train_step

    base = ["-device", device.type, "-preset", opts.preset, "-steps", str(opts.steps), "-warmup",
            str(opts.warmup), "-slices", "40" if not opts.quick else "6"]
    if opts.quick:
        base += ["-size", str(opts.size)]
    if not compiled:
        return _rounded({"eager": train_step.measure(train_step.parse_args(base))})
    name, mode = ("cuda_graphs", "reduce-overhead") if device.type == "cuda" else ("compile", "default")
    if not _time_left(opts, COMPILE_ROW_S):
        return {name: {"skipped": "time budget"}}
    torch._dynamo.reset()
    return _rounded({name: train_step.measure(train_step.parse_args(base + ["--compile", mode]))})


def section_inference(opts: argparse.Namespace, device: torch.device, compiled: bool) -> dict:
    """4 randomly initialised folds predict one 16-slice case held as preprocessing stores it (float16 on the
    host): FoldEnsemble.predict timed between two synchronisations (copies in and out included), after a
    warm-up case; eager and, on CUDA, with CUDA graphs. Random weights: the figures do not depend on training."""
    import numpy as np

    from isles_pipeline.acceleration import resolve_acceleration
    from isles_pipeline.inference.compiled import AcceleratedChain
    from isles_pipeline.inference.ensemble import FoldEnsemble
    from isles_pipeline.networks import IntegratedChain, preset

    config = preset(opts.preset)
    size = opts.size if opts.quick else config["patch_size"][0]
    slices, batch = (4, 2) if opts.quick else (16, 8)
    data = np.random.default_rng(0).standard_normal((slices, 17, size, size)).astype(np.float16)
    modes = [("cuda_graphs", "reduce-overhead")] if device.type == "cuda" else [("compile", "default")]
    modes = modes if compiled else [("eager", None)]
    rows = {"case": f"{slices} slices of {size} x {size}", "folds": 4, "batch": batch}
    for name, mode in modes:
        if mode and not _time_left(opts, COMPILE_ROW_S):
            rows[name] = {"skipped": "time budget"}
            continue
        torch._dynamo.reset()
        acceleration = resolve_acceleration(device, compile_mode=mode, batch_size=batch)
        networks = {}
        for fold in range(4):
            torch.manual_seed(fold)
            chain = IntegratedChain(**config["chain"]).to(device).eval()
            networks[fold] = AcceleratedChain(chain, acceleration, batch)
        ensemble = FoldEnsemble(networks, {}, device, list(range(11)), list(range(11, 17)))
        for _ in range(2 if mode else 1):  # warm-up (compilation and graph capture happen here)
            ensemble.predict(data, batch)
        _synchronise(device)
        start = time.perf_counter()
        repeats = 1 if opts.quick else 5
        for _ in range(repeats):
            ensemble.predict(data, batch)
        _synchronise(device)
        rows[name] = {"network_ms": round((time.perf_counter() - start) / repeats * 1000, 2),
                      "paths": acceleration.describe()}
    return rows


def section_short_training(opts: argparse.Namespace, device: torch.device, compiled: bool) -> dict:
    """The carried phantom unpacked, ISLESChainTrainer of its plans trained for a few epochs (no final
    validation: it writes NIfTI); the mean training loss of the last epoch must be below the first's."""
    from isles_pipeline.files import read_json
    from isles_pipeline.trainers.chain_trainer import ISLESChainTrainer

    if opts.phantom is None or not Path(opts.phantom).is_file():
        return {"error": f"no phantom tarball at {opts.phantom} (make one with -prepare)"}
    epochs, iterations = (2, 3) if opts.quick else (opts.train_epochs, opts.train_iterations)
    with tempfile.TemporaryDirectory(prefix="isles_gpu_check_train_") as work:
        with tarfile.open(opts.phantom) as tar:
            tar.extractall(work, filter="data")
        work = Path(work)
        manifest = read_json(work / MANIFEST)
        plans = read_json(work / f"{manifest['plans']}.json")
        splits = read_json(work / "splits_final.json")

        class CheckTrainer(ISLESChainTrainer):
            num_epochs_override, iterations_override, save_every = epochs, iterations, 10**6

        trainer = CheckTrainer(plans, manifest["configuration"], 0, read_json(work / "dataset.json") if
                               (work / "dataset.json").is_file() else {}, work / manifest["data_identifier"],
                               splits, work / "results", device, compile_network=opts.train_compile or False)
        trainer.print.echo = False
        start = time.perf_counter()
        trainer.run_training()
        seconds = time.perf_counter() - start
        losses = [round(v, 4) for v in trainer.log.state()["train_total"]]
        log_lines = (trainer.fold_folder / "training_log.txt").read_text().splitlines()
    result = {"plans": manifest["plans"], "cases": len(manifest["cases"]), "epochs": epochs,
              "iterations": iterations, "batch": trainer.batch_size, "paths": trainer.acceleration.describe(),
              "train_loss_per_epoch": losses, "loss_fell": bool(losses and losses[-1] < losses[0]),
              "seconds": round(seconds, 1), "log_head": log_lines[:4]}
    if not opts.quick and not result["loss_fell"]:
        result["error"] = "the training loss did not fall"
    return result


SECTIONS: dict[str, Callable[[argparse.Namespace, torch.device, bool], dict]] = {
    "cuda_tests": section_cuda_tests, "chain_step": section_chain_step, "train_step": section_train_step,
    "inference": section_inference, "short_training": section_short_training,
}
# Two passes: every eager figure first (seconds each), then the compiled rows, most important first, each
# started only with COMPILE_ROW_S of the budget left (Inductor compiles a graph of this size in about a minute).
EAGER_PASS = ("chain_step", "train_step", "inference", "short_training")
COMPILED_PASS = ("chain_step", "train_step", "inference", "cuda_tests")
COMPILE_ROW_S = 75.0


def _rounded(obj):
    if isinstance(obj, float):
        return round(obj, 3)
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v) for v in obj]
    return obj


_DEADLINE = [float("inf")]


def _time_left(opts: argparse.Namespace, needed_s: float) -> bool:
    return time.monotonic() + needed_s < _DEADLINE[0]


# ---- the table ------------------------------------------------------------------------------------------------
def headline(results: dict) -> dict:
    """The five target figures from the sections (None where not measured)."""
    chain = results.get("chain_step", {})
    train = results.get("train_step", {})
    best_train = max((r["train_slices_per_s"] for r in train.values() if isinstance(r, dict)
                      and "train_slices_per_s" in r), default=None)
    augmentation = min((r["augmentation_ms"] for r in train.values() if isinstance(r, dict)
                        and "augmentation_ms" in r), default=None)
    ratio = chain.get("cuda_graphs_switch_over_batch_norm", chain.get("eager_switch_over_batch_norm"))
    network = [r["network_ms"] for r in results.get("inference", {}).values() if isinstance(r, dict)
               and "network_ms" in r]
    eager = train.get("eager", {})
    peak = eager.get("peak_mib") / 1024 if results["machine"]["device"] == "cuda" and "peak_mib" in eager else None
    return {"train_slices_per_s": best_train, "switch_over_batch_norm": ratio, "augmentation_ms": augmentation,
            "inference_network_ms": min(network, default=None), "peak_gib": peak}


def table(results: dict) -> str:
    machine = results["machine"]
    lines = [f"gpu_check {machine['date']} on {machine['device_name']} (torch {machine['torch']}, "
             f"{'quick' if results['options']['quick'] else 'full'} run, {results['seconds']} s)", "",
             "| figure | measured | target | met |", "| --- | --- | --- | --- |"]
    judged = machine["device"] == "cuda" and not results["options"]["quick"]  # targets are for a full GPU run
    for key, value in headline(results).items():
        op, target, text = TARGETS[key]
        met = ("n/a" if value is None else "n/a (not a full GPU run)" if not judged
               else "yes" if (value >= target if op == ">=" else value <= target) else "NO")
        shown = "not measured" if value is None else f"{value:.3g}"
        lines.append(f"| {text} | {shown} | {op} {target:g} | {met} |")
    lines += ["", "| measurement | figures |", "| --- | --- |"]
    for key, row in results.get("chain_step", {}).items():
        if isinstance(row, dict) and "train_slices_per_s" in row:
            lines.append(f"| chain step, {key.replace('_', ' ')} norm | train {row['train_slices_per_s']} slices/s, "
                         f"inference {row['inference_slices_per_s']} slices/s, peak {row['train_peak_mib']:.0f} MiB |")
        elif isinstance(row, (int, float)) and key.endswith("over_batch_norm"):
            lines.append(f"| chain step, {key.split('_switch')[0].replace('_', ' ')}: SwitchNorm / BatchNorm cost | "
                         f"x{row} |")
    for key, row in results.get("train_step", {}).items():
        if isinstance(row, dict) and "train_slices_per_s" in row:
            lines.append(f"| trainer step with data + augmentation, {key.replace('_', ' ')} ({row['paths']}) | "
                         f"{row['train_slices_per_s']} slices/s, data + augmentation {row['data_and_augmentation_ms']} "
                         f"ms, augmentation {row['augmentation_ms']} ms, peak {row['peak_mib']:.0f} MiB |")
    inference = results.get("inference", {})
    for key, row in inference.items():
        if isinstance(row, dict) and "network_ms" in row:
            lines.append(f"| {inference['case']} through {inference['folds']} folds, {key.replace('_', ' ')} | "
                         f"network {row['network_ms']} ms |")
    training = results.get("short_training", {})
    if training.get("train_loss_per_epoch"):
        lines.append(f"| short training ({training['plans']}, {training['epochs']} x {training['iterations']} "
                     f"iterations, {training['paths']}) | loss per epoch {training['train_loss_per_epoch']}, "
                     f"{'falling' if training['loss_fell'] else 'NOT falling'}, {training['seconds']} s |")
    lines += ["", "| section | result |", "| --- | --- |"]
    for name in SECTIONS:
        section = results.get(name, {})
        status = section.get("error") or section.get("error_compiled") or section.get("skipped") or "ok"
        lines.append(f"| {name} | {status} |")
    return "\n".join(lines) + "\n"


def run(opts: argparse.Namespace) -> dict:
    device = torch.device(opts.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    _DEADLINE[0] = time.monotonic() + opts.budget_s
    started = time.perf_counter()
    results = {"machine": {"date": datetime.datetime.now().isoformat(timespec="seconds"), "device": device.type,
                           "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
                           else f"cpu ({torch.get_num_threads()} threads)", "torch": torch.__version__,
                           "platform": platform.platform(), "cpu_count": os.cpu_count()},
               "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()}}
    compiled_pass = opts.device == "cuda" or opts.with_compile
    plan = [(n, False) for n in EAGER_PASS] + [(n, True) for n in COMPILED_PASS if compiled_pass or n == "cuda_tests"]
    for name, compiled in plan:
        if name not in opts.sections:
            continue
        part = results.setdefault(name, {})
        print(f"gpu_check: {name} ({'compiled' if compiled else 'eager'}) ...", flush=True)
        t0 = time.perf_counter()
        if not _time_left(opts, 5):
            part.setdefault("skipped", "time budget")
            continue
        try:
            part.update(_rounded(SECTIONS[name](opts, device, compiled)))
        except Exception as error:  # one section's failure is a finding, not the end of the check
            part[f"error{'_compiled' if compiled else ''}"] = f"{type(error).__name__}: {error}"
            part["traceback"] = traceback.format_exc().splitlines()[-8:]
        part["section_s"] = round(part.get("section_s", 0) + time.perf_counter() - t0, 1)
        status = part.get("error") or part.get("error_compiled") or part.get("skipped") or "ok"
        print(f"gpu_check: {name} done ({part['section_s']} s so far): {status}", flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["headline"] = headline(results)
    return results


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-prepare", "--prepare", type=Path, default=None, help="make the phantom tarball here and exit")
    p.add_argument("-device", "--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   choices=["cpu", "cuda"])
    p.add_argument("--quick", action="store_true", help="small preset, 64 px, 2 steps: a smoke run")
    p.add_argument("--with_compile", "--with-compile", action="store_true",
                   help="also the torch.compile rows on a CPU (minutes)")
    p.add_argument("-phantom", "--phantom", type=Path, default=Path(".gpu_check/phantom.tar.gz"))
    p.add_argument("-o", type=Path, default=Path("gpu_check_out"), help="folder for gpu_check.json and .md")
    p.add_argument("-budget_s", "--budget-s", type=float, default=390.0,
                   help="no section starts after this many seconds, no compiled row within 75 s of it")
    p.add_argument("-sections", "--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    p.add_argument("-train_epochs", "--train-epochs", type=int, default=6)
    p.add_argument("-train_iterations", "--train-iterations", type=int, default=25)
    p.add_argument("-train_compile", "--train-compile", default=None, choices=["default", "reduce-overhead"],
                   help="compile mode of the short training (default eager)")
    opts = p.parse_args(argv)
    if opts.device == "cuda" and not torch.cuda.is_available():
        p.error("-device cuda, but PyTorch sees no CUDA GPU")
    opts.preset = "small" if opts.quick else "full"
    opts.size = 64
    opts.batch = 5 if not opts.quick else 2
    opts.steps, opts.warmup = (2, 1) if opts.quick else (10, 3)
    return opts


def main(argv: Optional[Sequence[str]] = None) -> int:
    opts = parse_args(argv)
    if opts.prepare is not None:
        path = prepare_phantom(opts.prepare)
        print(f"phantom: {path} ({path.stat().st_size / 2**20:.1f} MiB)")
        return 0
    results = run(opts)
    from isles_pipeline.files import atomic_write_json, atomic_write_text

    opts.o.mkdir(parents=True, exist_ok=True)
    atomic_write_json(opts.o / "gpu_check.json", json.loads(json.dumps(results, default=str)))
    text = table(results)
    atomic_write_text(opts.o / "gpu_check.md", text)
    print(text)
    print(f"results: {opts.o / 'gpu_check.json'}, {opts.o / 'gpu_check.md'}")
    failed = any(key.startswith("error") for name in opts.sections for key in results.get(name, {}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
