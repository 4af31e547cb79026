"""isles_phantom_report: how realistic a generated phantom is (lesion volumes, threshold baseline, map quality
per centre, tissue enhancement and noise), printed as the table documentation/results/phantom-realism.md quotes."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from isles_pipeline.cli.errors import reports_file_errors
from isles_pipeline.files import atomic_write_json
from isles_pipeline.phantom.report import format_report, phantom_report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isles_phantom_report", description=__doc__)
    parser.add_argument("folder", type=Path, help="a folder written by isles_generate_phantom (TRAINING or TESTING)")
    parser.add_argument("-o", dest="output", type=Path, default=None, help="also write the full report (JSON)")
    parser.add_argument("-np", dest="num_processes", type=int, default=1, help="worker processes")
    parser.add_argument("--no_own_maps", "--no-own-maps", action="store_true",
                        help="skip the project's own deconvolution of every series (faster)")
    return parser


@reports_file_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = phantom_report(args.folder, own_maps=not args.no_own_maps, num_processes=args.num_processes)
    except (FileNotFoundError, RuntimeError) as error:
        print(f"isles_phantom_report: {error}", file=sys.stderr)
        return 1
    print(format_report(report))
    if args.output is not None:
        atomic_write_json(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
