"""isles_generate_phantom: write ISLES-2018-like phantom cases (and their simulated truth)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from isles_pipeline.cli.errors import reports_file_errors
from isles_pipeline.phantom import generate_phantom
from isles_pipeline.phantom.isles2024_writer import write_isles2024_phantom


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isles_generate_phantom", description=__doc__)
    parser.add_argument("-o", dest="output", required=True, help="output folder (becomes TRAINING/ or TESTING/)")
    parser.add_argument("-n", dest="num_cases", type=int, default=10, help="number of cases (default 10)")
    parser.add_argument("-split", "--split", default="TRAINING", choices=["TRAINING", "TESTING"],
                        help="TRAINING writes OT labels, TESTING does not")
    parser.add_argument("-seed", "--seed", type=int, default=0)
    parser.add_argument("-size", "--size", type=int, default=256, help="in-plane size in voxels (multiple of 16)")
    parser.add_argument("--with_dwi", "--with-dwi", action="store_true", help="also write MR_DWI")
    parser.add_argument("-np", dest="num_processes", type=int, default=1, help="worker processes")
    parser.add_argument("-layout", "--layout", default="isles2018", choices=["isles2018", "isles2024"],
                        help="isles2024: the ISLES 2024 training layout (raw_data/, derivatives/, phenotype/)")
    parser.add_argument("--oblique", action="store_true", help="isles2024 layout: tilted (oblique) grids")
    return parser


@reports_file_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    Path(args.output).mkdir(parents=True, exist_ok=True)  # an output place that cannot be written: one line, no work
    try:
        if args.layout == "isles2024":
            cases = write_isles2024_phantom(args.output, args.num_cases, args.seed, args.size, args.num_processes,
                                            oblique=args.oblique, progress=True)
            print(f"wrote {len(cases)} ISLES 2024 subjects to {args.output}")
            return 0
        cases = generate_phantom(args.output, args.num_cases, args.split, args.seed, args.size, args.with_dwi,
                                 args.num_processes, progress=True)
    except ValueError as error:
        print(f"isles_generate_phantom: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(cases)} {args.split} cases to {args.output} (truth in {args.output}/phantom_truth)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
