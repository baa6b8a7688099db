"""Write stored telemetry back as a Movebank CSV, so what came from Movebank can go back to it.

The standard columns come first under Movebank's own names, then every other column the imported
files carried (kept in ``TelemetryFix.extra`` under the header as written), so importing the export
gives the same records. ``timestamp`` is UTC in Movebank's ``yyyy-MM-dd HH:mm:ss.SSS``. With
``flags=True`` one more column, ``pardus:outlier``, says which records Pardus flagged and why; an
import ignores it (flags are always recomputed).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from pardus.store.models import Individual, TelemetryFix, TelemetryTag

STANDARD = ("event-id", "visible", "timestamp", "location-long", "location-lat", "manually-marked-outlier",
            "gps:dop", "sensor-type", "individual-taxon-canonical-name", "tag-local-identifier",
            "individual-local-identifier", "study-name")


def movebank_time(ts: datetime) -> str:
    """Movebank's timestamp text (UTC, milliseconds; microseconds only when the value has them)."""
    base = ts.strftime("%Y-%m-%d %H:%M:%S")
    us = ts.microsecond
    return f"{base}.{us // 1000:03d}" if us % 1000 == 0 else f"{base}.{us:06d}"


def _num(v: float | None) -> str:
    return "" if v is None else repr(float(v))


def export_rows(s: Session, *, tag_id: str | None = None, individual_code: str | None = None,
                flags: bool = False) -> Iterator[list[str]]:
    """The header, then one row per stored record (by tag, then time)."""
    q = select(TelemetryFix).order_by(TelemetryFix.tag_id, TelemetryFix.sensor_type, TelemetryFix.timestamp)
    if tag_id is not None:
        q = q.where(TelemetryFix.tag_id == tag_id)
    if individual_code is not None:
        ind = s.scalars(select(Individual).where(Individual.code == individual_code)).first()
        q = q.where(TelemetryFix.individual_id == (ind.id if ind else "\x00none"))
    fixes = list(s.scalars(q))
    tags = {t.tag_id: t for t in s.scalars(select(TelemetryTag).where(
        TelemetryTag.tag_id.in_({f.tag_id for f in fixes})))} if fixes else {}
    extra_cols: dict[str, None] = {}
    for f in fixes:
        for k in f.extra or {}:
            if k not in STANDARD:
                extra_cols.setdefault(k, None)
    has_dop = any(f.dop is not None for f in fixes)
    has_marked = any((f.extra or {}).get("manually-marked-outlier") for f in fixes)
    cols = [c for c in STANDARD if (c != "gps:dop" or has_dop) and (c != "manually-marked-outlier" or has_marked)]
    header = cols + list(extra_cols) + (["pardus:outlier"] if flags else [])
    yield header
    for f in fixes:
        tag = tags.get(f.tag_id)
        std = {
            "event-id": f.event_id or "",
            "visible": "true" if f.visible else "false",
            "timestamp": movebank_time(f.timestamp),
            "location-long": _num(f.longitude),
            "location-lat": _num(f.latitude),
            "manually-marked-outlier": str((f.extra or {}).get("manually-marked-outlier", "")),
            "gps:dop": _num(f.dop),
            "sensor-type": f.sensor_type,
            "individual-taxon-canonical-name": (tag.taxon if tag else None) or "",
            "tag-local-identifier": f.tag_id,
            "individual-local-identifier": f.animal or "",
            "study-name": (tag.study if tag else None) or "",
        }
        row = [std[c] for c in cols] + [str((f.extra or {}).get(k, "")) for k in extra_cols]
        if flags:
            row.append(f.outlier or "")
        yield row


def export_csv(s: Session, **kw: object) -> str:
    """The whole export as text (CRLF line ends, as Movebank writes them)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    for row in export_rows(s, **kw):  # type: ignore[arg-type]
        w.writerow(row)
    return buf.getvalue()
