"""`isles_evaluate -ref REF -pred PRED [-o summary.json] [--csv]`: a thin layer over
`isles_pipeline.evaluation.evaluate.evaluate_folders`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from isles_pipeline.cli.errors import reports_file_errors
from isles_pipeline.files import FileFormatError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isles_evaluate", description=(
        "Dice, HD95 (mm), absolute volume difference (ml), precision, recall, lesion-wise F1 and lesion-count "
        "difference per case; means with 95 % bootstrap intervals over the cases with a reference lesion, and "
        "the false-positive volume of the lesion-free cases. Cases are paired by file name; a reference "
        "without a prediction is scored as an empty prediction, a prediction without a reference is ignored."))
    parser.add_argument("-ref", required=True, type=Path, help="folder of reference segmentations")
    parser.add_argument("-pred", required=True, type=Path, help="folder of predicted segmentations")
    parser.add_argument("-o", type=Path, default=None, help="summary JSON (default: PRED/summary.json)")
    parser.add_argument("--csv", action="store_true", help="also write a per-case CSV beside the JSON")
    parser.add_argument("--isles2024", action="store_true", help="also ISLES 2024's conventions (Dice, |dV| ml, "
                        "lesion-count difference, lesion F1 at IoU >= 0.2) in <summary>_isles2024.json")
    return parser


@reports_file_errors
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from isles_pipeline.evaluation.evaluate import evaluate_folders
    from isles_pipeline.evaluation.tables import summary_table

    output = args.o if args.o is not None else args.pred / "summary.json"
    try:
        summary = evaluate_folders(args.ref, args.pred, output, write_csv=args.csv)
    except FileFormatError:
        raise
    except (OSError, ValueError) as error:
        print(f"isles_evaluate: {error}", file=sys.stderr)
        return 1
    if args.isles2024:
        from isles_pipeline.evaluation.isles2024_metrics import evaluate_folders_isles2024

        isles24 = evaluate_folders_isles2024(args.ref, args.pred, output.with_name(f"{output.stem}_isles2024.json"))
        print("ISLES 2024: " + ", ".join(f"{k[8:]} {v:.4g}" for k, v in isles24["mean"].items() if v is not None))
    if summary["predictions_without_reference"]:
        print(f"isles_evaluate: warning: {len(summary['predictions_without_reference'])} prediction(s) without a "
              f"reference, ignored: {', '.join(summary['predictions_without_reference'])}", file=sys.stderr)
    if summary["missing_predictions"]:
        print(f"isles_evaluate: warning: no prediction for {len(summary['missing_predictions'])} reference "
              f"case(s), scored as empty predictions: {', '.join(summary['missing_predictions'])}", file=sys.stderr)
    print(f"{summary['num_cases']} case(s), {summary['num_missing_predictions']} of them without a prediction "
          f"(scored as empty), {args.pred} against {args.ref}")
    print("\n".join(summary_table({args.pred.name or str(args.pred): summary})))
    print(f"summary: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
