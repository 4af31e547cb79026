"""isles_convert_isles2024: the ISLES 2024 training folder (raw_data/, derivatives/, phenotype/) ->
$ISLES_raw/DatasetXXX_<name>, everything on the NCCT grid."""
from __future__ import annotations

import argparse
import sys

from isles_pipeline.cli.errors import report_failures, reports_file_errors
from isles_pipeline.dataset_conversion.isles2024_convert import NOTE_SUMMARIES, convert_isles2024, summarize_notes
from isles_pipeline.files import FileFormatError, read_json


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isles_convert_isles2024", description=__doc__)
    parser.add_argument("-i", dest="training_dir", required=True,
                        help="the training folder holding raw_data/ (or rawdata/), derivatives/ and phenotype/")
    parser.add_argument("-d", dest="dataset_id", type=int, default=24, help="dataset id (default 24)")
    parser.add_argument("-n", dest="name", default="ISLES2024", help="dataset name (default ISLES2024)")
    parser.add_argument("-np", dest="num_processes", type=int, default=1,
                        help="worker processes (each holds one 3D image and one CTP frame: < 4 GB)")
    parser.add_argument("-dt", dest="frame_interval_s", type=float, default=None,
                        help="frame interval (s) for series whose header has none; never overrides a header")
    return parser


@reports_file_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = convert_isles2024(args.training_dir, args.dataset_id, args.name, args.num_processes,
                                   args.frame_interval_s)
    except FileFormatError:
        raise
    except (FileNotFoundError, ValueError) as error:
        print(f"isles_convert_isles2024: {error}", file=sys.stderr)
        return 2
    print(f"converted {len(result.converted)} case(s) into {result.dataset_folder}")
    for kind, count in summarize_notes(read_json(result.dataset_folder / "dataset.json")).items():
        print(f"note: {count} case(s): {NOTE_SUMMARIES.get(kind, kind)} (see dataset.json cases.*.notes)")
    return report_failures(result.failures)


if __name__ == "__main__":
    sys.exit(main())
