"""Benchmark of `isles_predict`: one 16-slice case through a 4-fold ensemble, each stage timed on its own.

    python -m benchmarks.inference -preset full -device cpu
    python -m benchmarks.inference -preset small --end_to_end

Stages, in the order the predictor runs them (`Predictor.predict` and `write_case`), called here one by one
so that none hides in another's time: loading the folds; preprocessing (read, check, crop, normalise,
resample to the plans' grid); network (the fold ensemble's forward passes and softmax; on CUDA the device is
synchronised before and after, so queued kernels are counted and nothing else is); resampling the mean
probability (and pseudo-DWI) back to the original grid (CPU); post-processing (threshold, the model's
post-processing steps, connected-component labelling for the lesion count of the volume table; CPU);
writing the mask. `-warmup` untimed ensemble passes first (default 1 on CUDA: cuDNN picks its kernels on
the first call). `--end_to_end` also times `predict_folder` itself, the path users run.

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

from isles_pipeline.inference.predictor import CasePrediction
from isles_pipeline.paths import data_roots_under, isles_raw, isles_results

PLANNERS = {"full": ("ISLESPlanner", "ISLESPlans"), "small": ("ISLESSmallPlanner", "ISLESSmallPlans")}


def _build(args: argparse.Namespace) -> tuple[Path, Path]:
    """(model folder, imagesTs folder) under the data roots."""
    from isles_pipeline.files import atomic_write_json
    from isles_pipeline.networks.chain import IntegratedChain
    from isles_pipeline.phantom.synthetic import SyntheticCase, write_case, write_synthetic_dataset
    from isles_pipeline.planners import api
    from isles_pipeline.planners.plans import get_configuration, load_plans
    from isles_pipeline.trainers.checkpoint import atomic_torch_save

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
        weights = IntegratedChain(**chain_kwargs).state_dict()
        atomic_torch_save({"network_weights": weights, "chain_kwargs": chain_kwargs,
                    "trainer_name": "BenchmarkTrainer", "plans_name": plans_name, "configuration": "2d",
                    "fold": fold, "epoch": 0}, path)
    return model, raw / "imagesTs"


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def staged_prediction(predictor, prepared, output_file: Path) -> tuple[CasePrediction, dict]:
    """`Predictor.predict` then the mask's writing, stage by stage: (the prediction, seconds per stage).
    Same calls as the predictor makes (the test checks that the mask is the predictor's)."""
    from isles_pipeline.components import label_components
    from isles_pipeline.imageio.case_images import Geometry
    from isles_pipeline.inference.postprocessing import apply_postprocessing
    from isles_pipeline.inference.predictor import CasePrediction
    from isles_pipeline.inference.writer import write_mask
    from isles_pipeline.preprocessing.resampling import restore_original_geometry

    device, properties, seconds = predictor.ensemble.device, prepared.properties, {}
    _synchronise(device)
    start = time.perf_counter()
    output = predictor.ensemble.predict(prepared.preprocessed.data, predictor.batch_size)
    _synchronise(device)
    seconds["network"] = time.perf_counter() - start

    start = time.perf_counter()
    probabilities = restore_original_geometry(output.probabilities, properties, order=1).astype(np.float32)
    pseudo_dwi = (restore_original_geometry(output.pseudo_dwi, properties, order=1).astype(np.float32)
                  if output.pseudo_dwi is not None else None)
    seconds["resampling"] = time.perf_counter() - start

    start = time.perf_counter()
    spacing_zyx = tuple(reversed(Geometry.from_json(properties["original_geometry"]).spacing))
    mask = apply_postprocessing(probabilities >= predictor.threshold, predictor.postprocessing, spacing_zyx)
    label_components(mask)  # the lesion count of the volume table
    seconds["postprocessing"] = time.perf_counter() - start

    start = time.perf_counter()
    write_mask(mask, properties, output_file)
    seconds["writing"] = time.perf_counter() - start
    return CasePrediction(mask, probabilities, pseudo_dwi, spacing_zyx), seconds


def run(args: argparse.Namespace) -> dict:
    from isles_pipeline.inference.case_inputs import find_input_cases, prepare_case
    from isles_pipeline.inference.predict import predict_folder
    from isles_pipeline.inference.predictor import Predictor

    if args.threads:
        torch.set_num_threads(args.threads)
    warmup = args.warmup if args.warmup is not None else int(args.device == "cuda")
    root = Path(tempfile.mkdtemp(prefix="isles_bench_inference_"))
    seconds: dict[str, float] = {}
    try:
        with data_roots_under(root):
            model, images = _build(args)
            start = time.perf_counter()
            predictor = Predictor.from_model_folder(model, device=args.device, batch_size=args.batch)
            seconds["loading"] = time.perf_counter() - start
            case = find_input_cases(images)[0]
            start = time.perf_counter()
            prepared = prepare_case(case, predictor.configuration)
            seconds["preprocessing"] = time.perf_counter() - start
            for _ in range(warmup):
                predictor.ensemble.predict(prepared.preprocessed.data, predictor.batch_size)
            _, stages = staged_prediction(predictor, prepared, root / "staged" / f"{case.name}.nii.gz")
            seconds.update(stages)
            seconds["stages_total"] = sum(seconds.values())
            if args.end_to_end:
                start = time.perf_counter()
                report = predict_folder(images, root / "out", folder=model, device=args.device,
                                        batch_size=args.batch)
                seconds["end_to_end_wall"] = time.perf_counter() - start
                if report.failures:
                    raise RuntimeError(f"benchmark case failed: {report.failures}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    network = seconds["network"]
    return {"preset": args.preset, "device": args.device, "torch_threads": torch.get_num_threads(),
            "case": f"{args.slices} slices of {args.size} x {args.size}, {args.frames} frames",
            "folds": args.folds, "batch": args.batch, "warmup_passes": warmup,
            "seconds": {key: round(value, 4) for key, value in seconds.items()},
            "network_ms_per_case": round(1000 * network, 1),
            "network_slices_per_s": round(args.slices * args.folds / network, 2) if network else None}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.inference", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-preset", "--preset", default="full", choices=sorted(PLANNERS))
    p.add_argument("-device", "--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   choices=["cpu", "cuda"])
    p.add_argument("-folds", "--folds", type=int, default=4)
    p.add_argument("-slices", "--slices", type=int, default=16)
    p.add_argument("-size", "--size", type=int, default=256)
    p.add_argument("-frames", "--frames", type=int, default=48)
    p.add_argument("-batch", "--batch", type=int, default=8, help="slices per forward pass")
    p.add_argument("-threads", "--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    p.add_argument("-warmup", "--warmup", type=int, default=None,
                   help="untimed ensemble passes before the timed one (default 1 on CUDA, 0 on CPU)")
    p.add_argument("--end_to_end", "--end-to-end", action="store_true", help="also time predict_folder as users run it")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    print(json.dumps(run(parse_args(argv)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
