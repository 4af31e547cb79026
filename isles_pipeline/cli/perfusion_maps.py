"""isles_perfusion_maps: CBF, CBV, MTT, Tmax and TTP from a raw 4D CT perfusion series."""
from __future__ import annotations

import argparse
import ctypes
import sys
from pathlib import Path

from isles_pipeline.cli.errors import os_error_line
from isles_pipeline.errors import CaseError
from isles_pipeline.files import staged_folder
from isles_pipeline.imageio.nifti_io import NiftiError
from isles_pipeline.perfusion import METHODS, compute_maps
from isles_pipeline.perfusion.compute import DEFAULT_SMOOTHING_MM
from isles_pipeline.perfusion.io import read_series, result_warnings, write_outputs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isles_perfusion_maps", description=__doc__)
    parser.add_argument("-i", dest="input", required=True, type=Path,
                        help="4D CTP series (.nii or .nii.gz, HU), or a DICOM export folder of one study")
    parser.add_argument("-o", dest="output", required=True, type=Path,
                        help="output folder: cbf, cbv, mtt, tmax, ttp .nii.gz, aif.json, summary.json, qc.png")
    parser.add_argument("-method", default="osvd", choices=METHODS,
                        help="deconvolution (default osvd: block-circulant SVD, oscillation-index threshold)")
    parser.add_argument("-frame_times", type=Path, default=None,
                        help="CSV of per-frame times in seconds (non-uniform protocols); default: the DICOM "
                             "headers' times, or the NIfTI header's frame interval (pixdim[4])")
    parser.add_argument("-series", default=None,
                        help="DICOM input: the 4D series to take when there are several (SeriesInstanceUID, "
                             "SeriesNumber, SeriesDescription); default: the largest")
    parser.add_argument("-device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--no_vof_correction", action="store_true",
                        help="do not rescale the AIF's area to the venous output function's")
    parser.add_argument("--no_denoise", action="store_true", help="skip the spatial denoising")
    parser.add_argument("-smoothing_mm", type=float, default=DEFAULT_SMOOTHING_MM,
                        help="the most in-plane Gaussian (SD, mm) after the profile bilateral filter (default "
                             f"{DEFAULT_SMOOTHING_MM:g}: for voxel-wise maps and thresholded volumes); 0 keeps the "
                             "bilateral filter alone (region means: less bias at edges, noisier voxels)")
    parser.add_argument("--motion_correction", action="store_true",
                        help="register every frame to the first (one rigid in-plane transform per frame, on bone)")
    parser.add_argument("--no_qc", action="store_true", help="do not write qc.png")
    parser.add_argument("--dicom_maps", action="store_true",
                        help="DICOM input: also OUT/dicom/<map>.dcm, parametric maps referencing the source series")
    return parser


def _reuse_freed_memory() -> None:
    """glibc: keep freed blocks up to 32 MB (the engine's per-slice work arrays) for reuse instead of mapping
    fresh pages for each slice; the page faults cost the command ~0.3 s of system time (2-core dev machine)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return
    libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: glibc's largest
    libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD


def main(argv: list[str] | None = None) -> int:
    _reuse_freed_memory()
    args = build_parser().parse_args(argv)
    if not args.smoothing_mm >= 0:  # also NaN
        print(f"isles_perfusion_maps: -smoothing_mm must be 0 or more, got {args.smoothing_mm}", file=sys.stderr)
        return 1
    if args.dicom_maps and not args.input.is_dir():
        print(f"isles_perfusion_maps: {args.input}: --dicom_maps needs a DICOM export folder as input", file=sys.stderr)
        return 1
    try:
        with staged_folder(args.output) as staging:  # all outputs land together, or none
            series, image, times = read_series(args.input, args.frame_times, args.series)
            result = compute_maps(series, times, image.GetSpacing()[2::-1], method=args.method,
                                  device=args.device, denoise=not args.no_denoise, smoothing_mm=args.smoothing_mm,
                                  vof_correction=not args.no_vof_correction,
                                  motion_correction=args.motion_correction, name=str(args.input))
            for warning in result_warnings(result):
                print(f"isles_perfusion_maps: warning: {args.input}: {warning}", file=sys.stderr)
            write_outputs(result, image, staging, source=str(args.input), qc=not args.no_qc)
            if args.dicom_maps:
                from isles_pipeline.imageio.dicom_ctp import source_slices
                from isles_pipeline.imageio.dicom_maps import write_maps_dicom

                write_maps_dicom(result.maps, *source_slices(args.input, args.series), staging / "dicom")
    except (CaseError, NiftiError) as error:
        print(f"isles_perfusion_maps: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # the output place: no permission, a full disk, a file where a folder should be
        print(f"isles_perfusion_maps: {os_error_line(error)}", file=sys.stderr)
        return 1
    except ValueError as error:  # e.g. -device cuda without a GPU
        print(f"isles_perfusion_maps: {args.input}: {error}", file=sys.stderr)
        return 1
    arterial = result.arterial
    print(f"wrote cbf, cbv, mtt, tmax, ttp, aif.json, summary.json{'' if args.no_qc else ', qc.png'} to {args.output} "
          f"({result.method} on {result.device}; AIF peak {arterial.aif.max():.0f} HU, scale {arterial.scale:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
