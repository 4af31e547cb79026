"""isles_dicom_to_nifti: the CT perfusion series of a DICOM export folder as a 4D NIfTI plus its frame times.

A thin layer over `isles_pipeline.imageio.dicom_nifti.dicom_to_nifti`.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from isles_pipeline.errors import CaseError
from isles_pipeline.imageio.dicom_nifti import FRAME_TIMES_NAME, SERIES_NAME, SIDECAR_NAME, dicom_to_nifti


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isles_dicom_to_nifti", description=(
        "Find the 4D CT perfusion series in a DICOM export folder (nested folders, other series and non-image "
        f"files are fine) and write OUT/{SERIES_NAME} (HU), OUT/{FRAME_TIMES_NAME} (seconds from the first frame, "
        f"for -frame_times) and OUT/{SIDECAR_NAME}."))
    parser.add_argument("-i", dest="input", required=True, type=Path, help="DICOM export folder of one study")
    parser.add_argument("-o", dest="output", required=True, type=Path, help="output folder")
    parser.add_argument("-series", "--series", default=None,
                        help="the 4D series to take when there are several (SeriesInstanceUID, SeriesNumber, "
                             "SeriesDescription or FrameOfReferenceUID); default: the largest")
    parser.add_argument("--compress", action="store_true",
                        help=f"write {SERIES_NAME}.gz (gzip level 1: about 2x smaller, several seconds slower)")
    parser.add_argument("--verbose", action="store_true", help="log every file set aside and every series found")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        ctp = dicom_to_nifti(args.input, args.output, args.series, args.compress)
    except CaseError as error:
        print(f"isles_dicom_to_nifti: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"isles_dicom_to_nifti: {args.output}: cannot write ({error.strerror or error})", file=sys.stderr)
        return 1
    interval = f"every {ctp.frame_interval_s:g} s" if ctp.frame_interval_s else "non-uniform intervals"
    name = SERIES_NAME + (".gz" if args.compress else "")
    print(f"wrote {args.output / name} ({' x '.join(str(n) for n in ctp.grid.size)} x "
          f"{len(ctp.times_s)} frames, {interval}, {ctp.times_s[-1]:g} s) and {FRAME_TIMES_NAME} from {ctp.label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
