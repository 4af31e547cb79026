"""`isles_determine_postprocessing -d 18 [-tr TRAINER] [-p PLANS] [-c 2d]`: a thin layer over
`isles_pipeline.inference.determine_postprocessing.determine_postprocessing`."""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from isles_pipeline.cli.errors import reports_file_errors
from isles_pipeline.files import FileFormatError
from isles_pipeline.paths import DEFAULT_CONFIGURATION, DEFAULT_PLANS, DEFAULT_TRAINER


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isles_determine_postprocessing", description=(
        "Choose the connected-component post-processing (none / remove small components / keep the largest) on "
        "the folds' validation predictions; a step is kept only if it raises the mean Dice."))
    parser.add_argument("-d", type=int, required=True, help="dataset id, e.g. 18")
    parser.add_argument("-tr", default=DEFAULT_TRAINER, help=f"trainer name (default {DEFAULT_TRAINER})")
    parser.add_argument("-p", default=DEFAULT_PLANS, help=f"plans name (default {DEFAULT_PLANS})")
    parser.add_argument("-c", default=DEFAULT_CONFIGURATION, help="configuration (default 2d)")
    return parser


@reports_file_errors
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from isles_pipeline.inference.determine_postprocessing import determine_postprocessing

    try:
        result = determine_postprocessing(args.d, args.tr, args.p, args.c)
    except FileFormatError:
        raise
    except (OSError, ValueError, KeyError) as error:
        print(f"isles_determine_postprocessing: {error}", file=sys.stderr)
        return 1
    scores = ", ".join(f"{name} {value:.4f}" for name, value in result["mean_dice"].items())
    print(f"folds used: {result['folds']} ({result['num_cases']} validation cases)")
    print(f"mean Dice: {scores}")
    print(f"chosen: {result['chosen']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
