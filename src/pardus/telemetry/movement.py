"""Movement of a collared animal: home range (MCP and kernel), distance per day, plots and cameras it
passes. Plain functions on arrays of positions; the store is read only by :func:`movement_report`.

Positions are put on a local plane first (equirectangular about the track's mean, as the virtual
park does): over a home range of tens of kilometres its error is metres, well under a GPS fix in
forest, and it needs no projection library. Areas are in km².

Methods:
- Minimum convex polygon (MCP) of the 95% of fixes nearest the arithmetic mean of all fixes (Mohr
  1947; the "mcp" of adehabitatHR, Calenge 2006: fixes farther than the 95th percentile of distances
  to the mean, numpy's linear quantile = R type 7, are left out), area of the convex hull.
- Fixed kernel density with a bivariate normal kernel and the reference bandwidth
  h_ref = sqrt((var x + var y) / 2) · n^(-1/6) (Worton 1989; Silverman 1986 eq. 4.14 for two
  dimensions; adehabitatHR's "href"). The 95% home range is the smallest set of grid cells holding
  95% of the estimated density (the 95% isopleth; Worton 1989). h_ref oversmooths clumped tracks
  (Seaman and Powell 1996); the bandwidth used is reported so a reader can judge.
- Distance per day: the sum of straight-line steps between successive fixes (great circle,
  haversine), each step given to the day it ends in (in the given UTC offset); days with fewer fixes
  give shorter paths, so the fixes per day are reported beside it (Rowcliffe et al. 2012 on how fix
  interval shortens measured paths). Mean over days with a standard error across days.

References:
    Mohr, C. O. (1947) Table of equivalent populations of North American small mammals. American
    Midland Naturalist 37, 223-249.
    Worton, B. J. (1989) Kernel methods for estimating the utilization distribution in home-range
    studies. Ecology 70, 164-168.
    Silverman, B. W. (1986) Density Estimation for Statistics and Data Analysis. Chapman and Hall.
    Seaman, D. E. and Powell, R. A. (1996) An evaluation of the accuracy of kernel density estimators
    for home range analysis. Ecology 77, 2075-2085.
    Calenge, C. (2006) The package adehabitat for the R software: a tool for the analysis of space
    and habitat use by animals. Ecological Modelling 197, 516-519.
    Rowcliffe, J. M., Carbone, C., Kays, R., Kranstauber, B. and Jansen, P. A. (2012) Bias in
    estimating animal travel distance: the effect of sampling frequency. Methods in Ecology and
    Evolution 3, 653-662.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
from scipy.spatial import ConvexHull, QhullError

M_PER_DEG_LAT = 111_132.0
MIN_FIXES = 5


class MovementError(ValueError):
    """Too few fixes or an impossible request; the message says what is missing."""


@dataclass(frozen=True)
class LocalPlane:
    """x east, y north in metres about (lat0, lon0), equirectangular."""

    lat0: float
    lon0: float

    @classmethod
    def about(cls, lons: Sequence[float], lats: Sequence[float]) -> LocalPlane:
        return cls(float(np.mean(lats)), float(np.mean(lons)))

    def xy(self, lons: Sequence[float] | np.ndarray, lats: Sequence[float] | np.ndarray) -> np.ndarray:
        lon = np.asarray(lons, dtype=float)
        lat = np.asarray(lats, dtype=float)
        x = (lon - self.lon0) * M_PER_DEG_LAT * math.cos(math.radians(self.lat0))
        y = (lat - self.lat0) * M_PER_DEG_LAT
        return np.column_stack([x, y])


def mcp(xy: np.ndarray, percent: float = 95.0) -> tuple[float, np.ndarray]:
    """Area (m²) and hull corners of the minimum convex polygon of the ``percent``% of fixes nearest
    their mean (Mohr 1947; adehabitatHR's rule)."""
    xy = np.asarray(xy, dtype=float)
    if len(xy) < 3:
        raise MovementError(f"an MCP needs at least 3 fixes, not {len(xy)}")
    d = np.hypot(*(xy - xy.mean(axis=0)).T)
    kept = xy[d <= np.quantile(d, percent / 100.0)]
    try:
        hull = ConvexHull(kept)
    except QhullError:
        return 0.0, kept[:0]  # all fixes on a line or one point: no area
    return float(hull.volume), kept[hull.vertices]


def href(xy: np.ndarray) -> float:
    """The reference bandwidth (m) of a bivariate normal kernel (Worton 1989; Silverman 1986)."""
    xy = np.asarray(xy, dtype=float)
    sigma = math.sqrt(0.5 * (np.var(xy[:, 0], ddof=1) + np.var(xy[:, 1], ddof=1)))
    return sigma * len(xy) ** (-1.0 / 6.0)


def kernel_density(xy: np.ndarray, h: float, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """The fixed-kernel density (per m²) at every grid node (``gy`` rows by ``gx`` columns):
    f(p) = 1/(n 2π h²) Σ exp(-|p - x_i|² / 2h²)."""
    xy = np.asarray(xy, dtype=float)
    n = len(xy)
    out = np.zeros((len(gy), len(gx)))
    # separable: exp(-(dx²+dy²)/2h²) = exp(-dx²/2h²)·exp(-dy²/2h²), so the sum is a matrix product
    for i in range(0, n, 2048):
        chunk = xy[i:i + 2048]
        ex = np.exp(-((gx[None, :] - chunk[:, 0:1]) ** 2) / (2 * h * h))  # (m, nx)
        ey = np.exp(-((gy[None, :] - chunk[:, 1:2]) ** 2) / (2 * h * h))  # (m, ny)
        out += ey.T @ ex
    return out / (n * 2 * math.pi * h * h)


@dataclass(frozen=True)
class KernelRange:
    area_m2: float
    bandwidth_m: float
    bandwidth_rule: str
    cell_m: float
    mass_on_grid: float  # share of the density the grid holds (near 1: the grid is wide enough)


def kernel_home_range(xy: np.ndarray, percent: float = 95.0, h: float | None = None,
                      cells: int = 200) -> KernelRange:
    """Area of the ``percent``% isopleth of the fixed-kernel utilisation distribution (Worton 1989),
    with the reference bandwidth unless ``h`` is given; the grid reaches 4 h past the fixes."""
    xy = np.asarray(xy, dtype=float)
    if len(xy) < MIN_FIXES:
        raise MovementError(f"a kernel home range needs at least {MIN_FIXES} fixes, not {len(xy)}")
    rule = "given"
    if h is None:
        h, rule = href(xy), "href: sqrt((var x + var y)/2) * n^(-1/6) (Worton 1989)"
    if not h > 0:
        return KernelRange(0.0, 0.0, rule, 0.0, 1.0)
    lo, hi = xy.min(axis=0) - 4 * h, xy.max(axis=0) + 4 * h
    cell = float(max(hi - lo) / cells)
    gx = np.arange(lo[0] + cell / 2, hi[0], cell)
    gy = np.arange(lo[1] + cell / 2, hi[1], cell)
    dens = kernel_density(xy, h, gx, gy) * cell * cell  # mass per cell
    total = float(dens.sum())
    order = np.sort(dens.ravel())[::-1]
    cum = np.cumsum(order)
    k = int(np.searchsorted(cum, percent / 100.0 * total)) + 1
    return KernelRange(k * cell * cell, float(h), rule, cell, total)


def haversine_m(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * np.arcsin(np.minimum(1.0, np.sqrt(h)))


@dataclass(frozen=True)
class DailyDistance:
    days: dict[str, tuple[float, int]]  # local date -> (metres, fixes)
    mean_m: float
    se_m: float


def distance_per_day(times: Sequence[datetime], lons: Sequence[float], lats: Sequence[float],
                     utc_offset_minutes: int = 0) -> DailyDistance:
    """Path length per local day (steps given to the day they end in) and its mean ± SE over days."""
    if len(times) < 2:
        raise MovementError("distance per day needs at least 2 fixes")
    lon, lat = np.asarray(lons, dtype=float), np.asarray(lats, dtype=float)
    steps = haversine_m(lon[:-1], lat[:-1], lon[1:], lat[1:])
    tz = timezone(timedelta(minutes=utc_offset_minutes))
    days: dict[str, list[float]] = {}
    for t in times:
        days.setdefault(t.astimezone(tz).date().isoformat(), [0.0, 0])[1] += 1  # type: ignore[index]
    for t, step in zip(times[1:], steps, strict=True):
        days[t.astimezone(tz).date().isoformat()][0] += float(step)
    out = {d: (round(v[0], 1), int(v[1])) for d, v in sorted(days.items())}
    vals = np.array([v[0] for v in out.values()])
    se = float(vals.std(ddof=1) / math.sqrt(len(vals))) if len(vals) > 1 else float("nan")
    return DailyDistance(out, float(vals.mean()), se)


def inside_outline(poly: np.ndarray, pts: np.ndarray) -> np.ndarray:
    from matplotlib.path import Path as MplPath

    return MplPath(poly).contains_points(pts)


def distance_to_outline(poly: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Distance (m) from each point to the polygon's boundary."""
    a = poly
    b = np.roll(poly, -1, axis=0)
    ab = b - a
    ap = pts[:, None, :] - a[None, :, :]
    t = np.clip((ap * ab[None]).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12)[None], 0, 1)
    closest = a[None] + t[..., None] * ab[None]
    return np.hypot(*(pts[:, None, :] - closest).transpose(2, 0, 1)).min(axis=1)


def plot_hull(xy: np.ndarray) -> np.ndarray:
    """The outline of a plot: convex hull of its stations (as the map draws it), or the points."""
    if len(xy) >= 3:
        try:
            return xy[ConvexHull(xy).vertices]
        except QhullError:
            pass
    return xy


def fixes_in_plots(xy: np.ndarray, plots: dict[str, np.ndarray], buffer_m: float = 0.0) -> dict[str, int]:
    """How many fixes fall in each plot's outline (or within ``buffer_m`` of it); plots with none left out."""
    out: dict[str, int] = {}
    for name, stations in plots.items():
        hull = plot_hull(stations)
        if len(hull) >= 3:
            inside = inside_outline(hull, xy)
            if buffer_m > 0:
                inside |= distance_to_outline(hull, xy) <= buffer_m
        else:
            d = np.hypot(*(xy[:, None, :] - hull[None]).transpose(2, 0, 1)).min(axis=1)
            inside = d <= max(buffer_m, 0.0)
        if int(inside.sum()):
            out[name] = int(inside.sum())
    return out


def fixes_near(xy: np.ndarray, points: np.ndarray, radius_m: float) -> np.ndarray:
    """For each point (a camera), how many fixes lie within ``radius_m``."""
    if len(xy) == 0 or len(points) == 0:
        return np.zeros(len(points), dtype=int)
    d = np.hypot(*(xy[:, None, :] - points[None]).transpose(2, 0, 1))
    return (d <= radius_m).sum(axis=0)


@dataclass
class MovementSummary:
    """One tag's movement in a period, with the methods named."""

    tag_id: str
    individual: str | None
    start: datetime
    end: datetime
    fixes: int
    outliers_left_out: int
    failed_fixes: int
    mcp95_km2: float | None
    kde95_km2: float | None
    bandwidth_m: float | None
    bandwidth_rule: str | None
    daily_distance_km: dict[str, tuple[float, int]]
    mean_daily_km: float | None
    se_daily_km: float | None
    plots: dict[str, int]
    cameras: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["start"], d["end"] = self.start.isoformat(), self.end.isoformat()
        return d


def summarise(tag_id: str, individual: str | None, times: Sequence[datetime], lons: Sequence[float],
              lats: Sequence[float], *, outliers: int = 0, failed: int = 0,
              plots: dict[str, list[tuple[float, float]]] | None = None,
              cameras: Sequence[dict[str, Any]] = (), near_m: float = 500.0,
              utc_offset_minutes: int = 0) -> MovementSummary:
    """Everything the report says about one track: MCP 95%, kernel 95%, distance per day, the plots it
    enters, and at each camera (``{"location_id", "lon", "lat", "detections"}``) the fixes within
    ``near_m`` beside the individual's photographs there."""
    if len(times) == 0:
        raise MovementError(f"tag {tag_id} has no good fix in the period")
    plane = LocalPlane.about(lons, lats)
    xy = plane.xy(lons, lats)
    notes: list[str] = []
    mcp_km2 = kde_km2 = h = None
    rule = None
    if len(xy) >= MIN_FIXES:
        mcp_km2 = mcp(xy)[0] / 1e6
        kr = kernel_home_range(xy)
        kde_km2, h, rule = kr.area_m2 / 1e6, kr.bandwidth_m, kr.bandwidth_rule
    else:
        notes.append(f"only {len(xy)} fixes: no home range (needs {MIN_FIXES})")
    daily: dict[str, tuple[float, int]] = {}
    mean_km = se_km = None
    if len(xy) >= 2:
        dd = distance_per_day(times, lons, lats, utc_offset_minutes)
        daily = {d: (round(m / 1000.0, 3), n) for d, (m, n) in dd.days.items()}
        mean_km, se_km = dd.mean_m / 1000.0, dd.se_m / 1000.0
    in_plots = {}
    if plots:
        in_plots = fixes_in_plots(xy, {k: plane.xy([p[0] for p in v], [p[1] for p in v]) for k, v in plots.items()})
    cams = []
    if cameras:
        pts = plane.xy([c["lon"] for c in cameras], [c["lat"] for c in cameras])
        near = fixes_near(xy, pts, near_m)
        cams = [{**c, "fixes_within_m": near_m, "fixes_near": int(k)} for c, k in zip(cameras, near, strict=True)]
    return MovementSummary(tag_id, individual, times[0], times[-1], len(xy), outliers, failed, mcp_km2, kde_km2, h,
                           rule, daily, mean_km, se_km, in_plots, cams, notes)


def movement_report(s: Any, *, start: datetime, end: datetime, plot: str | None = None,
                    near_m: float = 500.0, utc_offset_minutes: int = 0) -> list[MovementSummary]:
    """Movement of every tag with fixes in [start, end): what the plot-year report can call.

    Plots are the camera locations' ``plot`` outlines; with ``plot`` given, only tags with a fix in or
    near it (``near_m``) are summarised. For a tag linked to a catalogue individual, each camera gets
    the individual's photographed detections there (human-confirmed, not superseded) in the period.
    """
    from sqlalchemy import func, select

    from pardus.store.models import Deployment, Individual, Location, Media, Observation
    from pardus.telemetry.fixes import tracks

    locs = [loc for loc in s.scalars(select(Location)) if loc.latitude is not None and loc.longitude is not None]
    plots: dict[str, list[tuple[float, float]]] = {}
    for loc in locs:
        if loc.plot:
            plots.setdefault(loc.plot, []).append((loc.longitude, loc.latitude))
    codes = dict(s.execute(select(Individual.id, Individual.code)).all())
    out = []
    for tr in tracks(s, start=start, end=end):
        if not tr.times:
            continue
        cams: list[dict[str, Any]] = []
        if tr.individual_id:
            seen = dict(s.execute(
                select(Deployment.location_id, func.count(Observation.id))
                .join(Deployment, Deployment.id == Observation.deployment_id)
                .outerjoin(Media, Media.id == Observation.media_id)
                .where(Observation.individual_id == tr.individual_id, Observation.classification_method == "human",
                       Observation.superseded_by.is_(None),
                       func.coalesce(Observation.event_start, Media.timestamp) >= start,
                       func.coalesce(Observation.event_start, Media.timestamp) < end)
                .group_by(Deployment.location_id)).all())
            wanted = [loc for loc in locs if plot is None or loc.plot == plot]
            cams = [{"location_id": loc.id, "plot": loc.plot, "lon": loc.longitude, "lat": loc.latitude,
                     "detections": int(seen.get(loc.id, 0))} for loc in wanted]
        summ = summarise(tr.tag_id, codes.get(tr.individual_id or ""), tr.times, tr.lons, tr.lats,
                         outliers=tr.outliers, failed=tr.without_fix, plots=plots, cameras=cams, near_m=near_m,
                         utc_offset_minutes=utc_offset_minutes)
        if plot is not None and plot not in summ.plots:
            if not plots.get(plot):
                continue
            hull = LocalPlane.about(tr.lons, tr.lats)
            pxy = hull.xy([p[0] for p in plots[plot]], [p[1] for p in plots[plot]])
            if not fixes_in_plots(hull.xy(tr.lons, tr.lats), {plot: pxy}, near_m):
                continue
        out.append(summ)
    return out
