"""Deployments: where and when each camera stood, typed in or read from a field sheet (CSV).

The CSV columns follow Camtrap DP's deployments table (deploymentID, locationID, latitude, ...),
so the sheet a field team already keeps for GBIF works as it is.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pardus.store.db import Store
from pardus.store.models import Base, Camera, Deployment, Location

Row = TypeVar("Row", bound=Base)
CREATE_ATTEMPTS = 5


class DeploymentError(ValueError):
    """A deployment that cannot be recorded as given; the message names the field to fix."""


@dataclass
class DeploymentSpec:
    id: str
    location_id: str | None = None
    location_name: str | None = None
    plot: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    x_m: float | None = None
    y_m: float | None = None
    camera_id: str | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    utc_offset_minutes: int | None = None
    camera_heading: int | None = None
    sensitive: bool = False
    extra: dict[str, str] | None = None


def parse_utc_offset(text: str) -> int:
    """'+10:00' -> 600 minutes; zones run from -12:00 to +14:00, minutes up to 59."""
    t = text.strip()
    m = re.fullmatch(r"([+-]?)(\d{1,2})(?::(\d{2}))?", t) or re.fullmatch(r"([+-]?)(\d{2})(\d{2})", t)
    if m is None:
        raise DeploymentError(f"cannot read the UTC offset {text[:40]!r}: write it like +10:00")
    minutes = int(m.group(2)) * 60 + int(m.group(3) or 0)
    minutes = -minutes if m.group(1) == "-" else minutes
    if int(m.group(3) or 0) > 59 or not -12 * 60 <= minutes <= 14 * 60:
        raise DeploymentError(f"the UTC offset {text!r} is no time zone: they run from -12:00 to +14:00")
    return minutes


def parse_instant(text: str | None, default_offset_minutes: int, field: str) -> datetime | None:
    if text is None or not text.strip():
        return None
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise DeploymentError(
            f"{field}: cannot read {text!r}; write it like 2024-05-01T10:00:00+10:00"
        ) from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone(timedelta(minutes=default_offset_minutes)))
    try:
        dt.astimezone(UTC)  # the store keeps UTC: 9999-12-31T23:00-10:00 has no UTC instant
    except OverflowError as exc:
        raise DeploymentError(f"{field}: {text!r} lies outside the calendar; check the year") from exc
    return dt


MAX_ID = 64  # the store's deployment.id, location.id and camera.id


def check_id(value: str, what: str = "deployment id") -> str:
    """``value`` if it fits the store as an id: 1-64 characters, no control characters."""
    if not value or not value.strip() or len(value) > MAX_ID or any(ord(c) < 32 or ord(c) == 127 for c in value):
        shown = value[:70] + ("..." if len(value) > 70 else "")
        raise DeploymentError(f"the {what} {shown!r} must be 1-{MAX_ID} characters without control characters")
    return value


def create_once(db: Store, model: type[Row], key: str, make: Callable[[], Row]) -> bool:
    """Make sure the row of ``model`` with primary key ``key`` exists; True if this call made it.

    Two writers that both find the row missing (two imports of one card into a new deployment,
    a camera's first uploads arriving together) both try to insert it; the primary key lets one
    win, and the loser, refused with IntegrityError, finds the winner's row on its next look.
    The row is committed in its own short transaction, so the winner's row is visible to all at
    once and the loser's own larger transaction (a batch of photos) is never poisoned by the
    conflict. Deterministic on SQLite and PostgreSQL alike: exactly one caller gets True.
    """
    for _ in range(CREATE_ATTEMPTS):
        try:
            with db.session() as s:
                if s.get(model, key) is not None:
                    return False
                s.add(make())
            return True
        except IntegrityError:
            continue  # someone else inserted it between our look and our insert: look again
    raise DeploymentError(f"{model.__tablename__} {key!r} could not be created (the database kept refusing it)")


def open_live_deployment(db: Store, camera_id: str, now: datetime) -> str:
    """The id of the camera's open deployment (the newest without an end), opened when it has none.

    A camera that reports before anyone entered its deployment must not lose photos: it gets
    ``<camera>-live-<date>`` in the park's zone, to be linked to a location later. Uploads that
    race to open it all end up in the same one (see ``create_once``).
    """
    with db.session() as s:
        dep_id = _open_deployment_id(s, camera_id)
    if dep_id is not None:
        return dep_id
    dep_id = f"{camera_id}-live-{now:%Y%m%d}"
    create_once(db, Deployment, dep_id, lambda: Deployment(
        id=dep_id, camera_id=camera_id, start=now, comments="opened by the first live upload"))
    with db.session() as s:
        # Two uploads either side of midnight may each have opened a day's deployment: both then
        # use the newest, the one the next upload will find too.
        return _open_deployment_id(s, camera_id) or dep_id


def _open_deployment_id(s: Session, camera_id: str) -> str | None:
    return s.scalars(
        select(Deployment.id)
        .where(Deployment.camera_id == camera_id, Deployment.end.is_(None))
        .order_by(Deployment.start.desc().nulls_last(), Deployment.id.desc())
    ).first()


def upsert_deployment(s: Session, spec: DeploymentSpec) -> Deployment:
    """Create or update a deployment with its location and camera (idempotent)."""
    if not spec.id or not spec.id.strip():
        raise DeploymentError("a deployment needs an id (deploymentID)")
    check_id(spec.id)
    for what, value in (("location id", spec.location_id), ("camera id", spec.camera_id)):
        if value is not None:
            check_id(value, what)
    for what, value, limit in (("plot", spec.plot, 128), ("locationName", spec.location_name, 255),
                               ("cameraMake", spec.camera_make, 128), ("cameraModel", spec.camera_model, 128)):
        if value is not None and len(value) > limit:
            raise DeploymentError(f"deployment {spec.id}: {what} is {len(value)} characters; at most {limit} are kept")
    for name, value, lo, hi in (
        ("latitude", spec.latitude, -90, 90),
        ("longitude", spec.longitude, -180, 180),
    ):
        if value is not None and not lo <= value <= hi:
            raise DeploymentError(f"deployment {spec.id}: {name} {value} is outside {lo}..{hi}")
    if spec.start and spec.end and spec.end < spec.start:
        raise DeploymentError(f"deployment {spec.id}: it ends ({spec.end}) before it starts ({spec.start})")
    loc_id = spec.location_id or (spec.id if spec.latitude is not None else None)
    if loc_id:
        loc = s.get(Location, loc_id) or Location(id=loc_id)
        s.add(loc)
        for attr in ("plot", "latitude", "longitude", "x_m", "y_m"):
            value = getattr(spec, attr)
            if value is not None:
                setattr(loc, attr, value)
        if spec.location_name:
            loc.name = spec.location_name
        loc.sensitive = spec.sensitive or bool(loc.sensitive)
    if spec.camera_id:
        cam = s.get(Camera, spec.camera_id) or Camera(id=spec.camera_id, serial=spec.camera_id)
        cam.make = spec.camera_make or cam.make
        cam.model = spec.camera_model or cam.model
        s.add(cam)
    dep = s.get(Deployment, spec.id) or Deployment(id=spec.id)
    s.add(dep)
    dep.location_id = loc_id or dep.location_id
    dep.camera_id = spec.camera_id or dep.camera_id
    dep.start = spec.start or dep.start
    dep.end = spec.end or dep.end
    if spec.utc_offset_minutes is not None:
        dep.utc_offset_minutes = spec.utc_offset_minutes
    elif spec.start is not None and spec.start.utcoffset() is not None:
        dep.utc_offset_minutes = int(spec.start.utcoffset().total_seconds() // 60)  # type: ignore[union-attr]
    if spec.camera_heading is not None:
        dep.camera_heading = spec.camera_heading
    if spec.extra:
        dep.extra = {**(dep.extra or {}), **spec.extra}
    s.flush()
    return dep


_REST = "\x00rest"  # DictReader's key for cells beyond the header (a name no header can have)
_KNOWN = {
    "deploymentID",
    "locationID",
    "locationName",
    "plot",
    "latitude",
    "longitude",
    "x_m",
    "y_m",
    "cameraID",
    "cameraMake",
    "cameraModel",
    "deploymentStart",
    "deploymentEnd",
    "cameraHeading",
    "sensitive",
    "utcOffset",
}


def _float(row: dict[str, str], key: str) -> float | None:
    v = (row.get(key) or "").strip()
    try:
        f = float(v) if v else None
    except ValueError:
        f = math.nan
    if f is not None and not math.isfinite(f):
        raise DeploymentError(f"{key}: {v[:40]!r} is not a number (row {str(row.get('deploymentID'))[:64]})")
    return f


def read_sheet(path: Path, encoding: str | None = None) -> list[dict[str, str]]:
    """The rows of a field sheet, each cell text ('' when the row is short); DeploymentError if unreadable.

    UTF-8 (with or without the BOM Excel writes) unless ``encoding`` says otherwise: field sheets
    saved by Excel in Russia are often cp1251, and guessing an encoding from the bytes can read
    Cyrillic names as other letters without any error, so Pardus asks instead of guessing.
    """
    raw = path.read_bytes()
    try:
        text = raw.decode(encoding or "utf-8-sig")
    except LookupError as exc:
        raise DeploymentError(f"unknown encoding {encoding!r}; e.g. utf-8, cp1251, latin-1") from exc
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DeploymentError(
            f"{path.name} is not {encoding or 'UTF-8'} text (byte 0x{raw[exc.start]:02x} on line {line}). Save it "
            "as 'CSV UTF-8', or say its encoding: sheets from Excel in Russia are often cp1251 (--encoding cp1251)"
        ) from exc
    if "\x00" in text:
        raise DeploymentError(f"{path.name} holds NUL characters: it is not a CSV text file (a spreadsheet file?)")
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey=_REST)
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise DeploymentError(f"{path.name} line {reader.line_num}: {exc}") from exc
    for n, row in enumerate(rows, start=2):
        if _REST in row:
            raise DeploymentError(f"{path.name} line {n} has more cells than the header has columns")
    return [{k: v or "" for k, v in row.items()} for row in rows]


def load_deployments_csv(
    s: Session, path: Path, default_offset_minutes: int = 600, encoding: str | None = None
) -> list[str]:
    """Read a deployments sheet; returns the ids recorded. Unknown columns are kept in ``extra``.

    Any problem (encoding, a cell that is no number, a place off the Earth) is a DeploymentError
    naming the row; the caller's transaction then keeps none of the sheet.
    """
    rows = read_sheet(path, encoding)
    if rows and "deploymentID" not in rows[0]:
        raise DeploymentError(f"{path} has no deploymentID column; columns found: {', '.join(rows[0])[:500]}")
    ids = []
    for n, row in enumerate(rows, start=2):
        if not row["deploymentID"].strip():
            raise DeploymentError(f"{path.name} line {n} has no deploymentID")
        offset = parse_utc_offset(row["utcOffset"]) if row.get("utcOffset") else default_offset_minutes
        heading = _float(row, "cameraHeading")
        if heading is not None and not 0 <= heading <= 360:
            raise DeploymentError(f"cameraHeading {heading:g} is not a compass bearing 0-360 (line {n})")
        spec = DeploymentSpec(
            id=row["deploymentID"].strip(),
            location_id=(row.get("locationID") or "").strip() or None,
            location_name=row.get("locationName") or None,
            plot=row.get("plot") or None,
            latitude=_float(row, "latitude"),
            longitude=_float(row, "longitude"),
            x_m=_float(row, "x_m"),
            y_m=_float(row, "y_m"),
            camera_id=(row.get("cameraID") or "").strip() or None,
            camera_make=row.get("cameraMake") or None,
            camera_model=row.get("cameraModel") or None,
            start=parse_instant(row.get("deploymentStart"), offset, "deploymentStart"),
            end=parse_instant(row.get("deploymentEnd"), offset, "deploymentEnd"),
            utc_offset_minutes=offset if row.get("utcOffset") else None,
            camera_heading=int(heading) if heading is not None else None,
            sensitive=(row.get("sensitive") or "").strip().lower() in ("true", "1", "yes"),
            extra={k: v for k, v in row.items() if k not in _KNOWN and v not in (None, "")},
        )
        upsert_deployment(s, spec)
        ids.append(spec.id)
    return ids
