"""A collared animal leaving the park toward a village: the human-wildlife conflict alert.

A leopard that walks out of the park and keeps coming closer to a village is the moment rangers
want to know about: before a dog or a calf is taken and before a frightened villager sets a snare.
The rule is data (``kind: conflict`` in the alert rules)::

    villages: {Barabash: [131.50, 43.19], Kedrovaya Pad: [131.55, 43.10]}
    zones:    {park: [[131.1, 42.8], [131.6, 42.8], [131.6, 43.3], [131.1, 43.3]]}   # optional
    rules:
      - {name: leopard-to-village, kind: conflict, species: [Panthera pardus], near: [Barabash],
         zones: [park], within_m: 3000}

The park is the rule's ``zones`` (the boundary the park provides) or, without them, the convex hull
of the camera locations (``pardus.telemetry.fire.park_outline``; what the cameras themselves say).

On each tag's good fixes in time order (outliers left out), an *excursion* starts at the first fix
outside the park after a fix inside it (the exit) and ends at the next fix inside. An excursion
raises one alert, at its first fix that is within ``within_m`` of a village (``near``, else any) and
closer to that village than the exit fix was: the animal is heading toward the village, not just
walking along the boundary near one. A track never seen inside the park is not "leaving" it and
raises nothing (a dispersing animal from outside is another question). Fixes older than
``alert_max_age`` are placed but wake nobody (an archive of last year's collar data).

The alert goes through the alert lifecycle at the camera nearest the fix (so the ranger who looks
after that part of the park gets it), kind "conflict", with the fixes from the exit to that fix as
evidence; it is keyed by (tag, exit time), so importing the same fixes again or a later file with
more of the same excursion raises nothing twice.
"""

from __future__ import annotations

import hashlib
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
from pardus.store.models import Alert, AlertEvent, Individual, TelemetryTag, utcnow
from pardus.telemetry.fire import Park, park_outline
from pardus.telemetry.fixes import Track, tracks
from pardus.telemetry.movement import haversine_m, inside_outline

DEFAULT_ALERT_MAX_AGE = timedelta(hours=48)
MAX_EVIDENCE_FIXES = 48


@dataclass
class ConflictReport:
    created: list[str] = field(default_factory=list)
    joined: int = 0  # approaches attached to an open conflict alert at the same camera
    already: int = 0  # approaches alerted before (the same fixes imported again)
    too_old: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Approach:
    """An excursion's fix that came within reach of a village, heading toward it."""

    tag_id: str
    village: str
    exit_index: int
    index: int
    distance_m: float
    exit_distance_m: float


def _species_ok(rule: Rule, names: Sequence[str | None]) -> bool:
    if not rule.species:
        return True
    return any(n and (n == want or n.startswith(want + " ")) for n in names for want in rule.species)


def inside_park(lons: np.ndarray, lats: np.ndarray, *, zones: Sequence[Sequence[tuple[float, float]]] = (),
                park: Park | None = None) -> np.ndarray:
    """Which positions lie in the park: inside any of ``zones`` (lon, lat corners), else inside the
    hull of the camera locations (``park``)."""
    pts = np.column_stack([lons, lats])
    if zones:
        inside = np.zeros(len(pts), dtype=bool)
        for poly in zones:
            inside |= inside_outline(np.asarray(poly, dtype=float), pts)
        return inside
    if park is None or len(park.hull) < 3:
        raise ValueError("the park has no outline: give it a boundary under 'zones:' or place 3 or more cameras")
    return inside_outline(park.hull, park.plane.xy(lons, lats))


def approaches(track: Track, inside: np.ndarray, villages: dict[str, tuple[float, float]],
               within_m: float) -> list[Approach]:
    """The first approach of every excursion of one track (see the module's description)."""
    lons, lats = np.asarray(track.lons, dtype=float), np.asarray(track.lats, dtype=float)
    dist = {v: haversine_m(lons, lats, np.full(len(lons), lon), np.full(len(lons), lat))
            for v, (lon, lat) in villages.items()}
    out: list[Approach] = []
    exit_at: int | None = None  # the last fix inside before the current excursion
    done = False  # this excursion has raised already
    for i in range(len(lons)):
        if inside[i]:
            exit_at, done = i, False
            continue
        if exit_at is None or done:
            continue
        near = [(float(d[i]), v) for v, d in dist.items() if d[i] <= within_m and d[i] < d[exit_at]]
        if near:
            d_i, v = min(near)
            out.append(Approach(track.tag_id, v, exit_at, i, d_i, float(dist[v][exit_at])))
            done = True
    return out


def _key(tag_id: str, exit_time: datetime) -> str:
    key = f"collar:{tag_id}:{exit_time:%Y%m%dT%H%M%S}"
    if len(key) > 64:
        key = "collar:" + hashlib.sha256(key.encode()).hexdigest()[:40] + f":{exit_time:%Y%m%dT%H%M%S}"
    return key


def _alerted(s: Session, key: str) -> bool:
    """Whether this excursion raised or joined a conflict alert already (at any camera)."""
    if s.scalar(select(Alert.id).where(Alert.kind == "conflict", Alert.media_id == key).limit(1)) is not None:
        return True
    return s.scalar(select(AlertEvent.id).join(Alert, Alert.id == AlertEvent.alert_id).where(
        Alert.kind == "conflict", AlertEvent.action == "sighting",
        AlertEvent.details["media_id"].as_string() == key).limit(1)) is not None


def _fix(track: Track, i: int, village: tuple[float, float]) -> dict[str, Any]:
    d = haversine_m(np.array([track.lons[i]]), np.array([track.lats[i]]), np.array([village[0]]),
                    np.array([village[1]]))[0]
    return {"time": track.times[i].isoformat(), "latitude": track.lats[i], "longitude": track.lons[i],
            "to_village_m": round(float(d))}


def conflict_alerts(s: Session, tag_ids: Sequence[str], rules: RuleSet, *, channels: Sequence[Channel] = (),
                    now: datetime | None = None,
                    alert_max_age: timedelta = DEFAULT_ALERT_MAX_AGE) -> ConflictReport:
    """Apply the ``conflict`` rules to these tags' tracks (in the caller's transaction)."""
    rep = ConflictReport()
    rules_here = rules.for_kind("conflict")
    if not rules_here or not tag_ids:
        return rep
    now = now or utcnow()
    window = timedelta(minutes=rules.window_minutes)
    park = park_outline(s)
    tags = {t.tag_id: t for t in s.scalars(select(TelemetryTag).where(TelemetryTag.tag_id.in_(list(tag_ids))))}
    inds = {i.id: i for i in s.scalars(select(Individual).where(
        Individual.id.in_([t.individual_id for t in tags.values() if t.individual_id])))}
    for rule in rules_here:
        zones = [rules.zones[z] for z in rule.zones]
        villages = {v: rules.villages[v] for v in (rule.near or tuple(rules.villages))}
        if not zones and (park is None or len(park.hull) < 3):
            rep.notes.append(f"rule {rule.name}: the park has no outline (fewer than 3 placed cameras and no "
                             "'zones:'), so no track can be seen leaving it")
            continue
        for tag_id in sorted(set(tag_ids)):
            tag = tags.get(tag_id)
            ind = inds.get(tag.individual_id or "") if tag else None
            if not _species_ok(rule, [tag.taxon if tag else None, ind.scientific_name if ind else None]):
                continue
            for tr in tracks(s, tag_id=tag_id):
                if len(tr.times) < 2:
                    continue
                inside = inside_park(np.asarray(tr.lons), np.asarray(tr.lats), zones=zones, park=park)
                for ap in approaches(tr, inside, villages, rule.within_m):
                    when = tr.times[ap.index]
                    if when < now - alert_max_age:
                        rep.too_old += 1
                        continue
                    _raise(s, rep, rule, tr, ap, villages[ap.village], park, ind, tag, window, now, channels)
    return rep


def _raise(s: Session, rep: ConflictReport, rule: Rule, tr: Track, ap: Approach, village: tuple[float, float],
           park: Park | None, ind: Individual | None, tag: TelemetryTag | None, window: timedelta, now: datetime,
           channels: Sequence[Channel]) -> None:
    lon, lat = tr.lons[ap.index], tr.lats[ap.index]
    near = park.nearest(lon, lat) if park is not None else []
    st = near[0][0] if near else None
    first = max(ap.exit_index, ap.index - MAX_EVIDENCE_FIXES + 1)
    outside_m = None
    if park is not None and len(park.hull) >= 3:
        outside_m = round(float(park.distance_m(np.array([lon]), np.array([lat]))[0]))
    evidence = {
        "source": "collar", "tag": tr.tag_id, "individual": ind.code if ind else None,
        "animal": tag.animal if tag else None,
        "species": (ind.scientific_name if ind else None) or (tag.taxon if tag else None),
        "village": ap.village, "distance_to_village_m": round(ap.distance_m),
        "exit_distance_to_village_m": round(ap.exit_distance_m),
        "time": tr.times[ap.index].isoformat(), "latitude": lat, "longitude": lon,
        "outside_camera_hull_m": outside_m, "park": "zones: " + ", ".join(rule.zones) if rule.zones else
        "hull of the camera locations",
        "fixes": [_fix(tr, i, village) for i in range(first, ap.index + 1)],
        "fixes_left_out": first - ap.exit_index,
        "nearest_cameras": [{"location_id": c.location_id, "camera_id": c.camera_id, "distance_m": round(d)}
                            for c, d in near],
    }
    key = _key(tr.tag_id, tr.times[ap.exit_index])
    if _alerted(s, key):
        rep.already += 1
        return
    raised = raise_alert(s, kind="conflict", rule=rule.name, severity=rule.severity,
                         camera_id=st.camera_id if st else None, deployment_id=st.deployment_id if st else None,
                         media_id=key, evidence=evidence, window=window,
                         now=now)
    if raised.created:
        schedule(raised.alert, [c for c in channels if c.wants("conflict")])
        rep.created.append(raised.alert.id)
    else:
        rep.joined += 1
