"""The plot-year report: effort, relative abundance, individuals, population size, density,
occupancy and activity for one monitoring plot and one year, as HTML with plots and as CSV/JSON
carrying the same numbers.

Three steps, each usable on its own:

1. :func:`collect` reads the store (locations of the plot, their deployments, animal observations,
   the individuals catalogue) into plain dataclasses: :class:`PlotYearData`.
2. :func:`analyse` runs the numerics of ``pardus.stats`` on that data: :class:`PlotYearReport`.
3. :func:`write_report` writes ``report.html`` (plots embedded), ``report.json``, one CSV per
   table and the plots as PNG files into a folder.

When the store holds GPS-collar fixes in the plot's year, :func:`build_report` also adds the
"Collared animals" section (:func:`movement_section`, which calls
:func:`pardus.telemetry.movement.movement_report`): home ranges, distance per day, plots crossed
and, for a collared animal that is also in the catalogue, fixes near each camera beside its
confirmed detections there. It shows areas, distances and counts, never a fix's position.

:func:`build_report` does all three. The headline is the sentence the park writes each year,
"Between A and B individual leopards used plot P in Y", from the 95% interval of the
best-supported closed-population model, printed beside the animals actually identified and the
minimum number known alive.

What counts as what:
- an *event* is an independent detection (``effort.independent_events``) of an ``animal``
  observation, at the time of ``event_start`` or else of its photo;
- a *confirmed identification* is an observation of the focus species with an ``individual_id``
  and ``classification_method == 'human'``; machine-proposed identities are counted and reported
  but not used; merged individuals are followed to the animal they were merged into;
- effort comes from deployment start/end and outage gaps listed in ``Deployment.extra["gaps"]``
  (a list of ``[start, end]`` ISO-8601 pairs).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pardus.stats.activity import ActivityError, activity_density, clock_radians, overlap, solar_times
from pardus.stats.capture import CaptureHistory, YearIndividuals, capture_histories, individuals_by_year
from pardus.stats.closed import ClosedCRError, ClosedResults, closed_population
from pardus.stats.effort import (
    DeploymentPeriod,
    EffortError,
    Event,
    OperationMatrix,
    RelativeAbundance,
    camera_operation,
    independent_events,
    relative_abundance,
)
from pardus.stats.occupancy import OccupancyError, OccupancyFit, detection_matrix, fit_occupancy
from pardus.stats.secr import Mask, SecrError, SecrFit, Traps, fit_secr, make_mask, rpsv

if TYPE_CHECKING:
    from pardus.stats.density_map import DensityMap
    from pardus.stats.secr_habitat import SecrHabitatFit
    from pardus.stats.trend import TrendReport
    from pardus.telemetry.movement import MovementSummary

COMMON_NAMES = {
    "panthera pardus": ("leopard", "leopards"),
    "panthera tigris": ("tiger", "tigers"),
    "lynx lynx": ("lynx", "lynx"),
    "prionailurus bengalensis": ("leopard cat", "leopard cats"),
    "cervus nippon": ("sika deer", "sika deer"),
    "capreolus pygargus": ("Siberian roe deer", "Siberian roe deer"),
    "sus scrofa": ("wild boar", "wild boar"),
    "ursus arctos": ("brown bear", "brown bears"),
    "ursus thibetanus": ("Asiatic black bear", "Asiatic black bears"),
}
NUMBER_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
]


MOVEMENT_METHODS = {
    "mcp95": "minimum convex polygon of the 95% of fixes nearest their mean (Mohr 1947; adehabitatHR's rule, "
             "Calenge 2006)",
    "kde95": "95% isopleth of a fixed bivariate normal kernel (Worton 1989)",
    "bandwidth": "reference bandwidth h_ref = sqrt((var x + var y)/2) * n^(-1/6) (Worton 1989; Silverman 1986)",
    "distance_per_day": "sum of great-circle steps between successive good fixes, each given to the local day it "
                        "ends in; mean and SE over days (Rowcliffe et al. 2012 on fix interval)",
}


class ReportError(ValueError):
    """The report cannot be made for this plot and year; the message says what is missing."""


@dataclass(frozen=True)
class ReportOptions:
    """Choices an ecologist may want to change; defaults follow common camera-trap practice."""

    species: str = "Panthera pardus"
    threshold_minutes: float = 30.0
    occasion_days: float = 7.0
    detectfn: str = "HHN"
    mask_buffer_m: float | None = None  # default: 4 x sigma from the spread of recaptures
    mask_spacing_m: float | None = None  # default: 64 cells across the mask's width (secr's default)
    n_boot: int = 1000
    min_events_activity: int = 10
    level: float = 0.95
    seed: int = 1
    # habitat covariates for D ~ covariate: a CSV of cells (x, y, columns) or a raster (GeoTIFF)
    habitat: str | None = None
    # coordinate reference system of the stations' x_m/y_m (e.g. "EPSG:32653"), for GeoTIFF in and out
    crs: str | None = None
    # collared animals: a GPS fix within this distance of a camera counts as "near" it
    movement_near_m: float = 500.0


@dataclass(frozen=True)
class Station:
    id: str
    name: str
    x_m: float | None
    y_m: float | None
    latitude: float | None
    longitude: float | None


@dataclass(frozen=True)
class Record:
    """One animal observation reduced to what the statistics need."""

    station: str
    species: str
    time: datetime
    individual: str | None
    confirmed: bool


@dataclass
class PlotYearData:
    plot: str
    year: int
    utc_offset_minutes: int
    season_start: datetime
    season_end: datetime
    stations: list[Station]
    deployments: list[DeploymentPeriod]
    records: list[Record]
    focus_ids_all_years: list[tuple[str, int]]  # (individual, local year), confirmed focus-species ids in the plot
    individual_labels: dict[str, str]
    notes: list[str] = field(default_factory=list)


def _species_key(name: str) -> str:
    return " ".join(name.lower().split())


def common_name(scientific: str, plural: bool = True) -> str:
    key = _species_key(scientific)
    for sci, (one, many) in COMMON_NAMES.items():
        if key == sci or key.startswith(sci + " "):
            return many if plural else one
    return scientific


def is_species(name: str | None, focus: str) -> bool:
    """True for the focus species and its subspecies ('Panthera pardus orientalis' is a 'Panthera pardus')."""
    if not name:
        return False
    key, f = _species_key(name), _species_key(focus)
    return key == f or key.startswith(f + " ")


def _parse_gap(pair: Any, tz: timezone, label: str) -> tuple[datetime, datetime]:
    try:
        a, b = (datetime.fromisoformat(str(v).replace("Z", "+00:00")) for v in pair)
    except (TypeError, ValueError) as exc:
        raise ReportError(
            f"deployment {label}: gap {pair!r} is not a pair of ISO times like ['2024-05-01T00:00+10:00', ...]"
        ) from exc
    return (a if a.tzinfo else a.replace(tzinfo=tz)), (b if b.tzinfo else b.replace(tzinfo=tz))


def collect(session: Any, plot: str, year: int, species: str = "Panthera pardus") -> PlotYearData:
    """Read one plot's stations, deployments and animal observations for one (local) year."""
    from sqlalchemy import select

    from pardus.ingest.timefix import UNTRUSTED_TIME
    from pardus.store.models import Deployment, Individual, Location, Media, Observation

    locs = list(session.scalars(select(Location).where(Location.plot == plot).order_by(Location.id)))
    if not locs:
        known = sorted({p for p in session.scalars(select(Location.plot)) if p})
        hint = f" Known plots: {', '.join(known)}." if known else " No location has a plot yet."
        raise ReportError(f"no camera location belongs to plot {plot!r}.{hint}")
    loc_ids = [loc.id for loc in locs]
    deps = list(session.scalars(select(Deployment).where(Deployment.location_id.in_(loc_ids))))
    if not deps:
        raise ReportError(f"plot {plot!r} has locations but no deployments; record them with 'pardus deployments add'")
    offsets = Counter(d.utc_offset_minutes for d in deps)
    offset = offsets.most_common(1)[0][0]
    tz = timezone(timedelta(minutes=offset))
    y0 = datetime(year, 1, 1, tzinfo=tz)
    y1 = datetime(year + 1, 1, 1, tzinfo=tz)
    notes: list[str] = []
    periods: list[DeploymentPeriod] = []
    working: dict[str, list[tuple[float, float]]] = {}  # deployment -> operating intervals (POSIX s)
    dep_station: dict[str, str] = {}
    for d in deps:
        dep_station[d.id] = d.location_id or d.id
        if d.start is None or d.end is None:
            notes.append(
                f"Deployment {d.id} has no {'start' if d.start is None else 'end'} date, so its effort is unknown "
                "and it was left out; add the dates with 'pardus deployments add'."
            )
            continue
        if d.timestamp_issues:
            notes.append(f"Deployment {d.id} is flagged for timestamp problems; its times were used as recorded.")
        start, end = max(d.start, y0), min(d.end, y1)
        if end <= start:
            continue
        gaps = tuple(_parse_gap(g, tz, d.id) for g in (d.extra or {}).get("gaps", []) or [])
        periods.append(DeploymentPeriod(dep_station[d.id], start, end, gaps, d.id))
        working[d.id] = [(a, b) for a, b in periods[-1].operating_intervals()]
    if not periods:
        raise ReportError(f"no deployment of plot {plot!r} was running in {year}")
    season_start = min(p.start for p in periods)
    season_end = max(p.end for p in periods)

    # individuals catalogue: labels and merges
    labels: dict[str, str] = {}
    merged: dict[str, str] = {}
    by_code: dict[str, str] = {}
    for ind in session.scalars(select(Individual)):
        labels[ind.id] = ind.code
        by_code[ind.code] = ind.id
        if ind.merged_into:
            merged[ind.id] = ind.merged_into

    def resolve(ident: str) -> str:
        cur = by_code.get(ident, ident) if ident not in labels else ident
        seen = set()
        while cur in merged and cur not in seen:
            seen.add(cur)
            nxt = merged[cur]
            cur = by_code.get(nxt, nxt) if nxt not in labels else nxt
        return cur

    # Plain columns, not ORM objects: a plot of a million-photo season has 10^5 animal rows a year.
    rows = session.execute(
        select(Observation.event_start, Observation.scientific_name, Observation.individual_id,
               Observation.classification_method, Observation.deployment_id, Media.timestamp,
               Media.timestamp_issues)
        .outerjoin(Media, Observation.media_id == Media.id)
        .where(Observation.deployment_id.in_(list(dep_station)))
        .where(Observation.observation_type == "animal", Observation.superseded_by.is_(None))
    )
    records: list[Record] = []
    focus_all: list[tuple[str, int]] = []
    untimed = proposed = off_effort = untrusted = 0
    for event_start, name, individual_id, method, deployment_id, media_time, time_issues in rows:
        t = event_start or media_time
        if t is None:
            untimed += 1
            continue
        if event_start is None and time_issues and UNTRUSTED_TIME & set(time_issues.split(",")):
            untrusted += 1  # a reset or impossible clock would invent records in other years
            continue
        sp = name or "unidentified animal"
        ind = resolve(individual_id) if individual_id else None
        confirmed = ind is not None and (method or "").lower() == "human"
        if ind is not None and not confirmed and is_species(sp, species):
            proposed += 1
        if confirmed and is_species(sp, species):
            focus_all.append((ind or "", (t + timedelta(minutes=offset)).year))
        if y0 <= t < y1:
            ts = t.timestamp()
            if not any(a <= ts <= b for a, b in working.get(deployment_id, [])):
                off_effort += 1  # outside the deployment's dates or in a recorded outage: no effort to divide by
                continue
            records.append(Record(dep_station[deployment_id], sp, t, ind if confirmed else None, confirmed))
    if off_effort:
        notes.append(
            f"{off_effort} animal observations fall outside their deployment's dates or in a recorded outage "
            "(check the camera clock and the deployment dates); they were not used."
        )
    if untrusted:
        notes.append(
            f"{untrusted} animal observations are on photos whose camera time cannot be trusted (clock reset, "
            "in the future or outside the deployment); correct the clock with 'pardus fix-time' to use them."
        )
    if untimed:
        notes.append(f"{untimed} animal observations have neither an event time nor a photo time and were not used.")
    if proposed:
        notes.append(
            f"{proposed} {common_name(species, False)} identifications proposed by the machine await confirmation "
            "by a person and were not used."
        )
    stations = [
        Station(loc.id, loc.name or loc.id, loc.x_m, loc.y_m, loc.latitude, loc.longitude)
        for loc in locs
        if loc.id in {p.station for p in periods}
    ]
    return PlotYearData(
        plot=plot,
        year=year,
        utc_offset_minutes=offset,
        season_start=season_start,
        season_end=season_end,
        stations=stations,
        deployments=periods,
        records=records,
        focus_ids_all_years=focus_all,
        individual_labels=labels,
        notes=notes,
    )


def plot_years(session: Any, plot: str) -> list[int]:
    """The local calendar years in which some deployment of ``plot`` was running, in order.

    Why: the report's trend and the park summary look back over every year the store holds for a
    plot, without the user listing them. Years follow each deployment's own UTC offset, as
    :func:`collect` does; a deployment ending at local midnight of 1 January does not add that year.
    """
    from sqlalchemy import select

    from pardus.store.models import Deployment, Location

    rows = session.execute(
        select(Deployment.start, Deployment.end, Deployment.utc_offset_minutes)
        .join(Location, Deployment.location_id == Location.id)
        .where(Location.plot == plot)
    ).all()
    years: set[int] = set()
    for start, end, offset in rows:
        if start is None or end is None or end <= start:
            continue
        shift = timedelta(minutes=offset or 0)
        a = start if start.tzinfo else start.replace(tzinfo=UTC)
        b = end if end.tzinfo else end.replace(tzinfo=UTC)
        first, last = (a + shift).year, (b + shift - timedelta(microseconds=1)).year
        years.update(range(first, last + 1))
    return sorted(years)


def plot_names(session: Any, year: int | None = None) -> list[str]:
    """The plots named on locations, in order; with ``year``, only those with a deployment running that year."""
    from sqlalchemy import select

    from pardus.store.models import Location

    plots = sorted({p for p in session.scalars(select(Location.plot).distinct()) if p})
    if year is None:
        return plots
    return [p for p in plots if year in plot_years(session, p)]


def station_coordinates(stations: Sequence[Station]) -> tuple[np.ndarray, str] | None:
    """Metric coordinates of stations: x_m/y_m when all have them, else lat/lon projected locally.

    The local projection is equirectangular about the stations' centroid, accurate to well under a
    metre per km across a monitoring plot of some tens of kilometres. None when coordinates are missing.
    """
    if all(s.x_m is not None and s.y_m is not None for s in stations):
        return np.array([[s.x_m, s.y_m] for s in stations], dtype=float), "x_m/y_m"
    if all(s.latitude is not None and s.longitude is not None for s in stations):
        lat = np.array([s.latitude for s in stations], dtype=float)
        lon = np.array([s.longitude for s in stations], dtype=float)
        lat0, lon0 = lat.mean(), lon.mean()
        r = 6_371_008.8
        x = np.radians(lon - lon0) * r * math.cos(math.radians(lat0))
        y = np.radians(lat - lat0) * r
        return np.column_stack([x, y]), f"latitude/longitude, local projection about ({lat0:.4f}, {lon0:.4f})"
    return None


@dataclass
class PlotYearReport:
    """Everything the report shows, as numbers (see ``numbers()`` for the JSON form)."""

    data: PlotYearData
    options: ReportOptions
    headline: str
    operation: OperationMatrix
    events: list[Event]
    rai: list[RelativeAbundance]
    years: list[YearIndividuals]
    this_year: YearIndividuals | None
    capture: CaptureHistory | None
    closed: ClosedResults | None
    secr: SecrFit | None
    occupancy: dict[str, OccupancyFit]
    activity_times: dict[str, np.ndarray]
    time_basis: str
    overlaps: list[Any]
    coords: tuple[np.ndarray, str] | None
    messages: list[str]
    seconds: float
    density_map: DensityMap | None = None  # where the SECR fit puts the animals (secr's fxTotal)
    habitat: SecrHabitatFit | None = None  # D ~ covariate, when the park gave habitat covariates
    habitat_scale: dict[str, tuple[float, float]] = field(default_factory=dict)  # covariate -> (mean, SD)
    habitat_map: DensityMap | None = None
    trend: TrendReport | None = None  # the plot across the years the store holds, up to this one
    trend_note: str = ""  # why there is no trend (a single year), said in the report
    movement: list[MovementSummary] = field(default_factory=list)  # one per collar tag in or near the plot
    movement_period: tuple[datetime, datetime] | None = None  # the local year the fixes were taken from

    @property
    def crs(self) -> str | None:
        """The coordinate system of the report's metres: the option, else the local projection of lat/lon."""
        if self.options.crs:
            return self.options.crs
        if self.coords is not None and self.coords[1].startswith("latitude"):
            from pardus.stats.density_map import local_crs

            st = self.data.stations
            return local_crs(
                float(np.mean([s.latitude for s in st])), float(np.mean([s.longitude for s in st]))  # type: ignore[misc]
            )
        return None

    @property
    def species_label(self) -> str:
        return common_name(self.options.species)

    def _labelled(self, year: dict[str, Any]) -> dict[str, Any]:
        """Individuals by their catalogue codes (PO_013), not the store's internal ids."""
        labels = self.data.individual_labels
        return {k: [labels.get(i, i) for i in v] if k.endswith("_ids") or k == "known_alive_not_seen" else v
                for k, v in year.items()}

    def numbers(self) -> dict[str, Any]:
        d, o = self.data, self.options
        effort = [
            {"station": s, "trap_nights": float(tn)}
            for s, tn in zip(self.operation.stations, self.operation.trap_nights, strict=True)
        ]
        return {
            "plot": d.plot,
            "year": d.year,
            "species": o.species,
            "headline": self.headline,
            "season": {"start": d.season_start.isoformat(), "end": d.season_end.isoformat()},
            "options": o.__dict__,
            "effort": {
                "stations": len(self.operation.stations),
                "trap_nights": float(self.operation.trap_nights.sum()),
                "occasion_days": self.operation.occasion_days,
                "occasions": self.operation.n_occasions,
                "by_station": effort,
            },
            "events": {"total": len(self.events), "threshold_minutes": o.threshold_minutes},
            "rai": [r.as_dict() for r in self.rai],
            "individuals": {
                "seen": self.this_year.seen if self.this_year else 0,
                "mnka": self.this_year.mnka if self.this_year else 0,
                "new": self.this_year.new if self.this_year else 0,
                "seen_ids": [
                    d.individual_labels.get(i, i) for i in (self.this_year.seen_ids if self.this_year else ())
                ],
                "by_year": [self._labelled(y.as_dict()) for y in self.years],
            },
            "closed_population": self.closed.as_dict() if self.closed else None,
            "secr": self.secr.as_dict() if self.secr else None,
            "occupancy": {k: v.as_dict() for k, v in self.occupancy.items()},
            "activity": {"time_basis": self.time_basis, "overlaps": [ov.as_dict() for ov in self.overlaps]},
            "coordinates": self.coords[1] if self.coords else None,
            "density_map": self.density_map.summary() if self.density_map else None,
            "habitat": self._habitat_numbers(),
            "trend": self.trend.numbers() if self.trend else {"note": self.trend_note} if self.trend_note else None,
            "movement": self._movement_numbers(),
            "messages": self.messages,
            "notes": d.notes,
        }

    def habitat_rows(self) -> list[dict[str, Any]]:
        """The D ~ covariate fit as table rows: slopes (per SD of each covariate, SD given), detection, N."""
        if self.habitat is None:
            return []
        h = self.habitat
        rows: list[dict[str, Any]] = []
        for e in (*h.coefficients, h.detection, h.sigma, h.expected_n):
            row: dict[str, Any] = dict(e.as_dict(), model=h.model)
            name = e.name.removeprefix("slope ")
            if e.name.startswith("slope ") and name in self.habitat_scale:
                mean, sd = self.habitat_scale[name]
                row.update(covariate_mean=mean, covariate_sd=sd, slope_per_unit=e.value / sd)
            rows.append(row)
        return rows

    def station_name(self, location_id: str) -> str:
        return next((st.name for st in self.data.stations if st.id == location_id), location_id)

    def movement_rows(self) -> list[dict[str, Any]]:
        """movement.csv: one row per collar tag (areas, distances and counts; no positions)."""
        rows = []
        for m in self.movement:
            rows.append({
                "tag": m.tag_id,
                "individual": m.individual or "",
                "first_fix": m.start.isoformat(),
                "last_fix": m.end.isoformat(),
                "fixes": m.fixes,
                "outliers_left_out": m.outliers_left_out,
                "failed_fixes": m.failed_fixes,
                "mcp95_km2": m.mcp95_km2,
                "kde95_km2": m.kde95_km2,
                "kde_bandwidth_m": m.bandwidth_m,
                "kde_bandwidth_rule": m.bandwidth_rule or "",
                "days": len(m.daily_distance_km),
                "mean_km_per_day": m.mean_daily_km,
                "se_km_per_day": m.se_daily_km,
                "fixes_in_plot": m.plots.get(self.data.plot, 0),
                "plots_crossed": "; ".join(f"{k} ({v} fixes)" for k, v in sorted(m.plots.items())),
                "notes": "; ".join(m.notes),
            })
        return rows

    def movement_camera_rows(self) -> list[dict[str, Any]]:
        """movement_cameras.csv: for a collared animal in the catalogue, fixes near each camera of the
        plot beside its confirmed detections there."""
        return [
            {
                "tag": m.tag_id,
                "individual": m.individual or "",
                "station": c["location_id"],
                "name": self.station_name(c["location_id"]),
                "fixes_within_m": c["fixes_within_m"],
                "fixes_near": c["fixes_near"],
                "detections": c["detections"],
            }
            for m in self.movement
            for c in m.cameras
        ]

    def _movement_numbers(self) -> dict[str, Any] | None:
        if not self.movement:
            return None
        tags = []
        for m in self.movement:
            d = m.as_dict()
            d["cameras"] = [{k: v for k, v in c.items() if k not in ("lon", "lat")} for c in m.cameras]
            tags.append(d)
        start, end = self.movement_period or (None, None)
        return {
            "period": {"start": start, "end": end},
            "near_m": self.options.movement_near_m,
            "methods": MOVEMENT_METHODS,
            "tags": tags,
        }

    def _habitat_numbers(self) -> dict[str, Any] | None:
        if self.habitat is None:
            return None
        return {
            "file": self.options.habitat,
            "model": self.habitat.model,
            "loglik": self.habitat.loglik,
            "aicc": self.habitat.aicc,
            "aicc_d1": self.secr.aicc if self.secr else None,
            "estimates": self.habitat_rows(),
            "map": self.habitat_map.summary() if self.habitat_map else None,
        }


def movement_section(
    session: Any, data: PlotYearData, near_m: float = 500.0
) -> tuple[list[MovementSummary], tuple[datetime, datetime], list[str]]:
    """The collared animals of the report: :func:`pardus.telemetry.movement.movement_report` for the
    plot's local calendar year (the year :func:`collect` reads), tags with a fix in the plot or within
    ``near_m`` of its outline. Empty, with no message, when the store holds no fixes there."""
    from pardus.telemetry.movement import MovementError, movement_report

    tz = timezone(timedelta(minutes=data.utc_offset_minutes))
    start, end = datetime(data.year, 1, 1, tzinfo=tz), datetime(data.year + 1, 1, 1, tzinfo=tz)
    try:
        out = movement_report(session, start=start, end=end, plot=data.plot, near_m=near_m,
                              utc_offset_minutes=data.utc_offset_minutes)
    except MovementError as exc:
        return [], (start, end), [f"Collared animals left out: {exc}."]
    return out, (start, end), []


def _word(n: int) -> str:
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def headline_sentence(species: str, plot: str, year: int, closed: ClosedResults | None, seen: int, mnka: int) -> str:
    """The park's yearly sentence, from the best model's interval, never below the animals seen."""
    many, one = common_name(species), common_name(species, plural=False)
    noun = one if seen == 1 else many
    if seen == 0:
        return f"No individual {one} was identified in plot {plot} in {year}."
    best = closed.best if closed else None
    if best is None or not best.estimable:
        return (
            f"At least {_word(mnka)} individual {many if mnka != 1 else one} used plot {plot} in {year} "
            f"(minimum number known alive); there were too few recaptures to estimate how many were missed."
        )
    lo = max(seen, math.floor(best.n_hat.lcl + 1e-9))
    hi = max(lo, math.ceil(best.n_hat.ucl - 1e-9))
    pct = round(best.n_hat.level * 100)
    tail = (
        f" ({pct}% interval of model {best.model}, N = {best.n_hat.value:.1f}; "
        f"{_word(seen)} {noun} identified, minimum number known alive {mnka})."
    )
    if hi == lo:
        return f"{_word(lo).capitalize()} individual {many if lo != 1 else one} used plot {plot} in {year}" + tail
    text = f"Between {_word(lo)} and {_word(hi)} individual {many} used plot {plot} in {year}"
    return text + tail


def analyse(
    data: PlotYearData, options: ReportOptions | None = None, *, population_only: bool = False
) -> PlotYearReport:
    """Run every analysis that the data allow; what cannot be estimated is said, not skipped silently.

    ``population_only`` leaves out occupancy, activity and the maps: the earlier years of a trend and
    the plots of a park summary need only effort, identities and the density fit, and the
    activity bootstrap is most of the time of a report.
    """
    t0 = time.perf_counter()
    o = options or ReportOptions()
    msgs: list[str] = []
    station_ids = [s.id for s in data.stations]
    op = camera_operation(
        data.deployments, data.season_start, data.season_end, occasion_days=o.occasion_days, stations=station_ids
    )
    trap_nights = dict(zip(op.stations, (float(v) for v in op.trap_nights), strict=True))
    recs = data.records
    events = independent_events(
        [r.station for r in recs], [r.species for r in recs], [r.time for r in recs], o.threshold_minutes
    )
    rai = relative_abundance(events, trap_nights, level=o.level) if events else []

    years = individuals_by_year([i for i, _ in data.focus_ids_all_years], [y for _, y in data.focus_ids_all_years])
    this_year = next((y for y in years if y.year == data.year), None)
    ids = [r for r in recs if r.confirmed and r.individual and is_species(r.species, o.species)]
    capture = closed = None
    secr_fit = None
    secr_inputs: tuple[np.ndarray, Traps, Mask] | None = None
    coords = station_coordinates(data.stations)
    if ids:
        capture = capture_histories(
            [r.individual or "" for r in ids], [r.station for r in ids], [r.time for r in ids], op
        )
        if capture.outside or capture.no_effort:
            msgs.append(
                f"{capture.outside + capture.no_effort} identifications fell outside camera effort "
                "(outside the deployment dates or during a recorded outage) and were not used in the models."
            )
        active = op.days.sum(axis=0) > 0
        x = capture.histories()[:, active]
        try:
            closed = closed_population(x, level=o.level)
        except ClosedCRError as exc:
            msgs.append(f"Closed-population models: {exc}")
        if coords is None:
            msgs.append("SECR density: some stations have no coordinates (x_m/y_m or latitude/longitude).")
        else:
            fitted = _fit_density(capture, op, coords[0], o, msgs)
            if fitted is not None:
                secr_fit, secr_inputs = fitted[0], fitted[1:]
    else:
        msgs.append(f"No confirmed {common_name(o.species, False)} identification in this plot and year.")

    occ: dict[str, OccupancyFit] = {}
    for sp in sorted({e.species for e in events}) if not population_only else ():
        try:
            occ[sp] = fit_occupancy(detection_matrix(events, op, sp), level=o.level)
        except OccupancyError as exc:
            msgs.append(f"Occupancy of {sp}: {exc}")

    act_times, basis = _activity_times(events, data, o) if not population_only else ({}, "")
    overlaps = []
    focus = next((sp for sp in act_times if is_species(sp, o.species)), None)
    rng = np.random.default_rng(o.seed)
    if focus is not None:
        for sp, tms in act_times.items():
            if sp == focus:
                continue
            try:
                overlaps.append(
                    overlap(
                        act_times[focus], tms, species_a=focus, species_b=sp, n_boot=o.n_boot, level=o.level, rng=rng
                    )
                )
            except ActivityError as exc:
                msgs.append(f"Activity overlap {focus} / {sp}: {exc}")
    seen = this_year.seen if this_year else 0
    mnka = this_year.mnka if this_year else 0
    head = headline_sentence(o.species, data.plot, data.year, closed, seen, mnka)
    maps: dict[str, Any] = {}
    if secr_fit is not None and secr_inputs is not None and not population_only:
        maps = _density_maps(secr_fit, secr_inputs, o, msgs)
    return PlotYearReport(
        data=data,
        options=o,
        headline=head,
        operation=op,
        events=events,
        rai=rai,
        years=years,
        this_year=this_year,
        capture=capture,
        closed=closed,
        secr=secr_fit,
        occupancy=occ,
        activity_times=act_times,
        time_basis=basis,
        overlaps=overlaps,
        coords=coords,
        messages=msgs,
        seconds=time.perf_counter() - t0,
        **maps,
    )


def _density_maps(
    fit: SecrFit, inputs: tuple[np.ndarray, Traps, Mask], o: ReportOptions, msgs: list[str]
) -> dict[str, Any]:
    """The density map of the year's SECR fit and, with habitat covariates, the D ~ covariate fit and its map.

    The habitat model is fitted on the same captures, stations and mask as the D~1 fit, with the
    covariates standardised over the mask (slopes per SD; the SDs go in the report).
    """
    from pardus.stats.density_map import centres_map, habitat_map, read_habitat, standardise
    from pardus.stats.secr_habitat import fit_secr_habitat

    counts, traps, mask = inputs
    out: dict[str, Any] = {}
    try:
        out["density_map"] = centres_map(counts, traps, mask, fit)
    except SecrError as exc:
        msgs.append(f"Density map: {exc}")
    if o.habitat:
        try:
            covs, scale = standardise(read_habitat(o.habitat, mask, o.crs))
            hab = fit_secr_habitat(counts, traps, mask, covs, detectfn=o.detectfn, level=o.level)  # type: ignore[arg-type]
        except (SecrError, OSError, ValueError) as exc:
            msgs.append(f"Density over habitat ({Path(o.habitat).name}): {exc}")
        else:
            if not hab.converged:
                msgs.append("Density over habitat: the fit did not converge; treat its slopes with caution.")
            out.update(habitat=hab, habitat_scale=scale, habitat_map=habitat_map(hab, mask.spacing))
    return out


def _fit_density(
    capture: CaptureHistory, op: OperationMatrix, xy: np.ndarray, o: ReportOptions, msgs: list[str]
) -> tuple[SecrFit, np.ndarray, Traps, Mask] | None:
    """The year's SECR fit, with the captures, stations and mask it was fitted on (the maps need them)."""
    counts = capture.detections()
    used = op.trap_nights > 0
    counts, xy, usage = counts[:, :, used], xy[used], op.usage[used]
    stations_per_animal = (counts.sum(axis=1) > 0).sum(axis=1)
    if capture.n_individuals < 2 or not np.any(stations_per_animal > 1):
        msgs.append(
            "SECR density: needs at least two animals and one animal photographed at two or more stations; "
            "not estimated."
        )
        return None
    traps = Traps(xy, detector="proximity", usage=usage)
    buffer = o.mask_buffer_m or 4.0 * rpsv(counts, xy)
    fit = None
    mask = None
    try:
        # With no buffer given, start from 4 x RPSV and widen to 4 x fitted sigma until it holds
        # (RPSV underestimates sigma on sparse camera grids); at most three fits.
        for _ in range(3):
            mask = make_mask(xy, buffer, spacing=o.mask_spacing_m)
            start = None if fit is None else np.array(fit.beta[-2:])
            fit = fit_secr(counts, traps, mask, detectfn=o.detectfn, level=o.level, start=start)  # type: ignore[arg-type]
            if o.mask_buffer_m is not None or 4.0 * fit.sigma.value <= buffer * 1.05:
                break
            buffer = 4.0 * fit.sigma.value
    except SecrError as exc:
        msgs.append(f"SECR density: {exc}")
        return None
    assert fit is not None and mask is not None
    if not fit.converged:
        msgs.append("SECR density: the fit did not converge; treat the density with caution.")
    if 4.0 * fit.sigma.value > fit.mask_buffer_m * 1.05:
        msgs.append(
            f"SECR density: the mask buffer ({fit.mask_buffer_m:.0f} m) is less than 4 x the fitted sigma "
            f"({fit.sigma.value:.0f} m); density may be overestimated. Set a wider --mask-buffer."
        )
    return fit, counts, traps, mask


def _activity_times(events: list[Event], data: PlotYearData, o: ReportOptions) -> tuple[dict[str, np.ndarray], str]:
    by_sp: dict[str, list[Event]] = {}
    for e in events:
        by_sp.setdefault(e.species, []).append(e)
    st = {s.id: s for s in data.stations}
    have_ll = all(st[s].latitude is not None and st[s].longitude is not None for s in st)
    out: dict[str, np.ndarray] = {}
    for sp, evs in by_sp.items():
        if len(evs) < o.min_events_activity:
            continue
        times = [e.start for e in evs]
        if have_ll:
            out[sp] = solar_times(
                times,
                [st[e.station].latitude for e in evs],
                [st[e.station].longitude for e in evs],  # type: ignore[misc]
            )
        else:
            out[sp] = clock_radians(times, data.utc_offset_minutes)
    basis = "sun time (sunrise at 06:00, sunset at 18:00)" if have_ll else "local clock time"
    return out, basis


# --- writing ----------------------------------------------------------------------------------------


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _plots(rep: PlotYearReport) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, bytes] = {}
    op = rep.operation
    fig, ax = plt.subplots(figsize=(9, max(2.0, 0.28 * len(op.stations) + 1)))
    ax.imshow(op.usage, aspect="auto", cmap="Greens", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks(range(len(op.stations)), [s[:18] for s in op.stations], fontsize=7)
    ax.set_xlabel(f"occasion ({op.occasion_days:g} days each, from {rep.data.season_start:%Y-%m-%d})")
    ax.set_title("Camera effort: share of each occasion each station worked")
    out["effort.png"] = _png(fig)

    if rep.rai:
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(rep.rai) + 1.2))
        names = [common_name(r.species, False) for r in rep.rai]
        vals = np.array([r.rai.value for r in rep.rai])
        err = np.array([[r.rai.value - r.rai.lcl, r.rai.ucl - r.rai.value] for r in rep.rai]).T
        ax.barh(names, vals, xerr=err, color="#4a7", capsize=3)
        ax.invert_yaxis()
        ax.set_xlabel("independent events per 100 trap-nights (95% CI)")
        ax.set_title("Relative abundance index")
        out["rai.png"] = _png(fig)

    if rep.coords is not None:
        xy = rep.coords[0] / 1000.0
        fig, ax = plt.subplots(figsize=(6.5, 5.5))
        ax.scatter(xy[:, 0], xy[:, 1], marker="^", color="#555", label="camera station", zorder=2)
        cap = rep.capture
        if cap is not None and cap.n_individuals:
            # spider plot: each animal's detection stations joined to their weighted centre
            index = {st.id: k for k, st in enumerate(rep.data.stations)}
            cmap = plt.get_cmap("tab20")
            order = sorted(
                range(cap.n_individuals), key=lambda i: rep.data.individual_labels.get(cap.individuals[i], "")
            )
            span = max(float(np.ptp(xy[:, 0])), float(np.ptp(xy[:, 1])), 1e-3)
            for rank, i in enumerate(order):
                per_station = cap.counts[i].sum(axis=0)
                ks = np.nonzero(per_station)[0]
                pts = xy[[index[cap.detectors[k]] for k in ks]]
                w = per_station[ks].astype(float)
                off = 0.012 * span * np.array([math.cos(rank * 2.4), math.sin(rank * 2.4)])
                centre = (w[:, None] * pts).sum(axis=0) / w.sum() + off
                colour = cmap(rank % 20)
                for p in pts + off:
                    ax.plot([centre[0], p[0]], [centre[1], p[1]], "-", color=colour, lw=1, zorder=2)
                ax.scatter(
                    (pts + off)[:, 0],
                    (pts + off)[:, 1],
                    s=18 + 10 * w,
                    color=colour,
                    zorder=3,
                    label=rep.data.individual_labels.get(cap.individuals[i], cap.individuals[i]) if rank < 20 else None,
                )
        ax.set_xlabel("x (km)")
        ax.set_ylabel("y (km)")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title(f"Stations and where each {common_name(rep.options.species, False)} was identified")
        ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
        out["map.png"] = _png(fig)

    if rep.capture is not None and rep.capture.n_individuals:
        h = rep.capture.counts.sum(axis=2)
        fig, ax = plt.subplots(figsize=(9, 0.3 * h.shape[0] + 1.2))
        ax.imshow(h > 0, aspect="auto", cmap="Oranges", interpolation="nearest")
        ax.set_yticks(
            range(h.shape[0]), [rep.data.individual_labels.get(i, i) for i in rep.capture.individuals], fontsize=7
        )
        ax.set_xlabel(f"occasion ({rep.capture.occasion_days:g} days)")
        ax.set_title("Capture histories (identified on the occasion)")
        out["captures.png"] = _png(fig)

    if rep.activity_times:
        from pardus.stats.activity import TWO_PI

        fig, ax = plt.subplots(figsize=(8, 4))
        for sp, t in sorted(rep.activity_times.items(), key=lambda kv: not is_species(kv[0], rep.options.species)):
            try:
                dens = activity_density(t)
            except ActivityError:
                continue
            hours = dens.grid / TWO_PI * 24
            lw = 2.5 if is_species(sp, rep.options.species) else 1.2
            ax.plot(hours, dens.density * TWO_PI / 24, lw=lw, label=f"{common_name(sp, False)} (n={dens.n})")
        ax.set_xlim(0, 24)
        ax.set_xticks(range(0, 25, 3))
        ax.set_xlabel(f"time of day, {rep.time_basis}")
        ax.set_ylabel("activity density (per hour)")
        ax.set_title("Activity patterns (von Mises kernel density)")
        if ax.lines:
            ax.legend(fontsize=7)
            out["activity.png"] = _png(fig)
        else:  # no species' times could be smoothed (e.g. all at one hour): no empty figure
            plt.close(fig)

    from pardus.stats.density_map import map_png

    stations = None
    if rep.coords is not None:
        stations = rep.coords[0][rep.operation.trap_nights > 0]
    if rep.density_map is not None:
        out["density_map.png"] = map_png(rep.density_map, stations, common_name(rep.options.species))
    if rep.habitat_map is not None:
        out["habitat_map.png"] = map_png(rep.habitat_map, stations, common_name(rep.options.species))
    if rep.trend is not None:
        from pardus.stats.trend import trend_png

        png = trend_png(rep.trend)
        if png is not None:
            out["trend.png"] = png
    return out


def _tables(rep: PlotYearReport) -> dict[str, list[dict[str, Any]]]:
    """One flat table per CSV file, built from the same numbers as the JSON."""
    nums = rep.numbers()
    labels = rep.data.individual_labels
    t: dict[str, list[dict[str, Any]]] = {
        "effort.csv": nums["effort"]["by_station"],
        "rai.csv": [
            {
                "species": r.species,
                "events": r.events,
                "trap_nights": r.trap_nights,
                "stations_detected": r.stations_detected,
                "rai": r.rai.value,
                "se": r.rai.se,
                "lcl": r.rai.lcl,
                "ucl": r.rai.ucl,
            }
            for r in rep.rai
        ],
        "individuals_by_year.csv": [{"year": y.year, "seen": y.seen, "mnka": y.mnka, "new": y.new} for y in rep.years],
    }
    if rep.capture is not None:
        rows = []
        for i, j, k in zip(*np.nonzero(rep.capture.counts), strict=True):
            rows.append(
                {
                    "individual": labels.get(rep.capture.individuals[i], rep.capture.individuals[i]),
                    "occasion": int(j) + 1,
                    "occasion_start": rep.capture.occasion_starts[j].isoformat(),
                    "station": rep.capture.detectors[k],
                    "records": int(rep.capture.counts[i, j, k]),
                }
            )
        t["capture_histories.csv"] = rows
    if rep.closed is not None:
        t["closed_population.csv"] = [
            {
                "model": e.model,
                "likelihood": e.likelihood,
                "N": e.n_hat.value,
                "se": e.n_hat.se,
                "lcl": e.n_hat.lcl,
                "ucl": e.n_hat.ucl,
                "loglik": e.loglik,
                "npar": e.npar,
                "AICc": e.aicc,
                "reference": e.reference,
                "note": e.note,
            }
            for e in rep.closed.estimates
        ]
        t["closed_aic_table.csv"] = rep.closed.aic_table()
    if rep.secr is not None:
        t["secr.csv"] = [dict(e, model=rep.secr.model) for e in rep.secr.table()] + [
            dict(rep.secr.density_per_100km2().as_dict(), model=rep.secr.model)
        ]
    t["occupancy.csv"] = [
        {
            "species": sp,
            "psi": f.psi.value,
            "psi_se": f.psi.se,
            "psi_lcl": f.psi.lcl,
            "psi_ucl": f.psi.ucl,
            "p": f.p.value,
            "p_se": f.p.se,
            "p_lcl": f.p.lcl,
            "p_ucl": f.p.ucl,
            "naive": f.naive,
            "sites": f.sites,
            "note": f.note,
        }
        for sp, f in rep.occupancy.items()
    ]
    t["activity_overlap.csv"] = [
        {
            "species_a": ov.species_a,
            "species_b": ov.species_b,
            "n_a": ov.n_a,
            "n_b": ov.n_b,
            "estimator": ov.estimator,
            "overlap": ov.estimate.value,
            "se": ov.estimate.se,
            "lcl": ov.estimate.lcl,
            "ucl": ov.estimate.ucl,
        }
        for ov in rep.overlaps
    ]
    if rep.density_map is not None:
        t["density_map.csv"] = rep.density_map.rows()
    if rep.habitat is not None:
        t["habitat.csv"] = rep.habitat_rows()
    if rep.habitat_map is not None:
        t["habitat_map.csv"] = rep.habitat_map.rows()
    if rep.trend is not None:
        t.update(rep.trend.tables())
    if rep.movement:
        t["movement.csv"] = rep.movement_rows()
        cams = rep.movement_camera_rows()
        if cams:
            t["movement_cameras.csv"] = cams
    return t


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, datetime):
        return o.isoformat()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _clean(o: Any) -> Any:
    """NaN and infinity are not JSON; write them as null so every JSON reader accepts the file."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def write_report(rep: PlotYearReport, out_dir: Path) -> dict[str, Path]:
    """Write report.html, report.json, the CSV tables and the PNG plots; return the paths by name."""
    from jinja2 import Environment, select_autoescape

    from pardus.stats.report_template import TEMPLATE

    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    nums = _clean(json.loads(json.dumps(rep.numbers(), default=_json_default)))
    p = out_dir / "report.json"
    p.write_text(json.dumps(nums, indent=2, ensure_ascii=False), encoding="utf-8")
    paths["report.json"] = p
    tables = _tables(rep)
    for name, rows in tables.items():
        p = out_dir / name
        with open(p, "w", newline="", encoding="utf-8") as f:
            if rows:
                cols = list(dict.fromkeys(k for r in rows for k in r))
                w = csv.DictWriter(f, fieldnames=cols)
                w.writeheader()
                for r in rows:
                    w.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()})
        paths[name] = p
    plots = _plots(rep)
    for name, data in plots.items():
        p = out_dir / name
        p.write_bytes(data)
        paths[name] = p
    from pardus.stats.density_map import rasterio_available, write_geotiff

    if rasterio_available():
        for name, dm in (("density_map.tif", rep.density_map), ("habitat_map.tif", rep.habitat_map)):
            if dm is not None:
                paths[name] = write_geotiff(dm, out_dir / name, rep.crs)
    env = Environment(autoescape=select_autoescape(default=True))
    env.filters["num"] = _fmt
    env.filters["label"] = lambda i: rep.data.individual_labels.get(i, i)
    env.filters["ci"] = _fmt_ci
    env.filters["pct"] = lambda v: "–" if v is None or not math.isfinite(v) else f"{(v - 1) * 100:+.0f}%"
    html = env.from_string(TEMPLATE).render(
        r=rep,
        n=nums,
        labels=rep.data.individual_labels,
        common=common_name,
        plots={k: "data:image/png;base64," + base64.b64encode(v).decode() for k, v in plots.items()},
        tables=tables,
        files=sorted(paths),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    p = out_dir / "report.html"
    p.write_text(html, encoding="utf-8")
    paths["report.html"] = p
    return paths


def _fmt(v: Any, digits: int = 3) -> str:
    """Numbers for people: about ``digits`` significant figures, thousands separated, '–' for missing."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if not math.isfinite(v):
            return "–"
        a = abs(v)
        if v == int(v) and a < 1e15:
            return f"{int(v):,}"
        if a >= 1e6 or a < 1e-3:
            return f"{v:.{digits}g}"
        decimals = max(digits - 1 - math.floor(math.log10(a)), 0)
        return f"{v:,.{decimals}f}"
    return str(v)


def _fmt_ci(e: Any, digits: int = 3) -> str:
    """'lcl – ucl' of an Estimate, or '–' when the interval does not exist."""
    lo, hi = e.lcl, e.ucl
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return "–"
    return f"{_fmt(lo, digits)} – {_fmt(hi, digits)}"


def build_report(
    workspace: Any,
    plot: str,
    year: int,
    out_dir: Path,
    options: ReportOptions | None = None,
    *,
    trend: bool = True,
) -> tuple[PlotYearReport, dict[str, Path]]:
    """Collect, analyse and write the report for one plot and year.

    With ``trend`` (the default) the report also looks back over every earlier year the store holds
    for the plot and adds the trend section (:func:`pardus.stats.trend.trend_for_report`); with a
    single year it says that a trend needs two or more.
    """
    o = options or ReportOptions()
    with workspace.db.session() as s:
        data = collect(s, plot, year, o.species)
        movement, period, notes = movement_section(s, data, o.movement_near_m)
    try:
        rep = analyse(data, o)
    except EffortError as exc:
        raise ReportError(str(exc)) from exc
    rep.movement, rep.movement_period = movement, period
    rep.messages.extend(notes)
    if trend:
        from pardus.stats.trend import trend_for_report

        rep.trend, rep.trend_note = trend_for_report(workspace, rep)
    return rep, write_report(rep, out_dir)
