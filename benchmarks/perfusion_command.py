"""The whole `isles_perfusion_maps` process, start to finish, against a plain numpy reference process in the
same run, on one 4D NIfTI (default: a 22-slice 256 x 256 phantom slab of 54 one-second frames).

    python -m benchmarks.perfusion_command [-slices 22] [-size 256] [-frames 54] [-repeats 3] [-i SERIES.nii]

Why a process and not a function: a user waits for the command, which pays for Python's start, imports (torch
alone ~1.3 s), reading, the maps, the files and the picture. The reference process (`--reference`, below) is
what a user could write in an afternoon: SimpleITK read, the brightest 0.1 % of voxels as the AIF, a plain
fixed-threshold bcSVD (`experiments.plain_svd`), four NIfTI maps written; no denoising, masks or picture.
Reported: the median wall time of each over `-repeats` alternating runs and their ratio (target <= 0.8).
`-pages`: numpy's default (`default`: large arrays asked for as transparent huge pages, where the kernel's
setting is madvise or always), 4 kB pages only (`small`: NUMPY_MADVISE_HUGEPAGE=0 for both processes), or
`both` (each process in each mode, one line per mode). Why: the reference spends most of its system time
faulting in ~1.2 GB of fresh arrays; with huge pages that cost swings with how fragmented the machine's
memory is (4.2-5.2 s against 2.9-3.0 s with small pages on the same machine and minute, 2026-12-07), while
the command, which allocates little afresh, is the same either way: its ratio is only meaningful per mode.
`-other_checkout DIR` also times the command of another checkout of the repository (run from DIR, so its own
code is imported) in the same alternation: two versions of the code compared in the same minutes.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_series(path: Path, slices: int, size: int, frames: int) -> None:
    import SimpleITK as sitk

    from benchmarks.perfusion import full_size_series

    series, spacing = full_size_series(slices, size, frames)
    image = sitk.GetImageFromArray(np.round(series).astype(np.int16), isVector=False)
    image.SetSpacing((spacing[2], spacing[1], spacing[0], 1.0))
    sitk.WriteImage(image, str(path))


def reference(series_path: Path, out_dir: Path) -> None:
    """The plain numpy process: read, AIF from the brightest voxels, fixed-threshold bcSVD, write four maps."""
    import SimpleITK as sitk

    from experiments.plain_svd import plain_maps

    image = sitk.ReadImage(str(series_path))
    series = sitk.GetArrayFromImage(image).astype(np.float32)
    step = float(image.GetSpacing()[3])
    flat = series.reshape(series.shape[0], -1)
    enhancement = flat.max(axis=0) - flat[:3].mean(axis=0)
    brightest = np.argsort(enhancement)[-max(flat.shape[1] // 1000, 1):]
    aif = flat[:, brightest].mean(axis=1)
    aif = aif - aif[:3].mean()
    maps = plain_maps(series, step, aif, 3)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, values in maps.items():
        map_image = sitk.GetImageFromArray(values)
        map_image.SetSpacing(image.GetSpacing()[:3])
        sitk.WriteImage(map_image, str(out_dir / f"{name}.nii.gz"))


PAGE_MODES = {"default": {}, "small": {"NUMPY_MADVISE_HUGEPAGE": "0"}}


def timed(command: list[str], cwd: Path | None = None, environment: dict | None = None) -> float:
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, cwd=cwd,
                               env=None if not environment else {**os.environ, **environment})
    elapsed = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"perfusion_command: {' '.join(command)} failed: {completed.stderr.strip()[-300:]}")
    return elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", dest="series", type=Path, default=None)
    parser.add_argument("-slices", type=int, default=22)
    parser.add_argument("-size", type=int, default=256)
    parser.add_argument("-frames", type=int, default=54)
    parser.add_argument("-repeats", type=int, default=3)
    parser.add_argument("-other_checkout", type=Path, default=None,
                        help="another checkout whose isles_perfusion_maps is timed in the same alternation")
    parser.add_argument("-pages", choices=(*PAGE_MODES, "both"), default="both",
                        help="numpy's default pages, 4 kB pages only, or each (see above)")
    parser.add_argument("--reference", nargs=2, type=Path, metavar=("SERIES", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.reference:
        reference(*args.reference)
        return 0
    with tempfile.TemporaryDirectory() as work:
        series = args.series
        if series is None:
            series = Path(work) / "series.nii"
            write_series(series, args.slices, args.size, args.frames)
        command = [sys.executable, "-m", "isles_pipeline.cli.perfusion_maps", "-i", str(series), "-o",
                   str(Path(work) / "engine")]
        plain = [sys.executable, "-m", "benchmarks.perfusion_command", "--reference", str(series),
                 str(Path(work) / "plain")]
        other = [*command[:-1], str(Path(work) / "other")]
        modes = list(PAGE_MODES) if args.pages == "both" else [args.pages]
        times = {(mode, what): [] for mode in modes for what in ("engine", "plain", "other")}
        for _ in range(args.repeats):  # alternating, so a busy moment hits both
            for mode in modes:
                environment = PAGE_MODES[mode]
                times[mode, "engine"].append(timed(command, Path(__file__).resolve().parents[1], environment))
                times[mode, "plain"].append(timed(plain, environment=environment))
                if args.other_checkout:
                    times[mode, "other"].append(timed(other, args.other_checkout.resolve(), environment))
    for mode in modes:
        engine, reference_s = (float(np.median(times[mode, what])) for what in ("engine", "plain"))
        print(f"{mode} pages: isles_perfusion_maps {engine:.2f} s, plain numpy reference process {reference_s:.2f} "
              f"s: ratio {engine / reference_s:.2f} (median of {args.repeats}; target <= 0.8)")
        if times[mode, "other"]:
            other_s = float(np.median(times[mode, "other"]))
            print(f"{mode} pages, {args.other_checkout}: isles_perfusion_maps {other_s:.2f} s, ratio "
                  f"{other_s / reference_s:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
