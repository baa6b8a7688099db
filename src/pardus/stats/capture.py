"""Individuals: capture histories from confirmed identifications, MNKA and new animals per year.

A confirmed identification is (individual, station, instant). Binned by occasion they become the
capture-history array ``individual x occasion x detector`` that both closed-population models
(collapsed over detectors) and SECR (kept spatial) take.

Minimum number known alive (MNKA, Krebs 1966) in year y counts the animals seen in y plus those
not seen in y but seen both before and after it, which must have been alive (and, for a plot,
resident) in y. New individuals in year y are those whose first record (in the records given, e.g.
one plot) falls in y.

References:
    Krebs, C. J. (1966) Demographic changes in fluctuating populations of Microtus californicus.
    Ecological Monographs 36, 239-273.
    Otis, D. L. et al. (1978) Statistical inference from capture data on closed animal populations.
    Wildlife Monographs 62 (capture-history notation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from pardus.stats.effort import OperationMatrix


class CaptureError(ValueError):
    """Identification records that cannot be turned into capture histories; the message says why."""


@dataclass(frozen=True, eq=False)
class CaptureHistory:
    """Detections per individual, occasion and detector, with the labels of every axis."""

    counts: np.ndarray  # (individuals, occasions, detectors), number of records
    individuals: tuple[str, ...]
    detectors: tuple[str, ...]
    occasion_starts: tuple[datetime, ...]
    occasion_days: float
    outside: int = 0  # records dropped: outside the survey or at a detector not in the list
    no_effort: int = 0  # records dropped: the station had no recorded effort on that occasion

    @property
    def n_individuals(self) -> int:
        return self.counts.shape[0]

    def histories(self) -> np.ndarray:
        """Non-spatial 0/1 histories (individual x occasion) for closed-population models."""
        return (self.counts.sum(axis=2) > 0).astype(np.int64)

    def detections(self) -> np.ndarray:
        """0/1 detection of each individual at each detector on each occasion (proximity data)."""
        return (self.counts > 0).astype(np.int64)


def capture_histories(
    individuals: Sequence[str],
    stations: Sequence[str],
    times: Sequence[datetime],
    operation: OperationMatrix,
    *,
    drop_without_effort: bool = True,
) -> CaptureHistory:
    """Bin identification records into an individual x occasion x detector array.

    Occasions and detectors are those of ``operation`` (the camera-operation matrix), so the
    capture data and the effort always agree; the occasion length is chosen there. Records outside
    the survey period or at stations not in the matrix are counted in ``outside``; records at a
    station on an occasion with zero recorded effort (a clock or deployment-date error) are dropped
    and counted in ``no_effort`` unless ``drop_without_effort`` is False.
    """
    if not len(individuals) == len(stations) == len(times):
        raise CaptureError("individuals, stations and times must have one entry per identification")
    det_index = {s: k for k, s in enumerate(operation.stations)}
    keep: list[tuple[str, int, int]] = []
    outside = no_effort = 0
    for ind, st, t in zip(individuals, stations, times, strict=True):
        if t.tzinfo is None:
            raise CaptureError(f"identification of {ind} at {st} has a time without time zone: {t}")
        k = det_index.get(st)
        j = operation.occasion_of(t)
        if k is None or j < 0:
            outside += 1
            continue
        if operation.days[k, j] <= 0:
            no_effort += 1
            if drop_without_effort:
                continue
        keep.append((ind, j, k))
    ids = tuple(sorted({ind for ind, _, _ in keep}))
    i_index = {s: i for i, s in enumerate(ids)}
    counts = np.zeros((len(ids), operation.n_occasions, len(operation.stations)), dtype=np.int64)
    for ind, j, k in keep:
        counts[i_index[ind], j, k] += 1
    return CaptureHistory(
        counts=counts,
        individuals=ids,
        detectors=operation.stations,
        occasion_starts=operation.occasion_starts,
        occasion_days=operation.occasion_days,
        outside=outside,
        no_effort=no_effort,
    )


@dataclass(frozen=True)
class YearIndividuals:
    """Individuals of one year (in one plot, if the records were of one plot)."""

    year: int
    seen: int
    mnka: int
    new: int
    seen_ids: tuple[str, ...]
    new_ids: tuple[str, ...]
    known_alive_not_seen: tuple[str, ...]
    first_year_of_records: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "year": self.year,
            "seen": self.seen,
            "mnka": self.mnka,
            "new": self.new,
            "seen_ids": list(self.seen_ids),
            "new_ids": list(self.new_ids),
            "known_alive_not_seen": list(self.known_alive_not_seen),
            "first_year_of_records": self.first_year_of_records,
        }


def individuals_by_year(individuals: Sequence[str], years: Sequence[int]) -> list[YearIndividuals]:
    """Seen, MNKA (Krebs 1966) and new individuals for every year from the first record to the last.

    ``years`` are the (local) calendar years of the records. In the first year of records every
    animal is "new" by definition; ``first_year_of_records`` flags that so a report does not read
    it as recruitment.
    """
    if len(individuals) != len(years):
        raise CaptureError("individuals and years must have one entry per identification")
    if not individuals:
        return []
    by_ind: dict[str, set[int]] = {}
    for ind, y in zip(individuals, years, strict=True):
        by_ind.setdefault(ind, set()).add(int(y))
    first = {i: min(ys) for i, ys in by_ind.items()}
    last = {i: max(ys) for i, ys in by_ind.items()}
    y0, y1 = min(first.values()), max(last.values())
    out = []
    for y in range(y0, y1 + 1):
        seen = sorted(i for i, ys in by_ind.items() if y in ys)
        alive = sorted(i for i in by_ind if y not in by_ind[i] and first[i] < y < last[i])
        new = sorted(i for i in seen if first[i] == y)
        out.append(
            YearIndividuals(
                year=y,
                seen=len(seen),
                mnka=len(seen) + len(alive),
                new=len(new),
                seen_ids=tuple(seen),
                new_ids=tuple(new),
                known_alive_not_seen=tuple(alive),
                first_year_of_records=(y == y0),
            )
        )
    return out
