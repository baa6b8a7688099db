"""Online sensors: registered like cameras, with their own tokens; readings as time series.

A sensor (smoke, PM2.5, temperature/humidity, fuel moisture, acoustic gunshot/chainsaw detector,
gate or vehicle counter, weather station) gets a token ``pds.<sensor>.<secret>``, shown once and
stored as a salted HMAC-SHA256, the cameras' scheme (``pardus.live.cameras.hash_token``). Readings
arrive over the HTTP API (one JSON batch per post) or from CSV files of historical series, and are
stored as ``SensorReading`` rows (``source_id`` = the sensor), the table camera heartbeats use.
A reading is (sensor, kind, time): the same reading posted twice (a retry after a lost answer) or
a file imported twice is stored once.

Every reading's time must carry its zone; a time without one is refused, not guessed. CSV layouts
read: Pardus' own (``sensor,time,kind,value,unit``), US EPA daily downloads (``ad_viz_plotval_data``;
local dates, so the UTC offset is asked for) and Synoptic/MesoWest station files (RAWS fire weather).
"""

from __future__ import annotations

import csv
import io
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pardus.alerts.lifecycle import raise_alert
from pardus.alerts.notify import Channel, schedule
from pardus.alerts.rules import Rule, RuleSet
from pardus.live.cameras import AuthError, bearer, hash_token, token_matches
from pardus.store.models import Sensor, SensorReading
from pardus.telemetry.movebank import MAX_ERRORS_SHOWN, TelemetryFileError, decode, read_bytes

TOKEN_PREFIX = "pds"
KINDS = ("smoke", "pm25", "temperature", "humidity", "fuel-moisture", "acoustic", "gunshot", "chainsaw",
         "gate", "vehicle-counter", "weather", "other")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@~-]{0,63}$")
READING_KIND_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
MAX_BATCH = 5000


class SensorError(ValueError):
    """A sensor command or reading that cannot be done; the message says what to do instead."""


@dataclass(frozen=True)
class Reading:
    """One value at one instant (aware); ``value`` None for a text-only reading (``extra['text']``)."""

    timestamp: datetime
    kind: str
    value: float | None
    unit: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def add_sensor(s: Session, sensor_id: str, kind: str, *, name: str | None = None, latitude: float | None = None,
               longitude: float | None = None) -> Sensor:
    """Register a sensor (no token yet: ``issue_token``); adding one that exists is refused."""
    if not ID_RE.match(sensor_id):
        raise SensorError(f"sensor id {sensor_id[:70]!r}: 1-64 letters or digits (also - _ . : @ ~ after the first)")
    if kind not in KINDS:
        raise SensorError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if (latitude is None) != (longitude is None):
        raise SensorError("give both --lat and --lon, or neither")
    if latitude is not None and not (-90 <= latitude <= 90 and -180 <= longitude <= 180):  # type: ignore[operator]
        raise SensorError(f"{latitude}, {longitude} is not a place on Earth (latitude -90..90, longitude -180..180)")
    if s.get(Sensor, sensor_id) is not None:
        raise SensorError(f"sensor {sensor_id} exists already; `pardus sensors list` shows it")
    sensor = Sensor(id=sensor_id, kind=kind, name=name, latitude=latitude, longitude=longitude, extra={})
    s.add(sensor)
    return sensor


def issue_token(s: Session, sensor_id: str) -> str:
    """A new token for the sensor (the old one stops working); returned once, only its hash is kept."""
    sensor = s.get(Sensor, sensor_id)
    if sensor is None:
        raise SensorError(f"no sensor {sensor_id!r}; add it with `pardus sensors add {sensor_id} --kind ...`")
    token = f"{TOKEN_PREFIX}.{sensor_id}.{secrets.token_urlsafe(32)}"
    sensor.token_hash, sensor.token_revoked = hash_token(token), None
    return token


_STAND_IN = hash_token(f"{TOKEN_PREFIX}.stand-in.{secrets.token_urlsafe(32)}")  # checked for unknown ids


def authenticate(s: Session, sensor_id: str, authorization: str | None) -> Sensor:
    """The sensor, if ``authorization`` carries its valid token; otherwise AuthError (401/403).

    An unknown sensor id is answered exactly as a wrong token is, after the same hashing work against
    a stand-in, as for cameras (issue 19): a 404 would tell a stranger which sensor ids exist."""
    sensor = s.get(Sensor, sensor_id)
    token = bearer(authorization)
    if token is None:
        raise AuthError(401, "missing token: send the header 'Authorization: Bearer <sensor token>'")
    if token_matches(sensor.token_hash if sensor is not None else _STAND_IN, token) and sensor is not None:
        if sensor.token_revoked is not None:
            raise AuthError(403, f"the token of sensor {sensor_id} was revoked; issue a new one")
        return sensor
    raise AuthError(401, f"wrong token for sensor {sensor_id[:64]} (or an old one that was replaced, or no sensor "
                         "of that id is registered: an admin adds one with `pardus sensors add ID --kind KIND`)")


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant with its zone (``Z`` or ``+10:00``); a time without a zone is refused."""
    t = str(text).strip()
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise SensorError(f"time {str(text)[:40]!r} is not ISO 8601 (e.g. 2024-05-01T06:30:00+10:00)") from None
    if dt.tzinfo is None:
        raise SensorError(f"time {str(text)[:40]!r} has no time zone; add Z (UTC) or the offset, e.g. +10:00")
    return dt.astimezone(UTC)


def reading(time: Any, kind: Any, value: Any, unit: Any = None) -> Reading:
    """One checked reading from loose input (JSON, CSV cells)."""
    ts = time if isinstance(time, datetime) else parse_instant(time)
    if ts.tzinfo is None:
        raise SensorError(f"time {ts} has no time zone")
    kind = str(kind or "").strip().lower()
    if not READING_KIND_RE.match(kind):
        raise SensorError(f"reading kind {kind[:40]!r}: 1-32 lower-case letters, digits, - _ .")
    if value is None or value == "":
        raise SensorError(f"reading {kind} at {ts:%Y-%m-%d %H:%M} has no value")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SensorError(f"reading {kind} value {str(value)[:30]!r} is not a number") from None
    if not math.isfinite(v):
        raise SensorError(f"reading {kind} value {value!r} is not a finite number")
    unit_s = None if unit in (None, "") else str(unit)[:16]
    return Reading(ts.astimezone(UTC), kind, v, unit_s)


def store_readings(s: Session, sensor_id: str, readings: list[Reading]) -> tuple[list[Reading], int]:
    """Store the readings not stored yet (same sensor, kind and time); returns (the new ones, already)."""
    if not readings:
        return [], 0
    lo = min(r.timestamp for r in readings)
    hi = max(r.timestamp for r in readings)
    have = {(k, t) for k, t in s.execute(select(SensorReading.kind, SensorReading.timestamp).where(
        SensorReading.source_id == sensor_id, SensorReading.timestamp >= lo, SensorReading.timestamp <= hi))}
    new: list[Reading] = []
    for r in readings:
        if (r.kind, r.timestamp) in have:
            continue
        have.add((r.kind, r.timestamp))
        new.append(r)
    rows = [{"source_id": sensor_id, "timestamp": r.timestamp, "kind": r.kind, "value": r.value, "unit": r.unit,
             "extra": dict(r.extra)} for r in new]
    for i in range(0, len(rows), MAX_BATCH):
        s.execute(SensorReading.__table__.insert(), rows[i:i + MAX_BATCH])
    sensor = s.get(Sensor, sensor_id)
    if sensor is not None and new:
        newest = max(r.timestamp for r in new)
        if sensor.last_seen is None or newest > sensor.last_seen:
            sensor.last_seen = newest
    return new, len(readings) - len(new)


def readings_of(body: Any) -> list[Any]:
    """The readings a posted JSON body carries: ``{"readings": [...]}`` or one reading as the object."""
    items = body.get("readings") if isinstance(body, dict) and "readings" in body else [body]
    if not isinstance(items, list) or not items or len(items) > MAX_BATCH:
        raise SensorError(f"'readings' must be a list of 1 to {MAX_BATCH} readings")
    return items


@dataclass
class Posted:
    """What one post of readings did (the HTTP answer and the MQTT acknowledgement)."""

    stored: int
    already: int
    alerts: list[str]


def accept_readings(s: Session, sensor_id: str, authorization: str | None, items: list[Any], rules: RuleSet,
                    channels: Sequence[Channel] = ()) -> Posted:
    """One post from a sensor, over HTTP or MQTT alike: its token checked, every reading checked (one
    bad reading refuses the post, named by its place), the new ones stored and put through the
    sensor rules, in the caller's transaction. AuthError or SensorError otherwise."""
    authenticate(s, sensor_id, authorization)
    readings = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise SensorError(f"reading #{i + 1} must be an object with time, kind, value")
        try:
            readings.append(reading(item.get("time"), item.get("kind"), item.get("value"), item.get("unit")))
        except SensorError as exc:
            raise SensorError(f"reading #{i + 1}: {exc}") from None
    new, already = store_readings(s, sensor_id, readings)
    alerts = alert_on_readings(s, sensor_id, new, rules, channels=channels)
    return Posted(len(new), already, alerts.created)


def record_readings(s: Session, sensor_id: str, readings: list[Reading]) -> tuple[int, int]:
    """Store the readings not stored yet; returns (stored, already)."""
    new, already = store_readings(s, sensor_id, readings)
    return len(new), already


FIRE_SENSORS = ("smoke", "pm25")
DEFAULT_ALERT_MAX_AGE = timedelta(hours=48)


@dataclass
class SensorAlerts:
    created: list[str] = field(default_factory=list)
    joined: int = 0
    too_old: int = 0


def alert_on_readings(s: Session, sensor_id: str, new: list[Reading], rules: RuleSet, *,
                      channels: Sequence[Channel] = (), now: datetime | None = None,
                      alert_max_age: timedelta = DEFAULT_ALERT_MAX_AGE) -> SensorAlerts:
    """Apply the rules of kind ``sensor`` to newly stored readings (in the caller's transaction).

    A reading fires a rule when it reaches ``above`` and/or has risen by ``rise`` over the lowest
    reading of the same sensor and kind in the ``over_minutes`` before it (both must hold when both
    are given). The alert is raised at the nearest camera within the rule's ``within_m`` (else with no
    camera), kind "fire" for smoke and PM2.5 sensors and "sensor" otherwise, so a camera's smoke
    frame, a PM2.5 rise and a satellite hotspot near the same camera in the window are one fire alert
    with the three pieces of evidence attached. Then the ``combination`` rules are checked around the
    sensor (``pardus.telemetry.combine``). Readings older than ``alert_max_age`` alert nobody.
    """
    out = SensorAlerts()
    rules_here = rules.for_kind("sensor")
    sensor = s.get(Sensor, sensor_id)
    if sensor is None or not new:
        return out
    now = now or datetime.now(UTC)
    _alert_on_rules(s, sensor, new, rules, rules_here, out, channels, now, alert_max_age)
    recent = [r for r in new if r.value is not None and r.timestamp >= now - alert_max_age]
    if recent and sensor.latitude is not None and sensor.longitude is not None and rules.for_kind("combination"):
        from pardus.telemetry.combine import combine_at

        last = max(recent, key=lambda r: r.timestamp)
        got = combine_at(s, rules, lon=sensor.longitude, lat=sensor.latitude, channels=channels, now=now,
                         trigger=f"sensor:{sensor_id}:{last.kind}:{last.timestamp:%Y%m%dT%H%M%S}")
        out.created += got.created
        out.joined += got.already
    return out


def _alert_on_rules(s: Session, sensor: Sensor, new: list[Reading], rules: RuleSet, rules_here: list[Rule],
                    out: SensorAlerts, channels: Sequence[Channel], now: datetime, alert_max_age: timedelta) -> None:
    """The ``sensor`` rules on new readings (see :func:`alert_on_readings`)."""
    from pardus.telemetry.fire import fire_alert_kind, park_outline

    if not rules_here:
        return
    sensor_id = sensor.id
    park = park_outline(s) if sensor.latitude is not None and sensor.longitude is not None else None
    alert_kind = "fire" if sensor.kind in FIRE_SENSORS else "sensor"
    window = timedelta(minutes=rules.window_minutes)
    for r in sorted(new, key=lambda x: x.timestamp):
        if r.value is None:
            continue
        for rule in rules_here:
            if rule.readings and r.kind not in rule.readings:
                continue
            if rule.above is not None and r.value < rule.above:
                continue
            risen = None
            if rule.rise is not None:
                low = s.scalar(select(func.min(SensorReading.value)).where(
                    SensorReading.source_id == sensor_id, SensorReading.kind == r.kind,
                    SensorReading.timestamp >= r.timestamp - timedelta(minutes=rule.over_minutes),
                    SensorReading.timestamp < r.timestamp))
                risen = None if low is None else r.value - low
                if risen is None or risen < rule.rise:
                    continue
            if r.timestamp < now - alert_max_age:
                out.too_old += 1
                break
            near = park.nearest(sensor.longitude, sensor.latitude) if park is not None else []  # type: ignore[arg-type]
            near = [(st, d) for st, d in near if d <= rule.within_m]
            st = near[0][0] if near else None
            evidence = {"source": "sensor", "sensor": sensor_id, "sensor_kind": sensor.kind, "reading": r.kind,
                        "value": r.value, "unit": r.unit, "time": r.timestamp.isoformat(),
                        "rise": None if risen is None else round(risen, 3), "over_minutes": rule.over_minutes,
                        "nearest_cameras": [{"location_id": c.location_id, "camera_id": c.camera_id,
                                             "distance_m": round(d)} for c, d in near]}
            kind = fire_alert_kind(s, st.camera_id if st else None, window, now) if alert_kind == "fire" else alert_kind
            raised = raise_alert(s, kind=kind, rule=rule.name, severity=rule.severity,
                                 camera_id=st.camera_id if st else None, deployment_id=st.deployment_id if st else None,
                                 media_id=f"sensor:{sensor_id}:{r.kind}:{r.timestamp:%Y%m%dT%H%M%S}"[:64],
                                 evidence=evidence, window=window, now=now)
            if raised.created:
                schedule(raised.alert, [c for c in channels if c.wants(kind)])
                out.created.append(raised.alert.id)
            else:
                out.joined += 1
            break  # one rule per reading


def series(s: Session, sensor_id: str, kind: str | None = None, start: datetime | None = None,
           end: datetime | None = None) -> list[tuple[datetime, str, float | None, str | None]]:
    """A sensor's readings in time order (for its page's plot and the rules)."""
    q = select(SensorReading.timestamp, SensorReading.kind, SensorReading.value, SensorReading.unit).where(
        SensorReading.source_id == sensor_id)
    if kind:
        q = q.where(SensorReading.kind == kind)
    if start:
        q = q.where(SensorReading.timestamp >= start)
    if end:
        q = q.where(SensorReading.timestamp < end)
    return [tuple(r) for r in s.execute(q.order_by(SensorReading.timestamp))]  # type: ignore[misc]


# --- CSV files -------------------------------------------------------------------------------


@dataclass
class SensorFile:
    """A parsed file: sensors it names (id -> kind, name, lat, lon) and their readings."""

    source: str
    layout: str
    rows: int
    sensors: dict[str, dict[str, Any]]
    readings: dict[str, list[Reading]]
    empty_cells: int = 0


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:32] or "value"


def _rows(text: str, source: str) -> list[tuple[int, list[str]]]:
    if "\x00" in text:
        raise TelemetryFileError(f"{source}: the file contains NUL bytes; it is not a text CSV")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    out = []
    try:
        for row in reader:
            out.append((reader.line_num, row))
    except csv.Error as exc:
        raise TelemetryFileError(f"{source}: not a readable CSV at line {reader.line_num}: {exc}") from exc
    return out


def _fail(source: str, errors: list[str], bad: int, rows: int) -> TelemetryFileError:
    more = f" (and {bad - len(errors)} more)" if bad > len(errors) else ""
    return TelemetryFileError(f"{source}: {bad} of {rows} rows cannot be read, nothing was imported: "
                              + "; ".join(errors) + more)


def parse_sensor_csv(text: str, source: str = "the file", *, utc_offset_minutes: int | None = None) -> SensorFile:
    """Any of the three layouts, told by their headers; the whole file or ``TelemetryFileError``."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    comments = [ln for ln in lines if ln.startswith("#")]
    body = "\n".join(ln for ln in lines if not ln.startswith("#"))
    rows = _rows(body, source)
    if not rows:
        raise TelemetryFileError(f"{source}: the file is empty")
    header = [h.strip() for h in rows[0][1]]
    low = [h.lower() for h in header]
    if "site id" in low and any("pm2.5" in h for h in low):
        return _epa(rows, header, source, utc_offset_minutes)
    if "station_id" in low and "date_time" in low:
        return _synoptic(rows, header, comments, source)
    if {"sensor", "time", "kind", "value"} <= set(low):
        return _plain(rows, low, source)
    raise TelemetryFileError(f"{source}: not a sensor file Pardus reads: expected columns "
                             "sensor,time,kind,value[,unit], "
                             f"an EPA daily download or a Synoptic station file (columns: {', '.join(header[:8])})")


def _plain(rows: list[tuple[int, list[str]]], low: list[str], source: str) -> SensorFile:
    col = {h: i for i, h in enumerate(low)}
    out = SensorFile(source, "pardus", 0, {}, {})
    errors: list[str] = []
    bad = 0
    for line, row in rows[1:]:
        out.rows += 1
        try:
            if len(row) != len(low):
                raise SensorError(f"{len(row)} fields where the header has {len(low)}")
            sid = row[col["sensor"]].strip()
            if not ID_RE.match(sid):
                raise SensorError(f"sensor id {sid[:40]!r} is not a sensor id")
            r = reading(row[col["time"]], row[col["kind"]], row[col["value"]],
                        row[col["unit"]] if "unit" in col else None)
        except SensorError as exc:
            bad += 1
            if len(errors) < MAX_ERRORS_SHOWN:
                errors.append(f"line {line}: {exc}")
            continue
        out.readings.setdefault(sid, []).append(r)
    if bad:
        raise _fail(source, errors, bad, out.rows)
    return out


def _epa(rows: list[tuple[int, list[str]]], header: list[str], source: str, offset: int | None) -> SensorFile:
    if offset is None:
        raise TelemetryFileError(f"{source}: an EPA daily file gives local dates without a time zone; say which "
                                 "with --utc-offset (minutes east of UTC, e.g. -480 for California in winter)")
    tz = timezone(timedelta(minutes=offset))
    col = {h.lower(): i for i, h in enumerate(header)}
    value_col = next(i for h, i in col.items() if "pm2.5" in h)
    out = SensorFile(source, "epa-daily", 0, {}, {})
    errors: list[str] = []
    bad = 0
    for line, row in rows[1:]:
        out.rows += 1
        try:
            if len(row) != len(header):
                raise SensorError(f"{len(row)} fields where the header has {len(header)}")
            site = row[col["site id"]].strip()
            poc = row[col["poc"]].strip() if "poc" in col else ""
            sid = f"epa-{site}" + (f"-{poc}" if poc else "")
            if not ID_RE.match(sid):
                raise SensorError(f"site id {site[:30]!r} is not a site id")
            try:
                day = datetime.strptime(row[col["date"]].strip(), "%m/%d/%Y").replace(tzinfo=tz)
            except ValueError:
                raise SensorError(f"date {row[col['date']][:20]!r} is not MM/DD/YYYY") from None
            unit = row[col["units"]].strip() if "units" in col else None
            r = reading(day, "pm25", row[value_col], unit)
            r.extra.update({"daily_mean": True, "source": row[col["source"]] if "source" in col else None})
            if sid not in out.sensors:
                place = _place({"LATITUDE": row[col["site_latitude"]] if "site_latitude" in col else "",
                                "LONGITUDE": row[col["site_longitude"]] if "site_longitude" in col else ""})
                out.sensors[sid] = {"kind": "pm25", "name": row[col["site name"]] if "site name" in col else None,
                                    **place}
        except (SensorError, ValueError) as exc:
            bad += 1
            if len(errors) < MAX_ERRORS_SHOWN:
                errors.append(f"line {line}: {exc}")
            continue
        out.readings.setdefault(sid, []).append(r)
    if bad:
        raise _fail(source, errors, bad, out.rows)
    return out


def _place(meta: dict[str, str]) -> dict[str, float | None]:
    """The station's place from its comment lines, when both are numbers on Earth; else unknown."""
    try:
        lat, lon = float(meta["LATITUDE"]), float(meta["LONGITUDE"])
    except (KeyError, ValueError):
        return {"latitude": None, "longitude": None}
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):  # also NaN
        return {"latitude": None, "longitude": None}
    return {"latitude": lat, "longitude": lon}


def _synoptic(rows: list[tuple[int, list[str]]], header: list[str], comments: list[str], source: str) -> SensorFile:
    meta = {}
    for c in comments:
        key, _, val = c.lstrip("# ").partition(":")
        meta[key.strip().upper()] = val.strip()
    col = {h.lower(): i for i, h in enumerate(header)}
    second = rows[1][1] if len(rows) > 1 else []
    units = second if len(second) == len(header) and not second[col["date_time"]].strip() else None
    data = rows[2:] if units else rows[1:]
    out = SensorFile(source, "synoptic", 0, {}, {})
    errors: list[str] = []
    bad = 0
    value_cols = [(i, _slug(re.sub(r"_set_\d+d?$", "", h))) for i, h in enumerate(header)
                  if i not in (col["station_id"], col["date_time"])]
    for line, row in data:
        out.rows += 1
        try:
            if len(row) != len(header):
                raise SensorError(f"{len(row)} fields where the header has {len(header)}")
            sid = row[col["station_id"]].strip()
            if not ID_RE.match(sid):
                raise SensorError(f"station id {sid[:30]!r} is not a station id")
            when = row[col["date_time"]].strip()
            if not when.upper().endswith("UTC"):
                raise SensorError(f"time {when[:30]!r} does not say UTC; its zone would have to be guessed")
            try:
                ts = datetime.strptime(when[:-3].strip(), "%m/%d/%Y %H:%M").replace(tzinfo=UTC)
            except ValueError:
                raise SensorError(f"time {when[:30]!r} is not MM/DD/YYYY HH:MM UTC") from None
            got = []
            for i, kind in value_cols:
                cell = row[i].strip()
                unit = units[i].strip() if units else None
                if not cell:
                    out.empty_cells += 1
                    continue
                try:
                    got.append(reading(ts, kind, cell, unit))
                except SensorError:
                    got.append(Reading(ts, kind, None, unit, {"text": cell[:64]}))  # e.g. wind "ESE"
        except SensorError as exc:
            bad += 1
            if len(errors) < MAX_ERRORS_SHOWN:
                errors.append(f"line {line}: {exc}")
            continue
        out.readings.setdefault(sid, []).extend(got)
        if sid not in out.sensors:
            out.sensors[sid] = {"kind": "weather", "name": meta.get("STATION NAME"), **_place(meta)}
    if bad:
        raise _fail(source, errors, bad, out.rows)
    return out


@dataclass
class SensorImport:
    source: str
    layout: str
    rows: int
    readings: int
    stored: int
    already: int
    empty_cells: int
    sensors_added: list[str]
    alerts: SensorAlerts = field(default_factory=SensorAlerts)


def import_sensor_file(s: Session, path: Path, *, utc_offset_minutes: int | None = None,
                       rules: RuleSet | None = None, channels: Sequence[Channel] = (),
                       now: datetime | None = None) -> SensorImport:
    """Read a sensor CSV (plain or gzip) and store its readings in the caller's transaction. Sensors a
    station file names and the store lacks are registered (without a token: they do not post). With
    ``rules``, the new readings go through the sensor rules (``alert_on_readings``)."""
    data, name = read_bytes(path)
    text, _ = decode(data)
    parsed = parse_sensor_csv(text, name, utc_offset_minutes=utc_offset_minutes)
    added = []
    for sid in parsed.readings:
        if s.get(Sensor, sid) is None:
            info = parsed.sensors.get(sid)
            if info is None:
                raise SensorError(f"{name}: sensor {sid!r} is not registered; add it with `pardus sensors add`")
            s.add(Sensor(id=sid, kind=info["kind"], name=info["name"], latitude=info["latitude"],
                         longitude=info["longitude"], extra={"registered_by": f"import of {name}"}))
            added.append(sid)
    s.flush()
    stored = already = 0
    alerts = SensorAlerts()
    for sid, readings in parsed.readings.items():
        new, b = store_readings(s, sid, readings)
        stored, already = stored + len(new), already + b
        if rules is not None:
            got = alert_on_readings(s, sid, new, rules, channels=channels, now=now)
            alerts.created += got.created
            alerts.joined += got.joined
            alerts.too_old += got.too_old
    total = sum(len(v) for v in parsed.readings.values())
    return SensorImport(name, parsed.layout, parsed.rows, total, stored, already, parsed.empty_cells, added, alerts)


def list_sensors(s: Session) -> list[Sensor]:
    return list(s.scalars(select(Sensor).order_by(Sensor.id)))

