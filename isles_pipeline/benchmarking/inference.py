"""Benchmark of `isles_predict`: one 16-slice case through a 4-fold ensemble, with preprocessing, network and
writing timed separately (the predictor's own counters) and the end-to-end wall time.

    python -m isles_pipeline.benchmarking.inference --preset full --device cpu
    python -m isles_pipeline.benchmarking.inference --preset small

The case is the synthetic raw case of `preprocessing.synthetic` (256 x 256, 16 slices, 48 frames by default);
plans come from the ISLES planner of the preset (full: 256 x 256 slices and the seed's widths; small:
128 x 128, narrow networks) on that case; the folds are randomly initialised chains in the trainer's
checkpoint format, so the figures are independent of training. Everything lives in a temporary folder.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from isles_pipeline.paths import data_roots_under, isles_raw, isles_results

PLANNERS = {"full": ("ISLESPlanner", "ISLESPlans"), "small": ("ISLESSmallPlanner", "ISLESSmallPlans")}


def _build(args: argparse.Namespace) -> tuple[Path, Path]:
    """(model folder, imagesTs folder) under the data roots."""
    from isles_pipeline.networks.chain import IntegratedChain
    from isles_pipeline.planners import api
    from isles_pipeline.planners.plans import get_configuration, load_plans
    from isles_pipeline.files import atomic_write_json
    from isles_pipeline.trainers.checkpoint import atomic_torch_save
    from isles_pipeline.preprocessing.synthetic import SyntheticCase, write_case, write_synthetic_dataset

    planner, plans_name = PLANNERS[args.preset]
    case = SyntheticCase("bench_001", size_yx=(args.size, args.size), slices=args.slices, num_frames=args.frames)
    raw = write_synthetic_dataset(isles_raw(), [case])
    write_case(raw, SyntheticCase("bench_001", size_yx=(args.size, args.size), slices=args.slices,
                                  num_frames=args.frames), "Ts", np.random.default_rng(1))
    api.extract_fingerprint(18)
    api.plan_experiment(18, planner)
    plans = load_plans(18, plans_name)
    chain_kwargs = get_configuration(plans)["network"]["chain"]
    model = isles_results() / raw.name / f"BenchmarkTrainer__{plans_name}__2d"
    atomic_write_json(model / "plans.json", plans)
    for fold in range(args.folds):
        torch.manual_seed(fold)
        path = model / f"fold_{fold}" / "checkpoint_final.pth"
        atomic_torch_save({"network_weights": IntegratedChain(**chain_kwargs).state_dict(), "chain_kwargs": chain_kwargs,
                    "trainer_name": "BenchmarkTrainer", "plans_name": plans_name, "configuration": "2d",
                    "fold": fold, "epoch": 0}, path)
    return model, raw / "imagesTs"


def run(args: argparse.Namespace) -> dict:
    from isles_pipeline.inference.predict import predict_folder

    if args.threads:
        torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp(prefix="isles_bench_inference_"))
    try:
        with data_roots_under(root):
            model, images = _build(args)
            start = time.perf_counter()
            report = predict_folder(images, root / "out", folder=model, device=args.device, batch_size=args.batch)
            wall = time.perf_counter() - start
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if report.failures:
        raise RuntimeError(f"benchmark case failed: {report.failures}")
    network = report.seconds["network"]
    return {"preset": args.preset, "device": args.device, "torch_threads": torch.get_num_threads(),
            "case": f"{args.slices} slices of {args.size} x {args.size}, {args.frames} frames",
            "folds": args.folds, "batch": args.batch,
            "seconds": {**{k: round(v, 3) for k, v in report.seconds.items()}, "wall_total": round(wall, 3)},
            "network_slices_per_s": round(args.slices * args.folds / network, 2) if network else None}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m isles_pipeline.benchmarking.inference", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="full", choices=sorted(PLANNERS))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--slices", type=int, default=16)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--batch", type=int, default=8, help="slices per forward pass")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    print(json.dumps(run(parse_args(argv)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
