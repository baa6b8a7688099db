"""What the map draws beside the cameras: collar tracks, satellite fire hotspots and sensors.

Plain values for the web layer (which only turns them into JSON): every point carries its instant as
Unix seconds, so the map's time slider can hide what came later without asking the server again.

Places are shown as the camera map shows them (``pardus.live.stations.shown_place``). A collared
animal's position is always treated as sensitive: for a person whose role does not allow exact
places, every fix is rounded to 0.1 degree and consecutive fixes that round to the same place are
drawn once (a leopard's den and its kills are what a poacher wants). Hotspots are NASA's public data
and sensors are park equipment placed like cameras that are not sensitive: both are shown exactly.

A track with more fixes than ``max_points`` is thinned to every k-th fix (the last always kept) and
says so, because years of 15-minute fixes would make the page slower than it is useful; the store
and the movement analysis keep every fix.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from pardus.live.stations import shown_place
from pardus.store.models import FireHotspot, Individual, Sensor, SensorReading, TelemetryTag
from pardus.telemetry.fixes import tracks

DEFAULT_MAX_POINTS = 4000  # per track on a map
MAX_HOTSPOTS = 5000
HOTSPOT_PAD_DEG = 0.5  # hotspots this far around the park's box are drawn (about 50 km north-south)


@dataclass
class TrackLayer:
    """One tag's good fixes as [lat, lon, unix seconds], as this person may see them."""

    tag_id: str
    animal: str | None
    individual: str | None  # the linked catalogue code
    points: list[tuple[float, float, int]]
    fixes: int  # good fixes in the period before thinning or rounding
    outliers: int
    rounded: bool
    thinned_every: int = 1


@dataclass
class HotspotPoint:
    latitude: float
    longitude: float
    time: int
    acquired: str
    instrument: str
    satellite: str | None
    confidence: str | None
    frp: float | None
    in_park: bool
    alert_id: str | None


@dataclass
class SensorPoint:
    id: str
    kind: str
    name: str | None
    latitude: float
    longitude: float
    last_seen: str | None
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)  # reading kind -> value, unit, time


@dataclass
class MapLayers:
    tracks: list[TrackLayer]
    hotspots: list[HotspotPoint]
    sensors: list[SensorPoint]
    span: tuple[int, int] | None  # earliest and latest instant of the timed layers (unix seconds)
    hotspots_left_out: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _shown_track(times: list[datetime], lons: list[float], lats: list[float], *, exact_places: bool,
                 max_points: int) -> tuple[list[tuple[float, float, int]], bool, int]:
    pts: list[tuple[float, float, int]] = []
    rounded = False
    for t, lon, lat in zip(times, lons, lats, strict=True):
        la, lo, r = shown_place(lat, lon, sensitive=True, exact_places=exact_places)
        rounded = rounded or r
        if r and pts and pts[-1][0] == la and pts[-1][1] == lo:
            continue  # the same rounded place again: drawn once, at its first instant
        pts.append((la, lo, int(t.timestamp())))
    every = max(1, math.ceil(len(pts) / max_points)) if max_points > 0 else 1
    if every > 1:
        pts = pts[::every] + ([pts[-1]] if (len(pts) - 1) % every else [])
    return pts, rounded, every


def _absorbed(s: Session, individual_id: str) -> list[str]:
    """The individual and every record merged into it (fixes keep the id they were linked with)."""
    ids, frontier = [individual_id], [individual_id]
    while frontier:
        nxt = list(s.scalars(select(Individual.id).where(Individual.merged_into.in_(frontier))))
        nxt = [i for i in nxt if i not in ids]
        ids += nxt
        frontier = nxt
    return ids


def track_layers(s: Session, *, exact_places: bool, individual_id: str | None = None,
                 start: datetime | None = None, end: datetime | None = None,
                 max_points: int = DEFAULT_MAX_POINTS) -> list[TrackLayer]:
    """Every tag's track (or only the tags linked to one individual and its merged records)."""
    codes = dict(s.execute(select(Individual.id, Individual.code)).all())
    animals = dict(s.execute(select(TelemetryTag.tag_id, TelemetryTag.animal)).all())
    found = []
    for ind in (_absorbed(s, individual_id) if individual_id else [None]):
        found += tracks(s, individual_id=ind, start=start, end=end)
    out = []
    for tr in found:
        if not tr.times:
            continue
        pts, rounded, every = _shown_track(tr.times, tr.lons, tr.lats, exact_places=exact_places,
                                           max_points=max_points)
        out.append(TrackLayer(tr.tag_id, animals.get(tr.tag_id), codes.get(tr.individual_id or ""), pts,
                              len(tr.times), tr.outliers, rounded, every))
    return out


def hotspot_points(s: Session, *, start: datetime | None = None, end: datetime | None = None,
                   limit: int = MAX_HOTSPOTS) -> tuple[list[HotspotPoint], int]:
    """The newest hotspots in the park (as placed at import) or near its cameras' box; how many more
    there were. A global 24-hour file holds tens of thousands of fires a park does not need drawn."""
    from pardus.telemetry.fire import park_outline

    park = park_outline(s)
    q = select(FireHotspot)
    if park is not None:
        lon0, lat0, lon1, lat1 = park.bbox
        pad_lon = HOTSPOT_PAD_DEG / max(math.cos(math.radians(park.plane.lat0)), 0.01)
        q = q.where(or_(FireHotspot.in_park.is_(True),
                        (FireHotspot.latitude.between(lat0 - HOTSPOT_PAD_DEG, lat1 + HOTSPOT_PAD_DEG))
                        & (FireHotspot.longitude.between(lon0 - pad_lon, lon1 + pad_lon))))
    else:
        q = q.where(FireHotspot.in_park.is_(True))
    if start is not None:
        q = q.where(FireHotspot.acquired >= start)
    if end is not None:
        q = q.where(FireHotspot.acquired < end)
    rows = list(s.scalars(q.order_by(FireHotspot.acquired.desc(), FireHotspot.id).limit(limit + 1)))
    more = 0
    if len(rows) > limit:
        from sqlalchemy import func

        more = int(s.scalar(select(func.count()).select_from(q.subquery())) or 0) - limit
        rows = rows[:limit]
    pts = [HotspotPoint(h.latitude, h.longitude, int(h.acquired.timestamp()), h.acquired.isoformat(), h.instrument,
                        h.satellite, h.confidence, h.frp, bool(h.in_park), h.alert_id) for h in reversed(rows)]
    return pts, more


def sensor_points(s: Session) -> list[SensorPoint]:
    """Every sensor with a place, with its newest reading of each kind."""
    out = []
    for x in s.scalars(select(Sensor).where(Sensor.latitude.is_not(None), Sensor.longitude.is_not(None))
                       .order_by(Sensor.id)):
        latest: dict[str, dict[str, Any]] = {}
        if x.last_seen is not None:
            rows = s.execute(select(SensorReading.kind, SensorReading.value, SensorReading.unit,
                                    SensorReading.timestamp)
                             .where(SensorReading.source_id == x.id, SensorReading.timestamp == x.last_seen))
            for kind, value, unit, ts in rows:
                latest[kind] = {"value": value, "unit": unit, "time": ts.isoformat()}
        out.append(SensorPoint(x.id, x.kind, x.name, float(x.latitude), float(x.longitude),  # type: ignore[arg-type]
                               x.last_seen.isoformat() if x.last_seen else None, latest))
    return out


def map_layers(s: Session, *, exact_places: bool, start: datetime | None = None, end: datetime | None = None,
               max_points: int = DEFAULT_MAX_POINTS) -> MapLayers:
    """Tracks, hotspots and sensors for the map, in the period (all time when not given)."""
    trs = track_layers(s, exact_places=exact_places, start=start, end=end, max_points=max_points)
    hot, more = hotspot_points(s, start=start, end=end)
    times = [p[2] for t in trs for p in t.points] + [h.time for h in hot]
    span = (min(times), max(times)) if times else None
    return MapLayers(trs, hot, sensor_points(s), span, more)
