"""Sampling effort and detection events: camera operation, trap-nights, independent events, RAI.

A camera's effort is the time it could have photographed an animal: from set-up to retrieval,
minus the gaps when it was broken, full or stolen. Everything downstream (relative abundance,
occupancy, capture histories, SECR usage) divides by this effort, so an uncounted gap shows up as a
fall in abundance; that is why gaps are part of the input and not an afterthought.

Independent events follow the usual camera-trap rule (e.g. O'Brien et al. 2003; camtrapR's
``recordTable``): records of one species at one station belong to the same event until more than
``threshold`` minutes pass (measured from the last record by default, or from the first record of
the event). The relative abundance index is events per 100 trap-nights (O'Brien et al. 2003;
Rovero & Marshall 2009), with a ratio-estimator standard error across stations (Cochran 1977).

References:
    O'Brien, T. G., Kinnaird, M. F. and Wibisono, H. T. (2003) Crouching tigers, hidden prey:
    Sumatran tiger and prey populations in a tropical forest landscape. Animal Conservation 6, 131-139.
    Rovero, F. and Marshall, A. R. (2009) Camera trapping photographic rate as an index of density
    in forest ungulates. Journal of Applied Ecology 46, 1011-1017.
    Cochran, W. G. (1977) Sampling Techniques, 3rd ed., ch. 6 (ratio estimators). Wiley.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np

from pardus.stats.estimates import Estimate, lognormal_positive

DAY = 86400.0


class EffortError(ValueError):
    """Deployment dates or records that cannot be turned into effort; the message names the fix."""


@dataclass(frozen=True)
class DeploymentPeriod:
    """One camera at one station from ``start`` to ``end`` (aware datetimes), with outage gaps."""

    station: str
    start: datetime
    end: datetime
    gaps: tuple[tuple[datetime, datetime], ...] = ()
    deployment_id: str = ""

    def __post_init__(self) -> None:
        label = self.deployment_id or self.station
        for what, t in (("start", self.start), ("end", self.end)):
            if t.tzinfo is None:
                raise EffortError(f"deployment {label}: {what} {t} has no time zone; give it with an offset")
        if self.end <= self.start:
            raise EffortError(f"deployment {label}: it ends ({self.end}) before or when it starts ({self.start})")
        for a, b in self.gaps:
            if a.tzinfo is None or b.tzinfo is None:
                raise EffortError(f"deployment {label}: gap {a} - {b} has no time zone")
            if b <= a:
                raise EffortError(f"deployment {label}: gap ends ({b}) before it starts ({a})")

    def operating_intervals(self) -> list[tuple[float, float]]:
        """Working intervals as POSIX seconds: [start, end] minus the (merged) gaps."""
        s, e = self.start.timestamp(), self.end.timestamp()
        gaps = sorted((max(a.timestamp(), s), min(b.timestamp(), e)) for a, b in self.gaps)
        out = []
        cur = s
        for a, b in gaps:
            if b <= cur:
                continue
            if a > cur:
                out.append((cur, min(a, e)))
            cur = max(cur, b)
            if cur >= e:
                break
        if cur < e:
            out.append((cur, e))
        return out

    @property
    def trap_nights(self) -> float:
        """Days of operation (24-hour periods; a "trap-night" in camera-trap usage)."""
        return sum(b - a for a, b in self.operating_intervals()) / DAY


def _union(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


@dataclass(frozen=True, eq=False)
class OperationMatrix:
    """Camera-operation matrix: days each station worked within each occasion.

    A station works when at least one of its cameras works (overlapping deployments at a station
    are not double-counted). ``usage`` is the same as a fraction of the occasion length, the form
    SECR and occupancy models take.
    """

    stations: tuple[str, ...]
    occasion_starts: tuple[datetime, ...]
    occasion_days: float
    days: np.ndarray  # (stations, occasions)

    @property
    def usage(self) -> np.ndarray:
        return self.days / self.occasion_days

    @property
    def trap_nights(self) -> np.ndarray:
        return self.days.sum(axis=1)

    @property
    def n_occasions(self) -> int:
        return len(self.occasion_starts)

    def occasion_of(self, t: datetime) -> int:
        """Occasion index of an instant, or -1 if outside the survey."""
        k = math.floor((t - self.occasion_starts[0]).total_seconds() / (self.occasion_days * DAY))
        return k if 0 <= k < self.n_occasions else -1


def camera_operation(
    deployments: Sequence[DeploymentPeriod],
    start: datetime | None = None,
    end: datetime | None = None,
    occasion_days: float = 1.0,
    stations: Sequence[str] | None = None,
) -> OperationMatrix:
    """Build the station x occasion effort matrix from deployments with start, end and gaps.

    The survey runs from ``start`` (default: the first set-up) to ``end`` (default: the last
    retrieval) in occasions of ``occasion_days`` (the last one may be partly outside the survey and
    then simply has less effort). Station order is ``stations`` or sorted station names.
    """
    if not deployments:
        raise EffortError("no deployments: record where and when the cameras stood first")
    if occasion_days <= 0:
        raise EffortError(f"occasion length must be positive, got {occasion_days} days")
    t0 = start or min(d.start for d in deployments)
    t1 = end or max(d.end for d in deployments)
    if t1 <= t0:
        raise EffortError(f"survey end {t1} is not after its start {t0}")
    occ = occasion_days * DAY
    n_occ = max(1, math.ceil((t1 - t0).total_seconds() / occ - 1e-9))
    names = tuple(stations) if stations is not None else tuple(sorted({d.station for d in deployments}))
    index = {s: i for i, s in enumerate(names)}
    per_station: dict[str, list[tuple[float, float]]] = {s: [] for s in names}
    for d in deployments:
        if d.station in index:
            per_station[d.station].extend(d.operating_intervals())
    base = t0.timestamp()
    hi = t1.timestamp()
    days = np.zeros((len(names), n_occ))
    edges = base + occ * np.arange(n_occ + 1)
    for s, ivs in per_station.items():
        for a, b in _union(ivs):
            a, b = max(a, base), min(b, hi)
            if b <= a:
                continue
            # overlap of [a, b] with every occasion [edges[k], edges[k+1]]
            lo = np.maximum(edges[:-1], a)
            up = np.minimum(edges[1:], b)
            days[index[s]] += np.clip(up - lo, 0, None) / DAY
    starts = tuple(t0 + timedelta(days=occasion_days * k) for k in range(n_occ))
    return OperationMatrix(stations=names, occasion_starts=starts, occasion_days=occasion_days, days=days)


@dataclass(frozen=True)
class Event:
    """An independent detection event: one species at one station, records no more than the threshold apart."""

    station: str
    species: str
    start: datetime
    end: datetime
    n_records: int
    first_index: int  # position of the event's first record in the input


def independent_events(
    stations: Sequence[str],
    species: Sequence[str],
    times: Sequence[datetime],
    threshold_minutes: float = 30.0,
    compare_to: Literal["last_record", "event_start"] = "last_record",
) -> list[Event]:
    """Group records into independent events per station and species.

    ``last_record``: a record starts a new event when more than ``threshold_minutes`` passed
    since the previous record of that species at that station (camtrapR's ``lastRecord``).
    ``event_start``: when more than the threshold passed since the event's first record
    (camtrapR's ``lastIndependentRecord``). Events are returned sorted by station, species, time.
    """
    n = len(times)
    if not len(stations) == len(species) == n:
        raise EffortError("stations, species and times must have one entry per record")
    if threshold_minutes < 0:
        raise EffortError("the independence threshold cannot be negative")
    if compare_to not in ("last_record", "event_start"):
        raise EffortError("compare_to must be 'last_record' or 'event_start'")
    gap = threshold_minutes * 60.0
    order = sorted(range(n), key=lambda i: (stations[i], species[i], times[i]))
    events: list[Event] = []
    cur: list[int] = []

    def flush() -> None:
        if cur:
            events.append(Event(stations[cur[0]], species[cur[0]], times[cur[0]], times[cur[-1]], len(cur), cur[0]))

    for i in order:
        if cur and stations[i] == stations[cur[0]] and species[i] == species[cur[0]]:
            ref = times[cur[-1]] if compare_to == "last_record" else times[cur[0]]
            if (times[i] - ref).total_seconds() <= gap:
                cur.append(i)
                continue
        flush()
        cur = [i]
    flush()
    return events


@dataclass(frozen=True)
class RelativeAbundance:
    """Independent events per 100 trap-nights for one species, with its station-level uncertainty."""

    species: str
    events: int
    trap_nights: float
    stations: int
    stations_detected: int
    rai: Estimate

    def as_dict(self) -> dict[str, object]:
        return {
            "species": self.species,
            "events": self.events,
            "trap_nights": self.trap_nights,
            "stations": self.stations,
            "stations_detected": self.stations_detected,
            "rai": self.rai.as_dict(),
        }


def relative_abundance(
    events: Sequence[Event],
    trap_nights_by_station: dict[str, float],
    per: float = 100.0,
    level: float = 0.95,
) -> list[RelativeAbundance]:
    """RAI per species: ``per`` x events / trap-nights, pooled over stations.

    SE treats stations as the sampling units (ratio estimator, Cochran 1977 eq. 6.9):
    ``var(R) = k/(k-1) Σ_s (e_s - R t_s)² / T²``; with one station it falls back to the Poisson SE
    ``sqrt(E)/T``. Intervals are log-normal. Species never detected are not listed (see
    :func:`zero_rai`). Events at stations with no recorded effort are refused.
    """
    stations = sorted(trap_nights_by_station)
    t = np.array([trap_nights_by_station[s] for s in stations], dtype=float)
    total = float(t.sum())
    if total <= 0:
        raise EffortError("no camera effort (trap-nights) in this selection; check deployment dates")
    index = {s: i for i, s in enumerate(stations)}
    by_species: dict[str, np.ndarray] = {}
    for e in events:
        if e.station not in index:
            raise EffortError(f"events at station {e.station!r}, which has no deployment in this selection")
        by_species.setdefault(e.species, np.zeros(len(stations)))[index[e.station]] += 1
    out = []
    k = len(stations)
    for sp in sorted(by_species):
        ev = by_species[sp]
        e_tot = float(ev.sum())
        r = e_tot / total
        # stations as sampling units (ratio estimator); one station: Poisson
        var = k / (k - 1) * float(((ev - r * t) ** 2).sum()) / total**2 if k > 1 else e_tot / total**2
        se = math.sqrt(var) * per
        est = lognormal_positive("RAI", r * per, se, level, f"events/{per:g} trap-nights")
        out.append(RelativeAbundance(sp, int(e_tot), total, k, int((ev > 0).sum()), est))
    return out


def zero_rai(
    species: str, trap_nights: float, stations: int, per: float = 100.0, level: float = 0.95
) -> RelativeAbundance:
    """RAI for a species never detected: 0 with the exact Poisson upper limit."""
    if not 0 < level < 1 or trap_nights <= 0:
        raise EffortError("level must be in (0, 1) and trap-nights positive")
    upper = -math.log((1 - level) / 2) / trap_nights * per
    est = Estimate("RAI", 0.0, 0.0, 0.0, upper, "exact Poisson", level, f"events/{per:g} trap-nights")
    return RelativeAbundance(species, 0, trap_nights, stations, 0, est)
