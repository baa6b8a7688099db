"""An alert's life: new -> acknowledged (by whom, when) -> resolved (outcome), every step in its audit trail.

One alert per camera and kind within the rules' window: a second sighting at the same camera
(the next photo of the burst, the poacher walking back) is attached to the open alert as an
``AlertEvent`` instead of waking the ranger again. Raising is idempotent per photo and kind, so a
photo processed again after a crash never makes a second alert or sighting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pardus.store.models import Alert, AlertEvent, Camera, Deployment, Location, utcnow

STATUSES = ("new", "acknowledged", "resolved")


class AlertError(ValueError):
    """An alert command cannot be done; the message says why and what to do."""


@dataclass
class Raised:
    alert: Alert
    created: bool  # False: attached to an open alert as a sighting (or already recorded)


def _already(s: Session, kind: str, camera_id: str | None, media_id: str) -> Alert | None:
    """The alert this photo already raised or joined for this kind, if any (a re-run after a crash)."""
    a = s.scalars(select(Alert).where(Alert.kind == kind, Alert.media_id == media_id)).first()
    if a is not None:
        return a
    ev = s.execute(
        select(Alert).join(AlertEvent, AlertEvent.alert_id == Alert.id).where(
            Alert.kind == kind, Alert.camera_id == camera_id, AlertEvent.action == "sighting",
            AlertEvent.details["media_id"].as_string() == media_id)
    ).scalars().first()
    return ev


def raise_alert(
    s: Session,
    *,
    kind: str,
    rule: str,
    severity: str,
    camera_id: str | None,
    deployment_id: str | None,
    media_id: str | None,
    evidence: dict[str, Any],
    window: timedelta,
    now: datetime | None = None,
) -> Raised:
    """Create the alert, or attach the sighting to the camera's open alert of this kind in the window."""
    now = now or utcnow()
    if media_id is not None:
        done = _already(s, kind, camera_id, media_id)
        if done is not None:
            return Raised(done, False)
    open_alert = s.scalars(
        select(Alert).where(Alert.kind == kind, Alert.camera_id == camera_id, Alert.status != "resolved",
                            Alert.updated >= now - window).order_by(Alert.updated.desc())
    ).first()
    if open_alert is not None:
        open_alert.updated = now
        count = int((open_alert.details or {}).get("sightings", 1)) + 1
        open_alert.details = {**(open_alert.details or {}), "sightings": count}
        s.add(AlertEvent(alert_id=open_alert.id, action="sighting", at=now,
                         details={"media_id": media_id, "rule": rule, **evidence}))
        return Raised(open_alert, False)
    alert = Alert(kind=kind, status="new", camera_id=camera_id, deployment_id=deployment_id, media_id=media_id,
                  created=now, updated=now,
                  details={"rule": rule, "severity": severity, "evidence": evidence, "sightings": 1,
                           "deliveries": {}})
    s.add(alert)
    s.flush()
    s.add(AlertEvent(alert_id=alert.id, action="created", at=now, details={"media_id": media_id, "rule": rule}))
    return Raised(alert, True)


MAX_NOTE = 4000
OUTCOMES = ("poachers detained", "people: authorised (patrol, researchers, staff)", "vehicle: authorised",
            "fire confirmed, reported", "false alarm", "camera checked", "other")


def get_alert(s: Session, alert_id: str) -> Alert:
    """An alert by its id or a unique prefix of it (what `pardus alerts list` prints)."""
    if not alert_id or len(alert_id) > 64 or not alert_id.isalnum():
        raise AlertError(f"{alert_id[:70]!r} is not an alert id; `pardus alerts list` shows the ids")
    alert = s.get(Alert, alert_id)
    if alert is None:
        matches = list(s.scalars(select(Alert).where(Alert.id.startswith(alert_id, autoescape=True)).limit(2)))
        if len(matches) == 1:
            return matches[0]
        raise AlertError(f"no alert {alert_id!r}" + (" (the prefix is ambiguous)" if matches else "")
                         + "; `pardus alerts list` shows the ids")
    return alert


def _note(note: str | None) -> str | None:
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise AlertError(f"the note is {len(note)} characters long; keep it under {MAX_NOTE}")
    return note or None


def acknowledge(s: Session, alert_id: str, by: str, note: str | None = None) -> Alert:
    """A ranger has seen it and is on it; acknowledging twice keeps the first who and when."""
    note = _note(note)
    alert = get_alert(s, alert_id)
    if alert.status == "resolved":
        raise AlertError(f"alert {alert.id[:8]} is already resolved ({alert.outcome}); nothing to acknowledge")
    now = utcnow()
    if alert.status == "new":
        alert.status, alert.acknowledged, alert.acknowledged_by = "acknowledged", now, by
    alert.updated = now
    s.add(AlertEvent(alert_id=alert.id, action="acknowledged", at=now, by=by, details={"note": note} if note else {}))
    return alert


def resolve(s: Session, alert_id: str, by: str, outcome: str, note: str | None = None) -> Alert:
    """Close it with what happened (e.g. 'poacher detained', 'false alarm: ranger patrol') and, if the
    ranger has more to say, a note; both stay in the alert's history."""
    outcome = outcome.strip()
    if not outcome:
        raise AlertError("say what happened: give an outcome, e.g. --outcome 'false alarm: our patrol'")
    if len(outcome) > 500:
        raise AlertError(f"the outcome is {len(outcome)} characters long; keep it under 500 and put the rest "
                         "in the note")
    note = _note(note)
    alert = get_alert(s, alert_id)
    if alert.status == "resolved":
        raise AlertError(f"alert {alert.id[:8]} was already resolved by {alert.resolved_by}: {alert.outcome}")
    now = utcnow()
    if alert.acknowledged is None:
        alert.acknowledged, alert.acknowledged_by = now, by
    alert.status, alert.resolved, alert.resolved_by, alert.outcome, alert.updated = "resolved", now, by, outcome, now
    s.add(AlertEvent(alert_id=alert.id, action="resolved", at=now, by=by,
                     details={"outcome": outcome, **({"note": note} if note else {})}))
    return alert


def list_alerts(s: Session, status: str | None = None, limit: int = 100, *, kind: str | None = None,
                camera_id: str | None = None, offset: int = 0) -> list[Alert]:
    """Alerts newest first; ``status`` is new, acknowledged, resolved or open (not resolved)."""
    if status is not None and status not in STATUSES and status != "open":
        raise AlertError(f"status must be one of {', '.join(STATUSES)} or open, not {status!r}")
    if not 1 <= limit <= 1000 or offset < 0:
        raise AlertError(f"limit must be 1-1000 and offset not negative (got limit {limit}, offset {offset})")
    q = select(Alert).order_by(Alert.created.desc(), Alert.id).limit(limit).offset(offset)
    if status == "open":
        q = q.where(Alert.status != "resolved")
    elif status:
        q = q.where(Alert.status == status)
    if kind:
        q = q.where(Alert.kind == kind)
    if camera_id:
        q = q.where(Alert.camera_id == camera_id)
    return list(s.scalars(q))


def alert_kinds(s: Session) -> list[str]:
    return sorted(k for (k,) in s.execute(select(Alert.kind).distinct()))


def history(s: Session, alert_id: str) -> list[AlertEvent]:
    return list(s.scalars(select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id)))


def alert_payload(s: Session, alert: Alert, *, exact_location: bool = True) -> dict[str, Any]:
    """What a channel sends. Animal alerts at a sensitive location carry no coordinates unless the
    channel is trusted with exact locations (an endangered leopard's spot must not reach a chat)."""
    return alert_payloads(s, [alert], exact_location=exact_location)[0]


def alert_payloads(s: Session, alerts: list[Alert], *, exact_location: bool = True) -> list[dict[str, Any]]:
    """:func:`alert_payload` for many alerts with three queries in all (cameras, deployments, places),
    not three per alert: the inbox lists hundreds."""
    def by_id(model: Any, ids: set[str]) -> dict[str, Any]:
        return {r.id: r for r in s.scalars(select(model).where(model.id.in_(ids)))} if ids else {}

    cams = by_id(Camera, {a.camera_id for a in alerts if a.camera_id})
    deps = by_id(Deployment, {a.deployment_id for a in alerts if a.deployment_id})
    locs = by_id(Location, {d.location_id for d in deps.values() if d.location_id})
    out = []
    for alert in alerts:
        dep = deps.get(alert.deployment_id or "")
        out.append(_payload(alert, cams.get(alert.camera_id or ""), locs.get(dep.location_id or "") if dep else None,
                            exact_location))
    return out


# Alert kinds about where an animal of a watched species is: a collared leopard's conflict alert
# carries its track, which is as sensitive as the camera where an endangered cat was photographed.
ANIMAL_KINDS = ("species", "new-individual", "conflict")
ROUNDED_DEGREES = 1  # decimals kept for people and channels without exact places (about 10 km), as the map does
ROUNDED_METRES = 1000  # distances that, with a named village or camera, would give the place back


def redact_positions(value: Any) -> Any:
    """A copy of alert evidence with every latitude/longitude rounded to 0.1 degree and every distance
    to the kilometre: a collar's fixes and their distances to a village would otherwise place the
    animal exactly for whoever reads a chat channel or a viewer's page."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in ("latitude", "longitude") and isinstance(v, int | float):
                out[k] = round(float(v), ROUNDED_DEGREES)
            elif k.endswith("_m") and isinstance(v, int | float):
                out[k] = int(round(float(v) / ROUNDED_METRES) * ROUNDED_METRES)
            else:
                out[k] = redact_positions(v)
        return out
    if isinstance(value, list):
        return [redact_positions(v) for v in value]
    return value


def _payload(alert: Alert, cam: Camera | None, loc: Location | None, exact_location: bool) -> dict[str, Any]:
    details = dict(alert.details or {})
    evidence = details.get("evidence", {})
    if alert.kind == "conflict" and not exact_location:
        evidence = redact_positions(evidence)  # a collar is always on an animal the park protects
    location = None
    if loc is not None and loc.latitude is not None and loc.longitude is not None:
        animal = alert.kind in ANIMAL_KINDS
        if exact_location or not (animal and loc.sensitive):
            location = {"latitude": loc.latitude, "longitude": loc.longitude, "location_id": loc.id,
                        "name": loc.name}
        else:
            location = {"location_id": None, "withheld": "sensitive location of an endangered animal"}
    return {
        "id": alert.id,
        "kind": alert.kind,
        "status": alert.status,
        "severity": details.get("severity"),
        "rule": details.get("rule"),
        "camera_id": alert.camera_id,
        "deployment_id": alert.deployment_id,
        "media_id": alert.media_id,
        "created": alert.created.isoformat(),
        "updated": alert.updated.isoformat(),
        "sightings": details.get("sightings", 1),
        "evidence": evidence,
        "location": location,
        "camera_health": dict(cam.health or {}) if cam is not None else {},
        "acknowledged_by": alert.acknowledged_by,
        "resolved_by": alert.resolved_by,
        "outcome": alert.outcome,
    }
