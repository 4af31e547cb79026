"""isles_demo: the whole chain on a small generated phantom (the project's main job)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from isles_pipeline.cli.errors import reports_file_errors
from isles_pipeline.demo import DemoSettings, run_demo
from isles_pipeline.devices import DeviceError
from isles_pipeline.files import FileFormatError
from isles_pipeline.trainers.errors import TrainingError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isles_demo", description=__doc__)
    parser.add_argument("-o", dest="output", default="isles_demo_output",
                        help="output folder (default ./isles_demo_output)")
    parser.add_argument("-device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("-np", dest="num_processes", type=int, default=2, help="worker processes (default 2)")
    return parser


@reports_file_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        run_demo(Path(args.output), args.device, DemoSettings(num_processes=args.num_processes))
    except FileFormatError:
        raise
    except (TrainingError, DeviceError, RuntimeError, FileNotFoundError, ValueError) as error:
        print(f"isles_demo: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
