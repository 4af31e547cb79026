"""The one exception a bad case raises, so batch steps can report it in one line and go on with the rest."""
from __future__ import annotations


class CaseError(ValueError):
    """A case that cannot be used as it is. `str()` is one line: `<case>: <what is wrong>`."""

    def __init__(self, case: str, message: str) -> None:
        super().__init__(f"{case}: {message}")
        self.case = case
        self.message = message


class CaseFailures(RuntimeError):
    """Raised after a batch step finished the good cases; `failures` maps case name -> one-line reason."""

    def __init__(self, step: str, failures: dict[str, str]) -> None:
        lines = [f"{step}: {len(failures)} case(s) failed"] + [failures[c] for c in sorted(failures)]
        super().__init__("\n".join(lines))
        self.step = step
        self.failures = dict(failures)
