"""The one rule every command follows for a malformed file it reads, or a place it cannot write.

A plans file, splits, dataset.json, postprocessing.json, fingerprint or case properties with a JSON error
ends the command with one line on stderr, `ERROR <file>: invalid JSON at line L column C: <what>`, and exit 1:
no traceback for a file the user was invited to edit. (`isles_pipeline.files.read_json` builds the message.)
The operating system refusing a file (no permission, a full disk, an output path that is a file) ends it the
same way: `ERROR <path>: <the system's reason>`.
"""
from __future__ import annotations

import functools
import sys
from typing import Callable, Iterable, Optional, Sequence

from isles_pipeline.files import FileFormatError

Main = Callable[[Optional[Sequence[str]]], int]


def reports_file_errors(main: Main) -> Main:
    """Decorate a console entry point `main(argv) -> exit code` with the rule above.

    Handlers inside `main` that catch ValueError must let FileFormatError (a ValueError) through to here.
    """
    @functools.wraps(main)
    def wrapped(argv: Optional[Sequence[str]] = None) -> int:
        try:
            return main(argv)
        except FileFormatError as error:
            print(f"ERROR {error}", file=sys.stderr)
            return 1
        except OSError as error:
            print(f"ERROR {os_error_line(error)}", file=sys.stderr)
            return 1

    return wrapped


def os_error_line(error: OSError) -> str:
    """`<path>: <reason>` of an operating-system error (both paths of a rename), or its own text."""
    if error.filename is None:
        return str(error)
    paths = str(error.filename) + (f" -> {error.filename2}" if error.filename2 is not None else "")
    return f"{paths}: {error.strerror or error}"


def report_failures(failures: Iterable[str]) -> int:
    """A batch command's ending: each failed case's one line on stderr under their count; exit 1 if any, else 0."""
    failures = list(failures)
    if not failures:
        return 0
    print(f"{len(failures)} case(s) failed:", file=sys.stderr)
    for line in failures:
        print(f"  {line}", file=sys.stderr)
    return 1
