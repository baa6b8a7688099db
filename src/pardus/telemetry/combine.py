"""Combination rules: several fire signs near one camera in a short time become one fire alert that
carries them all.

A camera's smoke frame alone may be fog, a PM2.5 rise alone may be a cooking fire in a village, a
satellite hotspot alone may be three hours old; two or three of them together, near each other,
are a fire the rangers must go to. The rule is data (``kind: combination`` in the alert rules)::

    rules:
      - {name: smoke, kind: smoke}                  # the camera's own alert (a channel for "smoke")
      - {name: fire-confirmed, kind: combination, signals: [smoke, sensor, hotspot], min_signals: 2,
         readings: [pm25], rise: 25, within_m: 3000, over_minutes: 120}

The signals, each looked for within ``within_m`` of a camera station and ``over_minutes`` before now:

- ``smoke``: an open "smoke" or "fire" alert raised by a camera photo (the fire-and-smoke stage's
  detection, through the camera rules), at this camera or another station in reach;
- ``sensor``: a reading of ``readings`` kinds (any, when not given) from a sensor in reach that is at
  least ``above`` and/or has risen by ``rise`` over the lowest reading of the same sensor and kind
  in the ``over_minutes`` before it;
- ``hotspot``: a NASA FIRMS hotspot in reach (FIRMS confidence of at least ``min_score`` percent).

When ``min_signals`` of them (all, when not given) are present, one alert of kind "fire" is raised
through the alert lifecycle at the nearest camera to the sign that completed it, with every signal
found as its evidence, so the one message a ranger's channel gets carries the camera photo, the
sensor's rise and the satellite's pass. One combination alert per camera in the rules' window: later
signs do not raise or attach it again (the individual rules, when a park writes them too, attach
their own signs to their own alerts as before).

The check runs whenever a sign arrives: new sensor readings (HTTP, MQTT, CSV), new hotspots
(``pardus fire import`` and ``fire watch``), and a live camera photo that raised a smoke or fire
alert (``pardus.live.queue``), so whichever sign comes last completes the combination at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from pardus.alerts.lifecycle import raise_alert
from pardus.alerts.notify import Channel, schedule
from pardus.alerts.rules import Rule, RuleSet
from pardus.store.models import Alert, FireHotspot, Media, Sensor, SensorReading, utcnow
from pardus.telemetry.fire import Park, Station, park_outline
from pardus.telemetry.movement import M_PER_DEG_LAT, haversine_m

MAX_PER_SIGNAL = 20  # entries of one signal kept as evidence (the nearest first)


@dataclass
class Combined:
    created: list[str] = field(default_factory=list)
    already: int = 0  # the camera had its combination alert in the window (or the sign joined an open one)


def _dist(lon: float, lat: float, lons: Sequence[float], lats: Sequence[float]) -> np.ndarray:
    n = len(lons)
    return haversine_m(np.full(n, lon), np.full(n, lat), np.asarray(lons, dtype=float), np.asarray(lats, dtype=float))


def _smoke(s: Session, park: Park, st: Station, rule: Rule, since: datetime) -> list[dict[str, Any]]:
    """Open smoke/fire alerts raised by a camera photo at stations within reach of ``st``."""
    reach = {x.camera_id: d for x, d in zip(park.stations, _dist(st.lon, st.lat, [x.lon for x in park.stations],
                                                                   [x.lat for x in park.stations]), strict=True)
             if x.camera_id and d <= rule.within_m}
    if not reach:
        return []
    out = []
    for a in s.scalars(select(Alert).where(Alert.kind.in_(("smoke", "fire")), Alert.status != "resolved",
                                           Alert.updated >= since, Alert.camera_id.in_(list(reach)))
                       .order_by(Alert.created)):
        if not a.media_id or s.get(Media, a.media_id) is None:
            continue  # raised by a sensor, a hotspot or a combination: not a camera's own sign
        ev = (a.details or {}).get("evidence") or {}
        out.append({"alert_id": a.id, "kind": a.kind, "camera_id": a.camera_id, "media_id": a.media_id,
                    "created": a.created.isoformat(), "best_score": ev.get("best_score"),
                    "distance_m": round(float(reach[a.camera_id]))})
    return out


def _risen(rows: list[tuple[datetime, float]], over: timedelta) -> list[tuple[datetime, float, float | None]]:
    """Each reading with its rise over the lowest reading in the ``over`` before it (None: no earlier)."""
    out = []
    for i, (t, v) in enumerate(rows):
        earlier = [w for u, w in rows[:i] if u >= t - over]
        out.append((t, v, v - min(earlier) if earlier else None))
    return out


def _sensor(s: Session, st: Station, rule: Rule, since: datetime, now: datetime) -> list[dict[str, Any]]:
    over = timedelta(minutes=rule.over_minutes)
    sensors = [x for x in s.scalars(select(Sensor).where(Sensor.latitude.is_not(None), Sensor.longitude.is_not(None)))]
    if not sensors:
        return []
    dist = _dist(st.lon, st.lat, [x.longitude for x in sensors], [x.latitude for x in sensors])  # type: ignore[misc]
    out = []
    for x, d in sorted(zip(sensors, dist, strict=True), key=lambda p: p[1]):
        if d > rule.within_m:
            continue
        q = select(SensorReading.kind, SensorReading.timestamp, SensorReading.value, SensorReading.unit).where(
            SensorReading.source_id == x.id, SensorReading.timestamp >= since - over, SensorReading.timestamp <= now,
            SensorReading.value.is_not(None))
        if rule.readings:
            q = q.where(SensorReading.kind.in_(rule.readings))
        by_kind: dict[str, list[tuple[datetime, float]]] = {}
        units: dict[str, str | None] = {}
        for kind, ts, value, unit in s.execute(q.order_by(SensorReading.timestamp)):
            by_kind.setdefault(kind, []).append((ts, float(value)))
            units[kind] = unit
        best = None
        for kind, rows in by_kind.items():
            for t, v, rise in _risen(rows, over):
                if t < since or (rule.above is not None and v < rule.above):
                    continue
                if rule.rise is not None and (rise is None or rise < rule.rise):
                    continue
                if best is None or v > best["value"]:
                    best = {"sensor": x.id, "sensor_kind": x.kind, "reading": kind, "value": v, "unit": units[kind],
                            "time": t.isoformat(), "rise": None if rise is None else round(rise, 3),
                            "distance_m": round(float(d))}
        if best is not None:
            out.append(best)
    return out


def _hotspot(s: Session, st: Station, rule: Rule, since: datetime, now: datetime) -> list[dict[str, Any]]:
    pad_lat = (rule.within_m + 100.0) / M_PER_DEG_LAT
    pad_lon = pad_lat / max(math.cos(math.radians(st.lat)), 0.01)
    rows = list(s.scalars(select(FireHotspot).where(
        FireHotspot.acquired >= since, FireHotspot.acquired <= now,
        FireHotspot.latitude.between(st.lat - pad_lat, st.lat + pad_lat),
        FireHotspot.longitude.between(st.lon - pad_lon, st.lon + pad_lon))))
    if not rows:
        return []
    dist = _dist(st.lon, st.lat, [h.longitude for h in rows], [h.latitude for h in rows])
    out = []
    for h, d in sorted(zip(rows, dist, strict=True), key=lambda p: p[1]):
        pct = (h.extra or {}).get("confidence_pct")
        if d > rule.within_m or (rule.min_score is not None and (pct is None or pct < rule.min_score)):
            continue
        out.append({"hotspot": h.key, "instrument": h.instrument, "satellite": h.satellite,
                    "acquired": h.acquired.isoformat(), "latitude": h.latitude, "longitude": h.longitude,
                    "confidence": h.confidence, "frp_mw": h.frp, "distance_m": round(float(d))})
    return out


def _had_combination(s: Session, camera_id: str | None, rule: Rule, since: datetime) -> bool:
    for a in s.scalars(select(Alert).where(Alert.kind == "fire", Alert.camera_id == camera_id,
                                           Alert.status != "resolved", Alert.updated >= since)):
        if (a.details or {}).get("rule") == rule.name:
            return True
    from pardus.store.models import AlertEvent

    return s.scalar(select(AlertEvent.id).join(Alert, Alert.id == AlertEvent.alert_id).where(
        Alert.kind == "fire", Alert.camera_id == camera_id, Alert.status != "resolved", Alert.updated >= since,
        AlertEvent.action == "sighting", AlertEvent.details["rule"].as_string() == rule.name).limit(1)) is not None


def combine_at(s: Session, rules: RuleSet, *, lon: float, lat: float, trigger: str,
               channels: Sequence[Channel] = (), now: datetime | None = None) -> Combined:
    """Check the combination rules around a new sign at (lon, lat); ``trigger`` names the sign (kept
    as the alert's media key, so the same sign checked twice raises nothing twice)."""
    out = Combined()
    rules_here = rules.for_kind("combination")
    if not rules_here:
        return out
    park = park_outline(s)
    if park is None:
        return out
    now = now or utcnow()
    window = timedelta(minutes=rules.window_minutes)
    s.flush()  # the sign that called us is visible to the queries below
    d_st = _dist(lon, lat, [x.lon for x in park.stations], [x.lat for x in park.stations])
    for rule in rules_here:
        since = now - timedelta(minutes=rule.over_minutes)
        need = rule.min_signals or len(rule.signals)
        for i in np.argsort(d_st):
            st = park.stations[int(i)]
            if d_st[i] > rule.within_m:
                break
            if st.camera_id is None:
                continue
            signals: dict[str, list[dict[str, Any]]] = {}
            for k in rule.signals:
                got = (_smoke(s, park, st, rule, since) if k == "smoke" else
                       _sensor(s, st, rule, since, now) if k == "sensor" else _hotspot(s, st, rule, since, now))
                signals[k] = got[:MAX_PER_SIGNAL]
            agree = [k for k, v in signals.items() if v]
            if len(agree) < need:
                continue
            if _had_combination(s, st.camera_id, rule, now - window):
                out.already += 1
                break
            evidence = {"source": "combination", "agree": agree, "signals": signals, "within_m": rule.within_m,
                        "over_minutes": rule.over_minutes, "location_id": st.location_id,
                        "trigger": trigger, "distance_to_trigger_m": round(float(d_st[i]))}
            raised = raise_alert(s, kind="fire", rule=rule.name, severity=rule.severity, camera_id=st.camera_id,
                                 deployment_id=st.deployment_id, media_id=f"combination:{trigger}"[:64],
                                 evidence=evidence, window=window, now=now)
            if raised.created:
                schedule(raised.alert, [c for c in channels if c.wants("fire")])
                out.created.append(raised.alert.id)
            else:
                out.already += 1
            break  # one station per sign and rule: the nearest where the signs agree
    return out
