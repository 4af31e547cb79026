"""isles_plan_and_preprocess, isles_extract_fingerprint, isles_plan_experiment, isles_preprocess: argparse over
isles_pipeline.planners.api (nnU-Net conventions: one dash for values, two for flags)."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Optional, Sequence

from isles_pipeline.cli.errors import reports_file_errors
from isles_pipeline.errors import CaseFailures
from isles_pipeline.preprocessing.integrity import IntegrityError


def _parser(description: str, planner: bool = False, plans_name: bool = False, verify: bool = False,
            splits: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("-d", type=int, nargs="+", required=True, help="dataset id(s), e.g. 18")
    parser.add_argument("-np", type=int, default=2, help="worker processes (default 2)")
    if planner:
        parser.add_argument("-pl", default="ISLESPlanner",
                            help="planner class name (ISLESPlanner, ISLESSmallPlanner; ISLESPlanner_computedMaps or "
                                 "ISLESPlanner_bothMaps for our computed perfusion maps instead of or beside the "
                                 "vendor's: convert with --compute_maps first; or package.module.Class)")
    if plans_name:
        parser.add_argument("-plans_name", default="ISLESPlans", help="plans to preprocess with (default ISLESPlans)")
    if verify:
        parser.add_argument("--verify_dataset_integrity", action="store_true",
                            help="check every case before anything is written; stop on problems")
    parser.add_argument("--clean", action="store_true",
                        help="redo this step (and overwrite what it wrote) instead of reusing it")
    if splits:
        parser.add_argument("--rebuild_splits", action="store_true",
                            help="make splits_final.json again from dataset.json's patients (needed when they no "
                                 "longer keep every patient in one fold, e.g. after a corrected --patients table)")
    return parser


def _run(step: Callable[[argparse.Namespace, int], Optional[dict]], args: argparse.Namespace) -> int:
    """Run a step per dataset id; print one line per failure; exit status 1 if anything failed."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    status = 0
    for dataset_id in args.d:
        try:
            failures = step(args, dataset_id) or {}
        except (CaseFailures, IntegrityError) as error:
            print(f"ERROR {error}", file=sys.stderr)
            status = 1
            continue
        except (FileNotFoundError, FileExistsError, ValueError, KeyError) as error:
            print(f"ERROR {error}", file=sys.stderr)
            status = 1
            continue
        for line in failures.values():
            print(f"ERROR {line}", file=sys.stderr)
        status = status or int(bool(failures))
    return status


@reports_file_errors
def main(argv: Optional[Sequence[str]] = None) -> int:
    from isles_pipeline.planners import api

    args = _parser("Fingerprint, plan and preprocess a raw dataset.", planner=True, verify=True,
                   splits=True).parse_args(argv)
    return _run(lambda a, d: api.plan_and_preprocess(d, a.pl, a.np, a.clean, a.verify_dataset_integrity,
                                                     raise_on_failure=False, rebuild_splits=a.rebuild_splits).failures,
                args)


@reports_file_errors
def extract_fingerprint_main(argv: Optional[Sequence[str]] = None) -> int:
    from isles_pipeline.planners import api

    args = _parser("Extract the dataset fingerprint.", verify=True).parse_args(argv)
    return _run(lambda a, d: api.extract_fingerprint(d, a.np, a.clean, a.verify_dataset_integrity)["failed_cases"],
                args)


@reports_file_errors
def plan_experiment_main(argv: Optional[Sequence[str]] = None) -> int:
    from isles_pipeline.planners import api

    args = _parser("Write the plans from the fingerprint.", planner=True).parse_args(argv)
    return _run(lambda a, d: print(api.plan_experiment(d, a.pl, a.clean)), args)


@reports_file_errors
def preprocess_main(argv: Optional[Sequence[str]] = None) -> int:
    from isles_pipeline.planners import api

    args = _parser("Preprocess the training cases as the plans say.", plans_name=True, splits=True).parse_args(argv)
    return _run(lambda a, d: api.preprocess(d, a.plans_name, "2d", a.np, a.clean, a.rebuild_splits).failed, args)


if __name__ == "__main__":
    sys.exit(main())
