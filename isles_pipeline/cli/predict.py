"""`isles_predict -i IN -o OUT -d 18 [-f 0 1 2 3] [-tr T] [-p P] [-chk checkpoint_final.pth] [-device auto]
[--save_probabilities] [--save_pseudo_dwi] [--disable_postprocessing] [--smir_names] [--overlays] [--dicom_seg]`:
a thin layer over `isles_pipeline.inference.predict.predict_folder`."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from isles_pipeline.cli.errors import report_failures, reports_file_errors
from isles_pipeline.files import FileFormatError
from isles_pipeline.paths import DEFAULT_CONFIGURATION, DEFAULT_PLANS, DEFAULT_TRAINER


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isles_predict", description=(
        "Predict infarct core with a trained model's fold ensemble (mean probability, threshold, the chosen "
        "post-processing). IN: a folder of ISLES 2018 case folders (e.g. TESTING/), a raw imagesTs folder "
        "with ctpTs/ beside it, or a DICOM export of one study or of several (the CTP found in each). Outputs keep "
        "each input CT's exact geometry."))
    parser.add_argument("-i", required=True, type=Path, help="input folder")
    parser.add_argument("-o", required=True, type=Path, help="output folder")
    parser.add_argument("-d", required=True, type=int, help="dataset id, e.g. 18")
    parser.add_argument("-f", nargs="+", type=int, default=None, help="folds (default: every trained fold)")
    parser.add_argument("-tr", default=DEFAULT_TRAINER, help=f"trainer (default {DEFAULT_TRAINER})")
    parser.add_argument("-p", default=DEFAULT_PLANS, help=f"plans (default {DEFAULT_PLANS})")
    parser.add_argument("-c", default=DEFAULT_CONFIGURATION, help="configuration (default 2d)")
    parser.add_argument("-chk", default="checkpoint_final.pth", help="checkpoint file name in fold_N/")
    parser.add_argument("-device", default="auto", choices=("auto", "cuda", "cpu"))
    parser.add_argument("-smir_method", "-smir_name", dest="smir_name", default="isles_pipeline",
                        help="method name in SMIR.<name>.<id>.nii")
    parser.add_argument("--save_probabilities", action="store_true", help="also OUT/probabilities/<case>.nii.gz")
    parser.add_argument("--save_pseudo_dwi", action="store_true", help="also OUT/pseudo_dwi/<case>.nii.gz")
    parser.add_argument("--disable_postprocessing", action="store_true")
    parser.add_argument("--smir_names", action="store_true",
                        help="name outputs SMIR.<smir_name>.<CT_MTT id>.nii (ISLES 2018 submission)")
    parser.add_argument("--compile", nargs="?", const="default", default=None, choices=("default", "reduce-overhead"),
                        help="torch.compile the chains; 'reduce-overhead' adds CUDA graphs (CUDA only; a fixed "
                             "batch, the last partial one padded)")
    parser.add_argument("-precision", default="auto", choices=("auto", "bf16", "fp32"),
                        help="auto: bf16 autocast on CUDA, float32 on CPU")
    parser.add_argument("--overlays", action="store_true", help="also OUT/overlays/<case>.png (paper Fig. 4)")
    parser.add_argument("--dicom_seg", action="store_true",
                        help="DICOM input: also OUT/<case>_core_seg.dcm, a DICOM SEG of the core on the source CTP")
    return parser


@reports_file_errors
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from isles_pipeline.inference.predict import PredictionOptions, predict_folder

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    options = PredictionOptions(args.save_probabilities, args.save_pseudo_dwi, args.smir_names, args.smir_name,
                                args.overlays, args.dicom_seg)
    try:
        report = predict_folder(args.i, args.o, args.d, args.f, args.tr, args.p, args.c, args.chk, args.device,
                                args.disable_postprocessing, options,
                                acceleration={"precision": args.precision, "compile_mode": args.compile})
    except FileFormatError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        print(f"isles_predict: {error}", file=sys.stderr)
        return 1
    print(f"{len(report.written)} case(s) written to {args.o}")
    return report_failures(report.failures.values())


if __name__ == "__main__":
    sys.exit(main())
