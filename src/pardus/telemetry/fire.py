"""Satellite fire hotspots in the store, and the fire alerts they raise for the park.

Every hotspot of a FIRMS file is kept (a hotspot outside the park today is context for the map and
for later questions), identified by its key, so a second import of the same file, or of an
overlapping 24-hour file downloaded an hour later, adds nothing and raises nothing twice.

The park is where its cameras are: the convex hull of every camera location with coordinates, on a
local plane (as ``pardus.telemetry.movement``). A hotspot is in the park when it lies inside that
outline or within the buffer of it (the ``hotspot`` rule's ``within_m``, else ``--buffer-km``).
A recent hotspot in the park raises a "fire" alert through the alert rules and lifecycle
(``pardus.alerts``): at the nearest camera, so a camera's own fire/smoke alert open in the window and
the satellite's hotspots near it are one alert with the sightings attached, not many. Old hotspots
(an archive of last year's fires) are stored and placed, but wake nobody.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pardus.alerts.lifecycle import raise_alert
from pardus.alerts.notify import Channel, schedule
from pardus.alerts.rules import Rule, RuleSet
from pardus.store.models import Alert, Deployment, FireHotspot, Location, utcnow
from pardus.telemetry.firms import FirmsFile, Hotspot
from pardus.telemetry.fixes import TelemetryError
from pardus.telemetry.movement import (
    M_PER_DEG_LAT,
    LocalPlane,
    distance_to_outline,
    haversine_m,
    inside_outline,
    plot_hull,
)

DEFAULT_BUFFER_M = 5000.0
DEFAULT_ALERT_MAX_AGE = timedelta(hours=48)
NEAREST = 3


@dataclass
class Station:
    location_id: str
    name: str | None
    lon: float
    lat: float
    camera_id: str | None
    deployment_id: str | None


@dataclass
class Park:
    """The park's outline (hull of its camera locations) on a local plane, and its stations."""

    stations: list[Station]
    plane: LocalPlane
    hull: np.ndarray  # corners (m) on the plane; fewer than 3 when the cameras are fewer or aligned
    bbox: tuple[float, float, float, float]  # lon0, lat0, lon1, lat1 of the stations

    def distance_m(self, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
        """Metres from each point to the outline (0 inside)."""
        xy = self.plane.xy(lons, lats)
        if len(self.hull) >= 3:
            return np.where(inside_outline(self.hull, xy), 0.0, distance_to_outline(self.hull, xy))
        return np.hypot(*(xy[:, None, :] - self.hull[None]).transpose(2, 0, 1)).min(axis=1)

    def nearest(self, lon: float, lat: float, k: int = NEAREST) -> list[tuple[Station, float]]:
        d = haversine_m(np.full(len(self.stations), lon), np.full(len(self.stations), lat),
                        np.array([st.lon for st in self.stations]), np.array([st.lat for st in self.stations]))
        order = np.argsort(d)[:k]
        return [(self.stations[i], float(d[i])) for i in order]


def park_outline(s: Session) -> Park | None:
    """The park from its camera locations (None when no location has coordinates); each station's
    camera is the one of its latest deployment."""
    locs = [loc for loc in s.scalars(select(Location).order_by(Location.id))
            if loc.latitude is not None and loc.longitude is not None]
    if not locs:
        return None
    latest: dict[str, Deployment] = {}
    deps = s.scalars(select(Deployment).where(Deployment.location_id.in_([loc.id for loc in locs])))
    for dep in sorted(deps, key=lambda d: (d.start.timestamp() if d.start else -math.inf, d.id)):
        latest[dep.location_id or ""] = dep  # the last one standing there wins
    stations = [Station(loc.id, loc.name, float(loc.longitude), float(loc.latitude),  # type: ignore[arg-type]
                        latest[loc.id].camera_id if loc.id in latest else None,
                        latest[loc.id].id if loc.id in latest else None) for loc in locs]
    lons = [st.lon for st in stations]
    lats = [st.lat for st in stations]
    plane = LocalPlane.about(lons, lats)
    hull = plot_hull(plane.xy(lons, lats))
    return Park(stations, plane, hull, (min(lons), min(lats), max(lons), max(lats)))


def fire_alert_kind(s: Session, camera_id: str | None, window: timedelta, now: datetime) -> str:
    """The alert kind a fire sign from outside the camera (hotspot, smoke or PM2.5 sensor) is raised
    as at this camera: "fire", unless the camera has an open "smoke" alert in the window and no open
    "fire" alert, so its smoke frame, the sensor's rise and the satellite's hotspot are one alert."""
    open_kinds = set(s.scalars(select(Alert.kind).where(
        Alert.camera_id == camera_id, Alert.kind.in_(("fire", "smoke")), Alert.status != "resolved",
        Alert.updated >= now - window)))
    return "smoke" if open_kinds == {"smoke"} else "fire"


@dataclass
class FireReport:
    source: str
    layout: str
    rows: int
    stored: int = 0
    already: int = 0
    duplicates: int = 0
    in_park: int = 0
    alerts_created: list[str] = field(default_factory=list)
    alerts_joined: int = 0
    too_old_to_alert: int = 0
    combined_joined: int = 0  # hotspots that completed a combination already raised at their camera
    buffer_m: float = DEFAULT_BUFFER_M
    note: str | None = None


def _rule_for(rules: list[Rule], hs: Hotspot, dist_m: float) -> Rule | None:
    for r in rules:
        if dist_m > r.within_m:
            continue
        if r.min_score is not None and (hs.confidence_pct is None or hs.confidence_pct < r.min_score):
            continue
        if r.when == "night" and hs.daynight != "N" or r.when == "day" and hs.daynight != "D":
            continue
        return r
    return None


def _evidence(hs: Hotspot, dist_m: float, near: list[tuple[Station, float]]) -> dict[str, Any]:
    return {"source": "NASA FIRMS", "hotspot": hs.key, "instrument": hs.instrument, "satellite": hs.satellite,
            "acquired": hs.acquired.isoformat(), "latitude": hs.latitude, "longitude": hs.longitude,
            "confidence": hs.confidence, "frp_mw": hs.frp, "daynight": hs.daynight,
            "distance_to_park_m": round(dist_m),
            "nearest_cameras": [{"location_id": st.location_id, "name": st.name, "camera_id": st.camera_id,
                                 "distance_m": round(d)} for st, d in near]}


def import_hotspots(s: Session, parsed: FirmsFile, rules: RuleSet, *, channels: Sequence[Channel] = (),
                    buffer_m: float | None = None, now: datetime | None = None,
                    alert_max_age: timedelta = DEFAULT_ALERT_MAX_AGE) -> FireReport:
    """Store a parsed FIRMS file's new hotspots in the caller's transaction, place them against the
    park and raise fire alerts for recent ones in it; returns what happened to every row.

    ``buffer_m`` overrides the rules' reach (``within_m`` of the first hotspot rule) for marking
    hotspots as in the park; alerts follow the rules alone. Deliveries are written pending with the
    alert (``pardus.alerts.notify.schedule``); the caller hands ``alerts_created`` to a running
    delivery worker after the commit, or ``pardus serve`` sends them when it next starts.
    """
    now = now or utcnow()
    hot_rules = rules.for_kind("hotspot")
    reach = buffer_m if buffer_m is not None else max((r.within_m for r in hot_rules), default=DEFAULT_BUFFER_M)
    rep = FireReport(parsed.source, parsed.layout, parsed.rows, duplicates=parsed.duplicates, buffer_m=reach)
    if not parsed.hotspots:
        return rep
    lo = min(h.acquired for h in parsed.hotspots)
    hi = max(h.acquired for h in parsed.hotspots)
    have = set(s.scalars(select(FireHotspot.key).where(FireHotspot.acquired >= lo, FireHotspot.acquired <= hi)))
    new = [h for h in parsed.hotspots if h.key not in have]
    rep.already = len(parsed.hotspots) - len(new)
    park = park_outline(s)
    dist = np.full(len(new), np.inf)
    if park is None:
        rep.note = "no camera location has coordinates, so no hotspot can be placed in the park"
    elif new:
        lons = np.array([h.longitude for h in new])
        lats = np.array([h.latitude for h in new])
        # only hotspots near the park's box are put on its plane (a global file spans the Earth)
        pad_lat = (reach + 1000.0) / M_PER_DEG_LAT
        pad_lon = pad_lat / max(math.cos(math.radians(park.plane.lat0)), 0.01)
        lon0, lat0, lon1, lat1 = park.bbox
        near = ((lats >= lat0 - pad_lat) & (lats <= lat1 + pad_lat)
                & (lons >= lon0 - pad_lon) & (lons <= lon1 + pad_lon))
        if near.any():
            dist[near] = park.distance_m(lons[near], lats[near])
    window = timedelta(minutes=rules.window_minutes)
    rows: list[dict[str, Any]] = []
    for h, d in zip(new, dist, strict=True):
        in_park = bool(d <= reach)
        nearest = park.nearest(h.longitude, h.latitude) if in_park and park is not None else []
        alert_id = None
        if in_park:
            rep.in_park += 1
            rule = _rule_for(hot_rules, h, float(d))
            if rule is not None and h.acquired < now - alert_max_age:
                rep.too_old_to_alert += 1
            elif rule is not None:
                st = nearest[0][0]
                kind = fire_alert_kind(s, st.camera_id, window, now)
                raised = raise_alert(s, kind=kind, rule=rule.name, severity=rule.severity, camera_id=st.camera_id,
                                     deployment_id=st.deployment_id, media_id=f"firms:{h.key}"[:64],
                                     evidence=_evidence(h, float(d), nearest), window=window, now=now)
                alert_id = raised.alert.id
                if raised.created:
                    schedule(raised.alert, [c for c in channels if c.wants(kind)])
                    rep.alerts_created.append(raised.alert.id)
                else:
                    rep.alerts_joined += 1
        rows.append({"key": h.key, "acquired": h.acquired, "latitude": h.latitude, "longitude": h.longitude,
                     "instrument": h.instrument, "satellite": h.satellite, "confidence": h.confidence, "frp": h.frp,
                     "daynight": h.daynight, "in_park": in_park,
                     "distance_m": round(nearest[0][1], 1) if nearest else None,
                     "location_id": nearest[0][0].location_id if nearest else None, "alert_id": alert_id,
                     "extra": {k: v for k, v in (("brightness", h.brightness), ("type", h.fire_type),
                                                 ("version", h.version), ("confidence_pct", h.confidence_pct),
                                                 ("layout", parsed.layout)) if v is not None}})
    try:
        for i in range(0, len(rows), 5000):
            s.execute(FireHotspot.__table__.insert(), rows[i:i + 5000])
        s.flush()
    except IntegrityError as exc:
        raise TelemetryError("another import stored some of these hotspots at the same moment; nothing was "
                             "imported from this file: run the same command again") from exc
    rep.stored = len(rows)
    if rules.for_kind("combination"):
        from pardus.telemetry.combine import combine_at

        for row in rows:
            if row["in_park"] and row["acquired"] >= now - alert_max_age:
                got = combine_at(s, rules, lon=row["longitude"], lat=row["latitude"], trigger=f"firms:{row['key']}",
                                 channels=channels, now=now)
                rep.alerts_created += got.created
                rep.combined_joined += got.already
    return rep
