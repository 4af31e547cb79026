"""isles_train DATASET FOLD [-tr TRAINER] [-p PLANS] [-c 2d] [--c] [--val] [--npz] [-device auto|cuda|cpu]
[-num_gpus N] [--compile [reduce-overhead]] [-precision auto|bf16|fp32]
[-memory_format auto|channels_last|contiguous]: argparse over isles_pipeline.trainers.run.run_training
(nnU-Net's meanings)."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from isles_pipeline.cli.errors import reports_file_errors


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train one fold of the ISLES chain (extractor -> generator -> segmentor).")
    p.add_argument("dataset", type=int, help="dataset id, e.g. 18")
    p.add_argument("fold", help="fold 0..3, or 'all'")
    p.add_argument("-tr", default="ISLESChainTrainer",
                   help="trainer class (e.g. ISLESChainTrainer, ISLESChainTrainer_5epochs, a Table-1 variant such "
                        "as ISLESChainTrainer_UNetCE, or package.module:ClassName)")
    p.add_argument("-p", default="ISLESPlans", help="plans name (default ISLESPlans)")
    p.add_argument("-c", default="2d", help="configuration (default 2d)")
    p.add_argument("-device", default="auto", choices=["auto", "cuda", "cpu"])
    p.add_argument("-num_gpus", type=int, default=1, help="processes for data-parallel training (gloo on CPU)")
    p.add_argument("--c", dest="continue_training", action="store_true", help="continue from the latest checkpoint")
    p.add_argument("--val", action="store_true", help="only run the final validation (needs checkpoint_final.pth)")
    p.add_argument("--npz", action="store_true", help="also save validation probabilities (.npz)")
    p.add_argument("--compile", nargs="?", const="default", default=None, choices=["default", "reduce-overhead"],
                   help="torch.compile the chain and its loss; '--compile reduce-overhead' adds CUDA graphs (CUDA "
                        "only: elsewhere the default mode, said in the log). Put it after DATASET FOLD")
    p.add_argument("-precision", default=None, choices=["auto", "bf16", "fp32"],
                   help="auto (default): bf16 autocast on CUDA, float32 on CPU; bf16 also works on CPU (slow)")
    p.add_argument("-memory_format", default=None, choices=["auto", "channels_last", "contiguous"],
                   help="auto (default): channels_last on CUDA, contiguous on CPU")
    return p


@reports_file_errors
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)
    from isles_pipeline.trainers.errors import TrainingError
    from isles_pipeline.trainers.run import run_training

    try:
        folder = run_training(args.dataset, args.fold, args.tr, args.p, args.c, args.device, args.continue_training,
                              args.val, args.npz, args.num_gpus, args.compile or False, args.precision,
                              args.memory_format)
    except TrainingError as error:
        print(f"ERROR {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: resume with --c", file=sys.stderr)
        return 130
    if os.environ.get("RANK", "0") == "0":  # under torchrun every rank returns here
        print(f"done: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
