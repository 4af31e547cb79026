"""What frame times a CT perfusion series can have: the check that catches a timing in the wrong unit.

Why: a header whose frame interval is in milliseconds without its unit (pixdim[4] = 1000, xyzt_units unset)
reads as 1000 s frames. Nothing downstream can tell: the engine's uniform time grid then held ~50,000 samples
and the process was killed for memory. Clinical CTP protocols take a frame every 0.5 to 3 s (up to ~10 s in a
late phase) for 40 to 120 s, a few minutes at most (Konstas et al., AJNR 2009;30:885-892, part 2: technical
implementations), so the bounds below are wide but rule out a factor of 1000 either way.
"""
from __future__ import annotations

from isles_pipeline.errors import CaseError

INTERVAL_S = (0.1, 20.0)  # plausible median frame interval
MAX_DURATION_S = 600.0  # first to last frame


def check_ctp_timing(median_interval_s: float, duration_s: float, name: str) -> None:
    """CaseError (one line) when a series' frame interval or duration is implausible for CT perfusion."""
    low, high = INTERVAL_S
    if low <= median_interval_s <= high and duration_s <= MAX_DURATION_S:
        return
    raise CaseError(name, f"frame times implausible for CT perfusion: a median interval of {median_interval_s:g} s "
                          f"over {duration_s:g} s (expected {low:g}-{high:g} s frames, at most {MAX_DURATION_S:g} "
                          "s in all): is the time unit wrong (milliseconds read as seconds, or the reverse)? "
                          "Give per-frame times in seconds")
