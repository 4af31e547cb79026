"""Speed and memory of importing a CTP DICOM export: `isles_dicom_to_nifti` on a 16-slice 512 x 512 study of 50
time points (800 files), against pydicom reading the same files bare (dcmread + pixel_array), in one run.

Each step runs in its own process, measured from outside: wall time and peak resident memory (wait4). Target:
the whole command under 10 s and 2 GB on 2 cores. Run from a checkout: `python -m benchmarks.dicom_import`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BARE_READ = """
import sys, pathlib, pydicom
total = 0
for path in sorted(p for p in pathlib.Path(sys.argv[1]).rglob('*') if p.is_file()):
    total += int(pydicom.dcmread(path).pixel_array.sum() != 0)
print(total)
"""


def write_export(folder: Path, slices: int, size: int, frames: int, syntax: str | None) -> float:
    """A head-like series (a disk of brain in air, noise) in the Canon style: one series, temporal indices."""
    from isles_pipeline.phantom.dicom_export import write_ctp_export

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    head = np.where(np.hypot(yy - size / 2, xx - size / 2) < size * 0.4, 35.0, -1000.0)
    series = np.empty((frames, slices, size, size), np.float32)
    for t in range(frames):
        series[t] = np.round(head + rng.normal(0, 8, (slices, size, size)) + 40 * np.exp(-((t - 15) / 6) ** 2))
    times = np.arange(frames) * 1.0 + np.where(np.arange(frames) > 30, np.arange(frames) - 30, 0) * 1.0
    return float(len(write_ctp_export(folder, series, (-120.0, -120.0, 10.0), (0.47, 0.47, 5.0), np.eye(3), times,
                                      "temporal_index", transfer_syntax=syntax)))


def measure(command: list[str]) -> dict:
    """Wall seconds and peak RSS (MiB) of one child process (started from this small process, so the peak is
    the child's own)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    stdout, stderr = process.stdout.read().decode(), process.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[:3]} failed: {stderr.strip().splitlines()[-1:]}")
    return {"seconds": round(seconds, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "stdout": stdout.strip()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-slices", type=int, default=16)
    parser.add_argument("-size", type=int, default=512)
    parser.add_argument("-frames", type=int, default=50)
    parser.add_argument("-syntax", default=None, help="transfer syntax UID to compress with (default: none)")
    parser.add_argument("--compress", action="store_true", help="measure the command with --compress")
    parser.add_argument("-json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="isles_dicom_bench_") as work:
        work = Path(work)
        start = time.perf_counter()
        python = sys.executable
        # in a child process: a forked child's peak RSS would count the memory this process holds
        writer = (f"import sys; sys.path.insert(0, {str(REPO)!r}); from benchmarks.dicom_import import write_export; "
                  f"print(write_export(__import__('pathlib').Path({str(work / 'export')!r}), {args.slices}, "
                  f"{args.size}, {args.frames}, {args.syntax!r}))")
        files = float(measure([python, "-c", writer])["stdout"])
        print(f"wrote {files:.0f} files in {time.perf_counter() - start:.1f} s")
        results = {"files": files, "cpus": os.cpu_count(), "syntax": args.syntax or "explicit VR little endian"}
        results["pydicom_bare_read"] = measure([python, "-c", BARE_READ, str(work / "export")])
        results["isles_dicom_to_nifti"] = measure([python, "-m", "isles_pipeline.cli.dicom_to_nifti", "-i",
                                                   str(work / "export"), "-o", str(work / "out")]
                                                  + (["--compress"] if args.compress else []))
        results["output_mib"] = round(sum(p.stat().st_size for p in (work / "out").iterdir()) / 2**20, 1)
    for name in ("pydicom_bare_read", "isles_dicom_to_nifti"):
        row = results[name]
        print(f"{name:22s} {row['seconds']:6.2f} s  {row['peak_rss_mib']:7.1f} MiB peak")
    print(f"output: {results['output_mib']} MiB")
    command = results["isles_dicom_to_nifti"]
    met = command["seconds"] < 10 and command["peak_rss_mib"] < 2048
    print(f"target (< 10 s, < 2048 MiB): {'met' if met else 'MISSED'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
