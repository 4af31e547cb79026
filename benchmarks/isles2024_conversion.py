"""Benchmark of isles_convert_isles2024 on one full-size subject: wall time and peak memory.

    python -m benchmarks.isles2024_conversion [-z 120] [-t 50] [-w WORK] [--itk_extract]

Writes one synthetic subject in the ISLES 2024 layout at the real grid size (NCCT 512 x 512 x Z int16, maps
float32, mask uint16 with scl_slope 1/65535, DWI float32, and a 4D CTP in NCCT space, 512 x 512 x Z x T int16,
0 outside a 60 % slab), the series written frame by frame so that making it does not need it in memory.
Then converts it with one worker (in this process) while sampling the process's RSS (PeakMemory). The numbers
are the converter's, not the phantom's physics (none is simulated here: smooth fields plus noise).
"""
from __future__ import annotations

import argparse
import gzip
import json
import struct
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from benchmarks.preprocess import PeakMemory, _process_tree_rss

SUB = "sub-stroke0001"


def _image(array: np.ndarray, spacing=(0.45, 0.45, 1.0)) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    return image


def _write_series(path: Path, size_xyz: tuple[int, int, int], frames: int, covered: slice, rng) -> None:
    """A 4D int16 NIfTI written frame by frame: the header from SimpleITK (one frame), dim[4] patched."""
    x, y, z = size_xyz
    with tempfile.TemporaryDirectory() as folder:
        one = sitk.GetImageFromArray(np.zeros((1, z, y, x), np.int16), isVector=False)
        one.SetSpacing((0.45, 0.45, 1.0, 1.5))
        sitk.WriteImage(one, str(Path(folder) / "h.nii"), useCompression=False)
        header = bytearray((Path(folder) / "h.nii").read_bytes()[:352])
    struct.pack_into("<h", header, 48, frames)  # dim[4]
    base = (40 + 10 * np.sin(np.linspace(0, 6, y))[:, None] * np.cos(np.linspace(0, 6, x))[None, :]).astype(np.int16)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=1,
                                                 mtime=0) as target:
        target.write(bytes(header))
        for t in range(frames):
            frame = np.zeros((z, y, x), np.int16)
            frame[covered] = base + np.int16(20 * np.exp(-((t - frames / 3) / 5) ** 2))
            frame[covered, ::7, ::7] += rng.integers(-8, 8, frame[covered, ::7, ::7].shape, dtype=np.int16)
            target.write(frame.tobytes())


def make_subject(root: Path, z: int, frames: int) -> int:
    """The subject under root/train; returns the series' decompressed size in bytes."""
    rng = np.random.default_rng(0)
    size = (512, 512, z)
    raw1 = root / "raw_data" / SUB / "ses-01"
    acute = root / "derivatives" / SUB / "ses-01"
    follow = root / "derivatives" / SUB / "ses-02"
    for folder in (raw1, acute / "perfusion-maps", follow):
        folder.mkdir(parents=True, exist_ok=True)
    field = np.sin(np.linspace(0, 9, 512))[:, None] * np.cos(np.linspace(0, 7, 512))[None, :]
    smooth = np.broadcast_to(field, (z, 512, 512))  # real images compress; pure noise would time zlib instead
    ct = (30 + 20 * smooth + rng.integers(0, 4, (z, 512, 512))).astype(np.int16)
    sitk.WriteImage(_image(ct), str(raw1 / f"{SUB}_ses-01_ncct.nii.gz"))
    for name in ("cbf", "cbv", "mtt", "tmax"):
        sitk.WriteImage(_image(np.round(10 + 5 * smooth, 1).astype(np.float32)),
                        str(acute / "perfusion-maps" / f"{SUB}_ses-01_space-ncct_{name}.nii.gz"))
    sitk.WriteImage(_image(np.round(400 + 50 * smooth).astype(np.float32)),
                    str(follow / f"{SUB}_ses-02_space-ncct_dwi.nii.gz"))
    mask = np.zeros((z, 512, 512), np.uint16)
    mask[z // 2: z // 2 + 5, 200:260, 200:260] = 65535
    mask_path = follow / f"{SUB}_ses-02_space-ncct_lesion-msk.nii"
    sitk.WriteImage(_image(mask), str(mask_path))
    with open(mask_path, "r+b") as handle:
        handle.seek(112)
        handle.write(struct.pack("<2f", 1 / 65535, 0.0))
    covered = slice(int(0.2 * z), int(0.8 * z))
    _write_series(acute / f"{SUB}_ses-01_space-ncct_ctp.nii.gz", size, frames, covered, rng)
    return 512 * 512 * z * frames * 2


def itk_extract_times(path: Path) -> dict:
    """Seconds SimpleITK's streaming extraction (ImageFileReader ExtractIndex/ExtractSize) takes for the first,
    middle and last frame of a .nii.gz series, beside one full decompression by gzip: why nifti_stream exists."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    x, y, z, t = reader.GetSize()
    times = {}
    for frame in (0, t // 2, t - 1):
        reader.SetExtractIndex((0, 0, 0, frame))
        reader.SetExtractSize((x, y, z, 0))
        start = time.perf_counter()
        reader.Execute()
        times[f"itk_extract_frame_{frame}_s"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    with gzip.open(path) as handle:
        while handle.read(1 << 22):
            pass
    times["gzip_full_decompression_s"] = round(time.perf_counter() - start, 2)
    return times


def run(work: Path, z: int = 120, frames: int = 50, itk_extract: bool = False) -> dict:
    from isles_pipeline.dataset_conversion.isles2024_convert import convert_isles2024

    train = work / "train"
    start = time.perf_counter()
    series_bytes = make_subject(train, z, frames)
    make_s = time.perf_counter() - start
    baseline = _process_tree_rss(__import__("os").getpid())
    with PeakMemory() as memory:
        start = time.perf_counter()
        result = convert_isles2024(train, output_root=work / "raw")
        convert_s = time.perf_counter() - start
    if result.failures:
        raise RuntimeError("; ".join(result.failures))
    extract = itk_extract_times(train / "derivatives" / SUB / "ses-01" / f"{SUB}_ses-01_space-ncct_ctp.nii.gz") \
        if itk_extract else {}
    return {**extract, "grid": [512, 512, z], "frames": frames, "series_decompressed_gb": round(series_bytes / 1e9, 2),
            "make_s": round(make_s, 1), "convert_s": round(convert_s, 1),
            "rss_before_gb": round(baseline / 1e9, 3), "peak_rss_gb": round(memory.peak_bytes / 1e9, 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.isles2024_conversion",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("-z", type=int, default=120, help="slices of the NCCT grid (default 120)")
    parser.add_argument("-t", type=int, default=50, help="CTP frames (default 50)")
    parser.add_argument("-w", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    parser.add_argument("--itk_extract", action="store_true",
                        help="also time SimpleITK's per-frame streaming extraction on the same series")
    args = parser.parse_args(argv)
    if args.w is not None:
        print(json.dumps(run(args.w, args.z, args.t, args.itk_extract), indent=2))
        return 0
    with tempfile.TemporaryDirectory(prefix="isles2024_bench_") as work:
        print(json.dumps(run(Path(work), args.z, args.t, args.itk_extract), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
