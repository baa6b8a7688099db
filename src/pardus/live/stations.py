"""The camera map's facts: where each camera stands and how it is, in one query per kind of fact.

A station is a deployment with a place (a memory-card camera) and, where the camera is online,
its live health: last heartbeat, battery, signal, free storage, silent (offline) or turned or
covered (an open camera-tampered alert). Its ``state`` is the one word the map colours by.
A person whose role does not allow exact places sees a sensitive station rounded to 0.1 degree
(the same precision the Camtrap DP export uses for sensitive places).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pardus.live.health import silence
from pardus.store.models import Alert, Camera, Deployment, Location, Media, SensorReading, utcnow

SENSITIVE_PRECISION_DEG = 0.1
LOW_BATTERY_PCT = 20.0
LOW_STORAGE_MB = 500.0
WEAK_SIGNAL_DBM = -105.0
# The words the map colours by, worst first (a station shows its worst state).
STATES = ("offline", "tampered", "warning", "ok", "card", "ended")


@dataclass
class Station:
    id: str  # the deployment id
    camera_id: str | None
    location_id: str | None
    name: str | None
    plot: str | None
    latitude: float
    longitude: float
    rounded: bool  # True: a sensitive place shown at SENSITIVE_PRECISION_DEG, not exactly
    online: bool
    state: str
    reasons: list[str] = field(default_factory=list)
    photos: int = 0
    last_photo: str | None = None
    last_heartbeat: str | None = None
    battery_pct: float | None = None
    signal_dbm: float | None = None
    free_storage_mb: float | None = None
    start: str | None = None
    end: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def _round(v: float) -> float:
    return round(round(v / SENSITIVE_PRECISION_DEG) * SENSITIVE_PRECISION_DEG, 1)


def shown_place(latitude: float, longitude: float, *, sensitive: bool, exact_places: bool) -> tuple[float, float, bool]:
    """A place as this person may see it: (lat, lon, rounded). Every page that puts a sighting on a
    map goes through here, so a sensitive place is rounded the same way everywhere."""
    hide = sensitive and not exact_places
    return (_round(latitude), _round(longitude), True) if hide else (latitude, longitude, False)


def _camera_state(cam: Camera, open_kinds: set[str], now: datetime) -> tuple[str, list[str]]:
    reasons: list[str] = []
    h = cam.health or {}
    silent = silence(cam, now)
    if silent is not None:
        every = (cam.expected_interval_s or 0) / 3600
        reasons.append(f"silent for {silent / 3600:.1f} h (expected every {every:.1f} h)")
    elif not (cam.expected_interval_s and cam.last_seen is not None) and "camera-offline" in open_kinds:
        reasons.append("offline (open alert)")
    if reasons:
        return "offline", reasons
    if "camera-tampered" in open_kinds:
        return "tampered", ["view changed or covered (open alert)"]
    for key, low, text in (("battery_pct", LOW_BATTERY_PCT, "battery {v:.0f}%"),
                           ("free_storage_mb", LOW_STORAGE_MB, "free storage {v:.0f} MB"),
                           ("signal_dbm", WEAK_SIGNAL_DBM, "weak signal {v:.0f} dBm")):
        v = h.get(key)
        if isinstance(v, int | float) and v < low:
            reasons.append(text.format(v=v))
    return ("warning", reasons) if reasons else ("ok", [])


def stations(s: Session, *, exact_places: bool, now: datetime | None = None,
             deployment_id: str | None = None) -> list[Station]:
    """Every deployment that has a place (or only ``deployment_id``), with its camera's health."""
    now = now or utcnow()
    # count(*), not count(id): SQLite then answers from the (deployment_id, timestamp) index alone.
    mq = select(Media.deployment_id, func.count(), func.max(Media.timestamp)).group_by(Media.deployment_id)
    if deployment_id is not None:
        mq = mq.where(Media.deployment_id == deployment_id)
    media = {dep: (n, last) for dep, n, last in s.execute(mq)}
    cams = {c.id: c for c in s.scalars(select(Camera))}
    open_kinds: dict[str, set[str]] = {}
    for cam_id, kind in s.execute(select(Alert.camera_id, Alert.kind).where(
            Alert.status != "resolved", Alert.kind.in_(("camera-offline", "camera-tampered"))).distinct()):
        open_kinds.setdefault(cam_id, set()).add(kind)
    out: list[Station] = []
    dq = (select(Deployment, Location).join(Location, Location.id == Deployment.location_id)
          .where(Location.latitude.is_not(None), Location.longitude.is_not(None))
          .order_by(Deployment.start, Deployment.id))
    if deployment_id is not None:
        dq = dq.where(Deployment.id == deployment_id)
    rows = s.execute(dq)
    for dep, loc in rows:
        n, last = media.get(dep.id, (0, None))
        cam = cams.get(dep.camera_id) if dep.camera_id else None
        online = cam is not None and bool(cam.token_hash or cam.expected_interval_s)
        ended = dep.end is not None and dep.end < now
        if online and not ended and cam is not None:
            state, reasons = _camera_state(cam, open_kinds.get(cam.id, set()), now)
        else:
            state, reasons = ("ended", ["deployment ended"]) if ended else ("card", [])
        hide = loc.sensitive and not exact_places
        h = (cam.health or {}) if cam is not None else {}
        out.append(Station(
            id=dep.id, camera_id=dep.camera_id, location_id=loc.id, name=loc.name, plot=loc.plot,
            latitude=_round(loc.latitude) if hide else loc.latitude,
            longitude=_round(loc.longitude) if hide else loc.longitude, rounded=hide, online=online,
            state=state, reasons=reasons, photos=int(n or 0), last_photo=_iso(last),
            last_heartbeat=h.get("heartbeat_at") if online else None,
            battery_pct=h.get("battery_pct"), signal_dbm=h.get("signal_dbm"),
            free_storage_mb=h.get("free_storage_mb"), start=_iso(dep.start), end=_iso(dep.end)))
    return out


def plot_outlines(items: list[Station]) -> dict[str, list[tuple[float, float]]]:
    """Each plot's outline as the convex hull of its stations (lat, lon), for maps without tiles.
    A park that draws its plots' true boundaries will want them from a file; the hull is what the
    cameras themselves say."""
    by_plot: dict[str, set[tuple[float, float]]] = {}
    for st in items:
        if st.plot:
            by_plot.setdefault(st.plot, set()).add((st.latitude, st.longitude))
    return {plot: _hull(sorted(pts)) for plot, pts in sorted(by_plot.items())}


def _hull(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Andrew's monotone chain: the convex hull of points sorted by (lat, lon), counter-clockwise."""
    if len(pts) <= 2:
        return pts

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    upper: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


@dataclass
class StationDetail:
    station: Station
    recent_media: list[dict[str, Any]]
    health_series: dict[str, list[tuple[str, float]]]  # kind -> [(iso time, value)], oldest first


def station_detail(s: Session, deployment_id: str, *, exact_places: bool, photos: int = 8,
                   readings: int = 200) -> StationDetail | None:
    """One station for the map's side panel: its recent photos and its health history."""
    found = stations(s, exact_places=exact_places, deployment_id=deployment_id)
    if not found:
        return None
    st = found[0]
    recent = [{"id": m.id, "timestamp": _iso(m.timestamp), "file_name": m.file_name,
               "mediatype": m.file_mediatype}
              for m in s.scalars(select(Media).where(Media.deployment_id == deployment_id)
                                 .order_by(Media.timestamp.desc().nulls_last()).limit(photos))]
    series: dict[str, list[tuple[str, float]]] = {}
    if st.camera_id:
        rows = s.execute(select(SensorReading.kind, SensorReading.timestamp, SensorReading.value)
                         .where(SensorReading.source_id == st.camera_id, SensorReading.value.is_not(None))
                         .order_by(SensorReading.timestamp.desc()).limit(readings))
        for kind, t, v in rows:
            series.setdefault(kind, []).append((t.isoformat(), float(v)))
        for v in series.values():
            v.reverse()
    return StationDetail(st, recent, series)
