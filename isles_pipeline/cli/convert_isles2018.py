"""isles_convert_isles2018: ISLES 2018 TRAINING/TESTING folders -> $ISLES_raw/DatasetXXX_<name>."""
from __future__ import annotations

import argparse
import sys

from isles_pipeline.cli.errors import report_failures, reports_file_errors
from isles_pipeline.dataset_conversion.convert import convert_isles2018
from isles_pipeline.files import FileFormatError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isles_convert_isles2018", description=__doc__)
    parser.add_argument("-i", dest="training_dir", required=True, help="the TRAINING folder (case_N/...)")
    parser.add_argument("-t", dest="testing_dir", default=None, help="the TESTING folder, optional")
    parser.add_argument("-d", dest="dataset_id", type=int, default=18, help="dataset id (default 18)")
    parser.add_argument("-n", dest="name", default="ISLES2018", help="dataset name (default ISLES2018)")
    parser.add_argument("-np", dest="num_processes", type=int, default=1, help="worker processes")
    parser.add_argument("-patients", "--patients", default=None,
                        help="CSV with columns case,patient[,slab]: which cases are slabs of one patient; "
                             "it wins over the "
                             "SMIR metadata (e.g. to correct a grouping)")
    parser.add_argument("--compute_maps", action="store_true",
                        help="also compute CBF/CBV/MTT/Tmax from every case's 4D CTP (mapsComputedTr/Ts); cases "
                             "without vendor maps get computed ones regardless")
    return parser


@reports_file_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = convert_isles2018(args.training_dir, args.testing_dir, args.dataset_id, args.name,
                                   args.num_processes, args.patients, compute_maps=args.compute_maps)
    except FileFormatError:
        raise
    except (FileNotFoundError, ValueError) as error:
        print(f"isles_convert_isles2018: {error}", file=sys.stderr)
        return 2
    for split, how in result.patient_source.items():
        if how == "heuristic":
            print(f"note: {split} patient ids guessed from consecutive cases with the same acquisition "
                  f"(no SMIR metadata, no --patients table); check dataset.json", file=sys.stderr)
    print(f"converted {len(result.converted)} case(s) into {result.dataset_folder}")
    return report_failures(result.failures)


if __name__ == "__main__":
    sys.exit(main())
