"""The audit log: who was given what the park protects, and who was refused.

Exact places of sensitive species (a leopard's den, a tiger's kill site) are what poachers want.
They leave the store rounded unless a person whose role allows it asks, proves who they are (a
password, not only a typed name), and is recorded here, refused attempts included, so a leak can
be traced to the export that carried it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pardus.store.models import AuditEvent, utcnow

EXACT_PLACES_EXPORT = "export-exact-places"


def record(s: Session, who: str, action: str, *, allowed: bool, **detail: Any) -> AuditEvent:
    """Add one event in the caller's transaction (so a refused export and its record go together)."""
    event = AuditEvent(at=utcnow(), who=who[:128], action=action[:64], allowed=allowed, detail=detail)
    s.add(event)
    return event


@dataclass(frozen=True)
class AuditLine:
    at: datetime
    who: str
    action: str
    allowed: bool
    detail: dict[str, Any]


def recent(s: Session, limit: int = 50) -> list[AuditLine]:
    """The newest events first."""
    rows = s.scalars(select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(max(1, limit)))
    return [AuditLine(r.at, r.who, r.action, r.allowed, dict(r.detail or {})) for r in rows]
