"""The one way the project writes a file and reads a JSON.

Rule for every file written: a hidden temporary name in the same folder (keeping the extension, so ITK and
numpy pick the format from it), flush and fsync, rename into place; the temporary is removed on any error,
and an existing file is replaced only by a complete new one. JSON is strict (NaN and inf become null), and is
serialised before anything touches the disk.

Reading: `read_json` turns a missing file or a syntax error into one line naming the file and the position.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

_MULTI_SUFFIXES = (".nii.gz", ".tar.gz")


class FileFormatError(ValueError):
    """A file the project reads that is missing or malformed. `str()` is one line naming the file."""


def temporary_sibling(path: Path) -> Path:
    """A unique hidden name beside `path` that keeps its extension.

    (Not mkstemp: its files are created 0600, and the rename would carry that mode to the result.)
    """
    path = Path(path)
    suffix = next((s for s in _MULTI_SUFFIXES if path.name.endswith(s)), path.suffix)
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{suffix}")


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some file systems do not open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write `path`'s content to; on success it is synced and renamed into place.

    Use it for writers that need a file name (SimpleITK, torch.save, matplotlib): `with atomic_path(p) as tmp:
    writer(tmp)`. On any exception the temporary is removed and `path` keeps its old content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(path)
    try:
        yield temporary
        _fsync_file(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


@contextmanager
def staged_folder(folder: Path) -> Iterator[Path]:
    """Yield a hidden temporary folder beside `folder` to write a set of outputs to; on success every entry
    moves into `folder` (created if needed; an entry of the same name is replaced), on any exception the
    temporary folder is removed and `folder` is left as it was: a command that fails leaves no partial set.
    Created on entry, so an output place that cannot be written fails before the work, not after it."""
    # absolute ("." has no name to put a sibling beside) and through symbolic links (a linked output folder on
    # another file system: the staging folder must sit on the same one, or the final renames would fail)
    folder = Path(folder).resolve()
    folder.parent.mkdir(parents=True, exist_ok=True)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(20, "exists and is not a folder", str(folder))
    staging = temporary_sibling(folder)
    try:
        staging.mkdir()
    except OSError as error:  # name the user's folder, not the hidden one
        raise OSError(error.errno, f"cannot be written ({error.strerror})", str(folder)) from None
    try:
        yield staging
        folder.mkdir(exist_ok=True)
        for entry in sorted(staging.iterdir()):
            target = folder / entry.name
            if target.is_dir() and entry.is_dir():
                shutil.rmtree(target)
            os.replace(entry, target)
        _fsync_folder(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_with(path: Path, write: Callable[[Path], None]) -> None:
    """`write(temporary_path)` produces the file; it lands at `path` only when complete."""
    with atomic_path(path) as temporary:
        write(temporary)


def strict_json_value(obj: Any) -> Any:
    """NaN and inf -> None (strict JSON has neither); tuples -> lists; numpy scalars and arrays -> Python."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(key): strict_json_value(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json_value(value) for value in obj]
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy scalar or array
        return strict_json_value(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def json_text(obj: Any, indent: int = 2) -> str:
    """Strict JSON text; raises before any file is touched if `obj` cannot be serialised."""
    return json.dumps(strict_json_value(obj), indent=indent, allow_nan=False) + "\n"


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json_text(obj))


def write_json_if_changed(path: Path, obj: Any) -> bool:
    """Write only when the content differs (keeps mtimes of unchanged files); True if written."""
    path = Path(path)
    text = json_text(obj)
    if path.is_file():
        try:
            if json.loads(path.read_text()) == json.loads(text):
                return False
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            pass
    atomic_write_text(path, text)
    return True


def read_json(path: Path) -> Any:
    """The parsed JSON at `path`, or FileFormatError with one line: the file, and the error's line and column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileFormatError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise FileFormatError(f"{path}: cannot be read ({error})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise FileFormatError(f"{path}: invalid JSON at line {error.lineno} column {error.colno}: {error.msg}") \
            from None
