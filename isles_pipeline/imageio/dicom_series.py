"""Which slices of an export form a 4D CTP series, and in what time order.

A CTP series is the same slice positions repeated at MIN_TIME_POINTS or more time points. Vendors store it
as one series (time points told apart by TemporalPositionIndex, AcquisitionNumber, or only by the times in the
headers) or as one series per time point sharing a FrameOfReferenceUID; both become a `Candidate`. Problems
of a candidate (a missing slice, duplicated instances, mixed sizes, no times) are recorded, not raised: they
matter only if that candidate is the one chosen (`dicom_ctp`), since an export may hold broken series that
are not the CTP.

Frame times are each time point's mean slice time (a wide detector stamps every slice alike; a shuttle or
sequential protocol does not, and the mean is the time the volume stands for), relative to the first time
point, in seconds, never rounded to a constant interval.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from isles_pipeline.imageio.dicom_geometry import GeometryError, cluster_positions, normal_of
from isles_pipeline.imageio.dicom_scan import TIME_SOURCES, SliceHeader

logger = logging.getLogger(__name__)

MIN_TIME_POINTS = 10


@dataclass
class Candidate:
    """A set of slices that may be a 4D series; after `organise`, `frames` holds them by time and position."""

    label: str
    names: set  # what `-series` matches: SeriesInstanceUIDs, SeriesNumbers, descriptions, FrameOfReferenceUID
    slices: list
    per_time_point_series: bool = False
    frames: list = field(default_factory=list)  # [time point][position] -> SliceHeader
    times_s: Optional[np.ndarray] = None
    time_source: str = ""
    time_key: str = ""
    problem: Optional[str] = None

    @property
    def modality(self) -> str:
        return self.slices[0].modality

    @property
    def size(self) -> int:
        return len(self.slices)


def _series_label(slices: list, time_points: int, positions: int) -> str:
    first = slices[0]
    number = f"series {first.series_number}" if first.series_number is not None else "series"
    times = f"{time_points} time points x " if time_points > 1 else ""
    return f'{number} "{first.series_description}" ({first.modality}, {times}{positions} slices, {first.series_uid})'


def _names(slices: list) -> set:
    names = set()
    for header in slices:
        names.update({header.series_uid, header.series_description, header.frame_of_reference})
        if header.series_number is not None:
            names.add(str(header.series_number))
    names.discard("")
    return names


def _positions(slices: list) -> np.ndarray:
    """Position number of every slice, along the first slice's normal."""
    normal = normal_of(slices[0].orientation)
    return cluster_positions(np.array([h.position for h in slices]), normal)


def _signature(slices: list) -> tuple:
    """What slices of one stack must share: modality, frame of reference, matrix, spacing, orientation."""
    first = slices[0]
    return (first.modality, first.frame_of_reference, first.rows, first.columns,
            tuple(np.round(first.pixel_spacing, 4)), tuple(np.round(first.orientation, 4)))


def find_candidates(slices: list[SliceHeader]) -> tuple[list[Candidate], list[str]]:
    """(4D candidates, labels of the other series) among an export's image slices."""
    by_series = defaultdict(list)
    for header in slices:
        by_series[header.series_uid].append(header)
    candidates, others, volumes = [], [], defaultdict(list)
    for series in by_series.values():
        try:
            labels = _positions(series)
        except GeometryError:
            others.append(_series_label(series, 1, len(series)))
            continue
        counts = np.bincount(labels)
        if counts.max() == 1:
            volumes[_signature(series)].append((series, labels))
        elif counts.max() >= MIN_TIME_POINTS:
            candidates.append(Candidate(_series_label(series, int(counts.max()), len(counts)), _names(series),
                                        series))
        else:
            others.append(_series_label(series, int(counts.max()), len(counts)))
    for group in volumes.values():
        merged, rest = _merge_series_per_time_point(group)
        candidates.extend(merged)
        others.extend(_series_label(series, 1, len(series)) for series in rest)
    return candidates, others


def _merge_series_per_time_point(group: list) -> tuple[list[Candidate], list]:
    """One series per time point: 3D series of one frame of reference and matrix at the same positions (derived
    ones, such as a temporal MIP, left out when the acquired ones make a 4D series by themselves)."""
    depth = {}
    for series, _ in group:
        normal = normal_of(series[0].orientation)
        depth[id(series)] = frozenset(np.round(np.array([h.position for h in series]) @ normal, 1).tolist())
    counts = defaultdict(int)
    for series, _ in group:
        counts[depth[id(series)]] += 1
    common = max(counts, key=lambda key: (counts[key], len(key)))
    members = [series for series, _ in group if depth[id(series)] == common]
    partial = [series for series, _ in group if depth[id(series)] < common]
    rest = [series for series, _ in group if not depth[id(series)] <= common]
    acquired = [series for series in members + partial if not series[0].derived]
    if len(acquired) >= MIN_TIME_POINTS:  # a TMIP or subtraction series at the same positions is no time point
        rest += [series for series in members + partial if series[0].derived]
        members = [series for series in members if not series[0].derived]
        partial = [series for series in partial if not series[0].derived]
    if len(members) + len(partial) < MIN_TIME_POINTS:
        return [], [series for series, _ in group]
    slices = [h for series in members + partial for h in series]
    first = members[0][0]
    label = (f'{len(members) + len(partial)} series "{first.series_description}" ({first.modality}, one per time '
             f"point x {len(common)} slices, frame of reference {first.frame_of_reference})")
    candidate = Candidate(label, _names(slices), slices, per_time_point_series=True)
    if partial:
        short = partial[0][0]
        candidate.problem = (f"a time point is missing slice(s): series {short.series_number} ({short.series_uid}) "
                             f"has {len(partial[0])} of the {len(common)} slice positions of the others")
    return [candidate], rest


def _consistency_problem(slices: list) -> Optional[str]:
    """Mixed matrix size, pixel spacing or orientation within a candidate, naming two files that differ."""
    first = slices[0]
    for header in slices[1:]:
        if (header.rows, header.columns) != (first.rows, first.columns):
            return (f"slices of different sizes within the series: {first.columns}x{first.rows} ({first.path.name}) "
                    f"and {header.columns}x{header.rows} ({header.path.name})")
        if not np.allclose(header.pixel_spacing, first.pixel_spacing, rtol=1e-4, atol=1e-5):
            return (f"slices of different pixel spacing within the series: {list(first.pixel_spacing)} "
                    f"({first.path.name}) and {list(header.pixel_spacing)} ({header.path.name})")
        if not np.allclose(header.orientation, first.orientation, atol=1e-4):
            return f"slices of different orientation within the series: {first.path.name} and {header.path.name}"
    return None


def _time_sources(slices: list) -> list[str]:
    return [source for source in TIME_SOURCES if all(source in h.times for h in slices)]


def _key_groups(candidate: Candidate, positions: np.ndarray) -> tuple[str, list]:
    """Time point groups from a header key: TemporalPositionIndex, AcquisitionNumber, or the series. A key is
    used only when it has as many values as a slice position has time points (some exports put 1 everywhere);
    a duplicated file adds a time point at its position, so the key is not used and the times find it."""
    slices, count = candidate.slices, int(np.bincount(positions).max())
    if candidate.per_time_point_series:
        key = "SeriesInstanceUID"
        values = [h.series_uid for h in slices]
    elif all(h.temporal_index is not None for h in slices) and len({h.temporal_index for h in slices}) == count:
        key, values = "TemporalPositionIndex", [h.temporal_index for h in slices]
    elif all(h.acquisition_number is not None for h in slices) and len({h.acquisition_number for h in slices}) == count:
        key, values = "AcquisitionNumber", [h.acquisition_number for h in slices]
    else:
        return "", []
    groups = defaultdict(list)
    for header, value, position in zip(slices, values, positions):
        groups[value].append((position, header))
    return key, [groups[value] for value in sorted(groups)]


def _time_groups(candidate: Candidate, positions: np.ndarray, source: str) -> list:
    """Time point groups when only times tell them apart: the k-th time at every position is time point k."""
    by_position = defaultdict(list)
    for header, position in zip(candidate.slices, positions):
        by_position[position].append(header)
    count = max(len(v) for v in by_position.values())
    groups = [[] for _ in range(count)]
    for position, headers in sorted(by_position.items()):
        for rank, header in enumerate(sorted(headers, key=lambda h: h.times[source])):
            groups[rank].append((position, header))
    return groups


def _group_problem(groups: list, num_positions: int, key: str) -> Optional[str]:
    for number, group in enumerate(groups):
        seen = {}
        for position, header in group:
            if position in seen:
                return (f"duplicated instances: {seen[position].path} and {header.path} are both slice "
                        f"{position + 1} of time point {number + 1}" + (f" ({key})" if key else ""))
            seen[position] = header
        if len(seen) < num_positions:
            missing = sorted(set(range(num_positions)) - set(seen))
            return (f"a time point is missing a slice: time point {number + 1}" + (f" ({key})" if key else "")
                    + f" has {len(seen)} of {num_positions} slices (missing slice position(s) "
                    + ", ".join(str(m + 1) for m in missing[:5]) + ")")
    return None


def _frame_times(groups: list, sources: list) -> tuple[str, np.ndarray]:
    """(source, per-group mean time) of the first source that tells every time point apart; a source with
    fractions of a second wins over one de-identification left with whole seconds only."""
    usable = []
    for source in sources:
        times = np.array([np.mean([h.times[source] for _, h in group]) for group in groups])
        if len(np.unique(np.round(times, 6))) == len(times):
            whole = all(float(h.times[source]).is_integer() for group in groups for _, h in group)
            usable.append((whole, source, times))
    if not usable:
        return "", np.array([])
    whole, source, times = min(usable, key=lambda item: item[0])  # stable: preference order among equals
    if whole:
        logger.warning("frame times from %s have whole-second resolution only", source)
    return source, times


def organise(candidate: Candidate) -> Candidate:
    """Fill `frames`, `times_s`, `time_source`, `time_key`; or set `problem` (first problem found)."""
    if candidate.problem:
        return candidate
    candidate.problem = _consistency_problem(candidate.slices)
    if candidate.problem:
        return candidate
    positions = _positions(candidate.slices)
    num_positions = int(positions.max()) + 1
    sources = _time_sources(candidate.slices)
    key, groups = _key_groups(candidate, positions)
    if not groups:
        by_position = defaultdict(list)
        for header, position in zip(candidate.slices, positions):
            by_position[position].append(header)
        distinct = [s for s in sources
                    if all(len({h.times[s] for h in v}) == len(v) for v in by_position.values())]
        if not distinct:
            candidate.problem = _duplicate_or_untimed(by_position, sources)
            return candidate
        counts = {position: len(headers) for position, headers in by_position.items()}
        if len(set(counts.values())) > 1:
            short = min(counts, key=counts.get)
            candidate.problem = (f"a time point is missing a slice: slice position {short + 1} has {counts[short]} "
                                 f"time points, others {max(counts.values())}")
            return candidate
        key, groups = "", _time_groups(candidate, positions, distinct[0])
    candidate.problem = _group_problem(groups, num_positions, key)
    if candidate.problem:
        return candidate
    source, times = _frame_times(groups, sources)
    if not source:
        candidate.problem = ("no frame times: no AcquisitionDateTime, AcquisitionTime, TriggerTime or ContentTime "
                             "present on every slice that differs between the time points")
        return candidate
    order = np.argsort(times, kind="stable")
    if key and key != "SeriesInstanceUID" and np.any(order != np.arange(len(order))):
        logger.warning("%s: time points ordered by %s, which disagrees with the order of %s", candidate.label,
                       source, key)
    spread = max(np.ptp([h.times[source] for _, h in group]) for group in groups)
    if len(times) > 1 and spread > 0.5 * np.min(np.diff(np.sort(times))):
        logger.warning("%s: the slices of one time point span up to %.2f s of %s, more than half the shortest "
                       "frame interval (a shuttle or toggling-table protocol?): each frame's time is its mean",
                       candidate.label, spread, source)
    candidate.frames = [[h for _, h in sorted(groups[i], key=lambda item: item[0])] for i in order]
    candidate.times_s = np.round(times[order] - times[order][0], 6)  # TM has microsecond resolution
    described = {"SeriesInstanceUID": "one series per time point", "": f"{source} at each slice position"}
    candidate.time_source, candidate.time_key = source, described.get(key, key)
    return candidate


def _duplicate_or_untimed(by_position: dict, sources: list) -> str:
    """The problem of slices at one position that neither a key nor a time tells apart."""
    for headers in by_position.values():
        for source in sources[:1] or [None]:
            seen = {}
            for header in headers:
                value = header.times[source] if source else (header.sop_instance_uid, header.frame)
                if value in seen:
                    return (f"duplicated instances: {seen[value].path} and {header.path} are at the same slice "
                            "position and time")
                seen[value] = header
    return ("no way to tell the time points apart: no TemporalPositionIndex or AcquisitionNumber per time point, "
            "and no header time that differs between the slices at one position")
