"""Reading and writing NIfTI the way ISLES 2018 needs it.

ISLES 2018 files carry `sform_code 2` with an IDENTITY sform; the true spacing is only in the qform/pixdim.
nibabel trusts the sform (1 mm isotropic, wrong); ITK falls back to the qform when the sform's scales look
wrong. We read with SimpleITK, detect the identity sform explicitly and rebuild the geometry from the qform
and pixdim whenever SimpleITK's answer disagrees with them, so the rule does not depend on an ITK heuristic.

Every write goes through `isles_pipeline.files.atomic_path` (the project's one writer), so an interrupted run
never leaves a half-written file behind and an old file is replaced only by a complete new one.
"""
from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from isles_pipeline.files import atomic_path, temporary_sibling

NIFTI_SUFFIXES = (".nii.gz", ".nii")

# NIfTI-1 header byte offsets (nifti1.h): qform_code, sform_code, srow_x/y/z.
_QFORM_CODE_OFFSET = 252
_SFORM_CODE_OFFSET = 254
_SROW_OFFSET = 280
_ALIGNED_ANAT = 2


class NiftiError(ValueError):
    """A file that cannot be used as it is; the message names the file and the problem."""

    def __init__(self, path: Path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


def is_nifti(path: Path) -> bool:
    name = Path(path).name
    return name.endswith(NIFTI_SUFFIXES) and not name.startswith("._")


def strip_nifti_suffix(name: str) -> str:
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


@contextlib.contextmanager
def _quiet_itk():
    """ITK warns 'unexpected scales in sform' on every ISLES file; we handle that case ourselves."""
    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)


def _header(path: Path) -> dict[str, str]:
    """ITK's view of the header, plus `qfac` from the bytes: ITK reports pixdim[0] as 0 even when it is -1."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    header = {key: reader.GetMetaData(key) for key in reader.GetMetaDataKeys()}
    raw = raw_header(path)
    if len(raw) >= 80 and struct.unpack_from("<i", raw, 0)[0] == 348:
        header["qfac"] = "-1" if struct.unpack_from("<f", raw, 76)[0] < 0 else "1"
    return header


def raw_header(path: Path) -> bytes:
    """The first 352 bytes of a .nii or .nii.gz file (b"" when a gzip stream cannot even start)."""
    path = Path(path)
    with (gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")) as handle:
        try:
            return handle.read(352)
        except (OSError, EOFError):
            return b""


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split()]


def has_identity_sform(header: dict[str, str]) -> bool:
    """True for the ISLES quirk: a set sform code whose 3x4 matrix is the identity."""
    if int(header.get("sform_code", "0")) <= 0:
        return False
    try:
        rows = [_floats(header[f"srow_{axis}"]) for axis in "xyz"]
    except (KeyError, ValueError):
        return False
    return np.allclose(np.array(rows), np.eye(3, 4))


def _qform_direction_lps(header: dict[str, str]) -> np.ndarray:
    """Direction cosines (ITK's LPS convention) from the qform quaternion (NIfTI-1 method 2)."""
    b, c, d = (float(header.get(f"quatern_{k}", "0")) for k in "bcd")
    a = np.sqrt(max(0.0, 1.0 - (b * b + c * c + d * d)))
    rotation = np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
        ]
    )
    qfac = -1.0 if float(header.get("qfac", "1")) < 0 else 1.0
    rotation[:, 2] *= qfac
    return np.diag([-1.0, -1.0, 1.0]) @ rotation  # RAS -> LPS


def _squeeze_to_4d(image: sitk.Image, path: Path) -> sitk.Image:
    """A 5D series with one singleton axis among the 4th and 5th becomes (x, y, z, t)."""
    size = image.GetSize()
    if size[3] != 1 and size[4] != 1:
        raise NiftiError(path, f"5D image of size {size} has no singleton 4th or 5th axis")
    time_axis = 4 if size[3] == 1 else 3
    array = sitk.GetArrayFromImage(image)  # (a5, a4, z, y, x)
    array = array.reshape((size[time_axis],) + array.shape[2:])
    squeezed = sitk.GetImageFromArray(array, isVector=False)
    spacing = image.GetSpacing()
    squeezed.SetSpacing(tuple(spacing[:3]) + (spacing[time_axis],))
    squeezed.SetOrigin(tuple(image.GetOrigin()[:3]) + (0.0,))
    direction = np.array(image.GetDirection()).reshape(5, 5)
    direction4 = np.eye(4)
    direction4[:3, :3] = direction[:3, :3]
    squeezed.SetDirection(tuple(direction4.ravel()))
    return squeezed


def _fix_identity_sform(image: sitk.Image, header: dict[str, str]) -> sitk.Image:
    """Take spacing from pixdim and direction from the qform when the sform is an identity."""
    if not has_identity_sform(header) or int(header.get("qform_code", "0")) <= 0:
        return image
    dimension = image.GetDimension()
    pixdim = [abs(float(header[f"pixdim[{i}]"])) for i in range(1, 4)]
    qform_direction = _qform_direction_lps(header)
    current_direction = np.array(image.GetDirection()).reshape(dimension, dimension)[:3, :3]
    # ITK usually falls back to the qform by itself; keep its full-precision answer when it agrees.
    # (The header's text metadata rounds pixdim to 6 digits.)
    if np.allclose(image.GetSpacing()[:3], pixdim, rtol=1e-5) and np.allclose(current_direction, qform_direction):
        return image
    spacing = list(image.GetSpacing())
    spacing[:3] = pixdim
    image.SetSpacing(spacing)
    direction = np.eye(dimension)
    direction[:3, :3] = qform_direction
    image.SetDirection(tuple(direction.ravel()))
    origin = list(image.GetOrigin())
    q_offset = [float(header.get(f"qoffset_{k}", "0")) for k in "xyz"]
    origin[:3] = [-q_offset[0], -q_offset[1], q_offset[2]]  # RAS -> LPS
    image.SetOrigin(origin)
    return image


def read_image(path: Path) -> sitk.Image:
    """Read a NIfTI file as a 3D or 4D SimpleITK image with the ISLES header quirk resolved.

    Raises NiftiError naming the file for anything unreadable or truncated.
    """
    path = Path(path)
    try:
        with _quiet_itk():
            header = _header(path)
            check_complete(path)
            image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        text = str(error).strip()
        reason = "not a NIfTI file" if "Unable to determine ImageIO" in text else text.splitlines()[-1][:200]
        raise NiftiError(path, f"cannot read NIfTI ({reason})") from None
    if image.GetDimension() == 5:
        image = _squeeze_to_4d(image, path)
    image = _fix_identity_sform(image, header)
    return image


def check_complete(path: Path) -> None:
    """Raise NiftiError for a truncated file: ITK 5 reads one silently, padding the missing voxels with 0.

    Uncompressed: the file must hold vox_offset + all voxels. Gzipped: the stream's trailer (ISIZE, the
    uncompressed length modulo 2^32, RFC 1952) is compared first, which a cut file fails without
    decompressing; only on a mismatch (a cut file, or a valid multi-member stream such as bgzip writes) is
    the stream decompressed and counted.
    """
    path = Path(path)
    compressed = path.name.endswith(".gz")
    raw = raw_header(path)
    if compressed and not raw:
        raise NiftiError(path, "cannot read NIfTI (corrupt gzip stream)")
    if len(raw) < 348 or struct.unpack_from("<i", raw, 0)[0] != 348:
        return  # not NIfTI-1 little-endian: let ITK decide
    dims = struct.unpack_from("<8h", raw, 40)
    voxels = int(np.prod([max(d, 1) for d in dims[1 : dims[0] + 1]], dtype=np.int64))
    expected = int(struct.unpack_from("<f", raw, 108)[0]) + voxels * struct.unpack_from("<h", raw, 72)[0] // 8
    if compressed:
        with open(path, "rb") as handle:
            handle.seek(-4, os.SEEK_END)
            stored = struct.unpack("<I", handle.read(4))[0]
        if stored != expected % 2**32 and _decompressed_length(path) < expected:
            raise NiftiError(path, "cannot read NIfTI (truncated: gzip stream shorter than the header's size)")
    elif path.stat().st_size < expected:
        raise NiftiError(path, f"cannot read NIfTI (truncated: {path.stat().st_size} of {expected} bytes)")


def _decompressed_length(path: Path) -> int:
    """Bytes in a gzip stream (all members); a cut stream counts what could be read."""
    total = 0
    with gzip.open(path, "rb") as handle:
        try:
            while chunk := handle.read(1 << 22):
                total += len(chunk)
        except (OSError, EOFError):
            pass
    return total


def read_array(path: Path) -> tuple[np.ndarray, sitk.Image]:
    image = read_image(path)
    return sitk.GetArrayFromImage(image), image


def write_image(image: sitk.Image, path: Path, compression_level: int = 1) -> None:
    """Write through `files.atomic_path` (same-folder temporary, fsync, rename; removed on any error).

    `.nii.gz` is compressed here with gzip at `compression_level` (default 1), not by ITK: ITK 5 ignores
    the requested level and its default takes ~3x longer on a 4D series, for a file only ~20 % smaller
    (perfusion noise compresses poorly at any level). mtime 0 and no file name in the gzip header keep
    the bytes identical between runs.
    """
    path = Path(path)
    with atomic_path(path) as temporary:
        if not path.name.endswith(".gz"):
            sitk.WriteImage(image, str(temporary), useCompression=False)
            return
        uncompressed = temporary_sibling(path.with_name(path.name[: -len(".gz")]))
        try:
            sitk.WriteImage(image, str(uncompressed), useCompression=False)
            with open(uncompressed, "rb") as source, open(temporary, "wb") as raw_target:
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw_target, compresslevel=compression_level,
                                   mtime=0) as target:
                    shutil.copyfileobj(source, target, length=1 << 22)
        finally:
            uncompressed.unlink(missing_ok=True)


def write_with_isles_quirk(image: sitk.Image, path: Path) -> None:
    """Write an uncompressed .nii exactly as ISLES 2018 did: codes 2, identity sform, spacing in the qform.

    SimpleITK writes a consistent qform and sform; we then overwrite the sform rows with the identity.
    """
    path = Path(path)
    if not path.name.endswith(".nii"):
        raise ValueError(f"{path}: the ISLES quirk is only written to uncompressed .nii")
    with atomic_path(path) as temporary:
        sitk.WriteImage(image, str(temporary), useCompression=False)
        with open(temporary, "r+b") as handle:
            handle.seek(_QFORM_CODE_OFFSET)
            handle.write(struct.pack("<hh", _ALIGNED_ANAT, _ALIGNED_ANAT))
            handle.seek(_SROW_OFFSET)
            handle.write(struct.pack("<12f", *np.eye(3, 4).ravel()))
