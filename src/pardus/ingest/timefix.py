"""Time you can trust: flag absurd camera times, group bursts, and correct clocks without loss.

A photo's true instant is derived, never stored over the original: ``camera_time`` (what the
camera wrote) + the deployment's ``clock_offset_s`` - its ``utc_offset_minutes`` gives
``timestamp`` in UTC. A correction changes the offset and recomputes; the original stays.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from pardus.store.models import ClockCorrection, Deployment, Media

GRACE = timedelta(minutes=15)
OUT_OF_ORDER_TOLERANCE = timedelta(minutes=2)
FUTURE_TOLERANCE = timedelta(days=1)
RESET_YEAR = 2000
# A clock reset to 1970 on a camera set out today is some 55 years wrong; no real clock error is
# larger than a century, and anything larger is a typo (or an attempt to overflow the dates).
MAX_CLOCK_OFFSET_S = 100 * 365.25 * 86400

ISSUE_TEXT = {
    "no-time": "no time in the file; the file's own date was used",
    "clock-reset": "camera clock reset (year 2000 or earlier)",
    "in-future": "time lies in the future",
    "before-deployment": "time before the deployment started",
    "after-deployment": "time after the deployment ended",
    "out-of-order": "earlier than a photo taken before it on the card",
}


# Media.timestamp_issues flags that make a photo's time unusable for dating a record: a reset or
# impossible clock would invent sightings in other years (first seen 2000-01-13). One definition
# for every reader that dates records (report, exports, the catalogue's first and last sightings).
UNTRUSTED_TIME = frozenset({"clock-reset", "in-future", "before-deployment", "after-deployment", "no-time"})


def time_is_trusted(issues: str | None) -> bool:
    """Whether a photo with these comma-separated ``timestamp_issues`` flags may date a record."""
    return not (issues and UNTRUSTED_TIME & set(issues.split(",")))


def untrusted_time_clause(column: Any) -> Any:
    """SQL condition true where a ``timestamp_issues`` column holds an untrusting flag (NULL: false)."""
    return and_(column.is_not(None), or_(*(column.contains(flag) for flag in sorted(UNTRUSTED_TIME))))


class TimeFixError(ValueError):
    """A clock correction that cannot be applied; the message says what to give instead."""


def to_utc(camera_time: datetime, utc_offset_minutes: int, clock_offset_s: float) -> datetime | None:
    """True UTC instant of a camera-local time, given the camera's zone and clock error.

    None when that instant falls outside the calendar (a file claiming the year 9999 or 1):
    such a photo keeps its camera time and is flagged, rather than stopping a card or an upload.
    """
    try:
        local = camera_time + timedelta(seconds=clock_offset_s)
        return (local - timedelta(minutes=utc_offset_minutes)).replace(tzinfo=UTC)
    except OverflowError:
        return None


def check_offset(offset_s: float, text: str | None = None) -> float:
    """``offset_s`` if it is a clock error a camera can have; otherwise a TimeFixError saying why."""
    shown = repr(text) if text is not None else f"{offset_s} s"
    if not math.isfinite(offset_s):
        raise TimeFixError(f"the offset {shown} is not a number of seconds; write it like +3h or -90")
    if abs(offset_s) > MAX_CLOCK_OFFSET_S:
        raise TimeFixError(
            f"the offset {shown} is more than 100 years; no camera clock is that far off, check the value"
        )
    return offset_s


def _natural(path: str) -> list[object]:
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", path)]


def flag_times(dep: Deployment, media: list[Media], now: datetime | None = None) -> dict[str, list[str]]:
    """Timestamp issues per media id. ``media`` may be in any order; card order is by file path."""
    now = now or datetime.now(UTC)
    flags: dict[str, list[str]] = {m.id: [] for m in media}
    latest: datetime | None = None
    for m in sorted(media, key=lambda m: _natural(m.file_path)):
        f = flags[m.id]
        if m.timestamp_source in ("file-time", "none"):
            f.append("no-time")
            continue
        if m.camera_time is None:
            continue
        if m.timestamp is None:
            # Its instant is outside the calendar (see to_utc): a clock reset or a future year.
            f.append("clock-reset" if m.camera_time.year <= RESET_YEAR else "in-future")
            continue
        if m.camera_time.year <= RESET_YEAR:
            f.append("clock-reset")
        if m.timestamp > now + FUTURE_TOLERANCE:
            f.append("in-future")
        if dep.start and m.timestamp < dep.start - GRACE:
            f.append("before-deployment")
        if dep.end and m.timestamp > dep.end + GRACE:
            f.append("after-deployment")
        if latest is not None and m.camera_time < latest - OUT_OF_ORDER_TOLERANCE:
            f.append("out-of-order")
        latest = m.camera_time if latest is None else max(latest, m.camera_time)
    return flags


NO_CAMERA_TIME = ("file-time", "none")  # timestamp_source of a photo whose camera gave no time


def group_sequences(media: list[Media], gap_seconds: float, prefix: str) -> None:
    """Bursts: photos of one deployment closer than ``gap_seconds`` share a sequence id.

    A photo without a camera time (its time is the file's copy time, or nothing) is an event of
    its own: copy times are seconds apart for a whole card, and grouping by them made one "burst"
    of a season, whose smoothing gave six species one name. It stays alone, flagged ``no-time``,
    until a person gives its deployment or the photo a true time.
    """
    timed = sorted(
        (m for m in media if m.timestamp is not None and m.timestamp_source not in NO_CAMERA_TIME),
        key=lambda m: (m.timestamp, _natural(m.file_path)),
    )
    seq = 0
    index = 0
    prev: datetime | None = None
    for m in timed:
        assert m.timestamp is not None
        if prev is None or (m.timestamp - prev).total_seconds() > gap_seconds:
            seq += 1
            index = 0
        index += 1
        m.sequence_id = f"{prefix}:{seq:06d}"
        m.sequence_index = index
        prev = m.timestamp
    untimed = sorted((m for m in media if m.timestamp is not None and m.timestamp_source in NO_CAMERA_TIME),
                     key=lambda m: _natural(m.file_path))
    for n, m in enumerate(untimed, start=1):
        m.sequence_id = f"{prefix}:untimed-{n:06d}"
        m.sequence_index = 1
    for m in media:
        if m.timestamp is None:
            m.sequence_id = None
            m.sequence_index = None


def refresh_deployment_times(s: Session, deployment_id: str, gap_seconds: float) -> None:
    """Recompute every derived time fact of one deployment (after an import or a correction)."""
    dep = s.get(Deployment, deployment_id)
    if dep is None:
        return
    media = list(s.scalars(select(Media).where(Media.deployment_id == deployment_id)))
    for m in media:
        if m.camera_time is not None:
            m.timestamp = to_utc(m.camera_time, dep.utc_offset_minutes, dep.clock_offset_s)
    flags = flag_times(dep, media)
    any_issue = False
    for m in media:
        text = ",".join(flags[m.id]) or None
        any_issue = any_issue or text is not None
        if m.timestamp_issues != text:
            m.timestamp_issues = text
    dep.timestamp_issues = any_issue
    group_sequences(media, gap_seconds, deployment_id)
    s.flush()


_OFFSET_RE = re.compile(
    r"([+-]?)\s*(?:(\d+(?:\.\d+)?)d)?\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m(?!s))?"
    r"\s*(?:(\d+(?:\.\d+)?)s)?$"
)


def parse_offset(text: str) -> float:
    """Seconds from '+3h', '-1d2h30m', '+01:00:00', '-90' (seconds); raises a helpful error.

    Minutes and seconds past 59 in the clock form ('+25:99:99') are refused, not carried over:
    they are a typo more often than an intent. NaN, infinities and offsets beyond a century are
    refused too (see ``check_offset``).
    """
    t = text.strip().lower().replace(" ", "")
    unreadable = TimeFixError(
        f"cannot read the offset {text[:40]!r}: write it like +3h, -1d2h30m, +01:00:00 or -90 (seconds)"
    )
    if len(t) > 64:
        raise unreadable
    m = re.fullmatch(r"([+-]?)(\d+):(\d{2})(?::(\d{2}))?", t)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        minutes, seconds = int(m.group(3)), int(m.group(4) or 0)
        if minutes > 59 or seconds > 59:
            raise TimeFixError(
                f"the offset {text!r} has {max(minutes, seconds)} minutes or seconds; "
                "write hours:minutes:seconds with minutes and seconds up to 59, e.g. +25:30:00"
            )
        return check_offset(sign * (int(m.group(2)) * 3600 + minutes * 60 + seconds), text)
    if re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?", t):
        return check_offset(float(t), text)
    m = _OFFSET_RE.fullmatch(t)
    if not m or not any(m.groups()[1:]):
        raise unreadable
    sign = -1 if m.group(1) == "-" else 1
    d, h, mi, se = (float(g) if g else 0.0 for g in m.groups()[1:])
    return check_offset(sign * (d * 86400 + h * 3600 + mi * 60 + se), text)


@dataclass
class FixResult:
    deployment_id: str
    previous_offset_s: float
    offset_s: float
    media_changed: int


def parse_true_time(text: str, utc_offset_minutes: int) -> datetime:
    """A true time as the user types it; without a zone it is the deployment's local time."""
    try:
        dt = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError as exc:
        raise TimeFixError(f"cannot read the time {text!r}: write it like 2024-05-01T10:30:00") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone(timedelta(minutes=utc_offset_minutes)))
    return dt


def fix_time(
    s: Session,
    deployment_id: str,
    *,
    offset_s: float | None = None,
    reference: str | None = None,
    true_time: str | None = None,
    by: str | None = None,
    note: str | None = None,
    gap_seconds: float = 60.0,
) -> FixResult:
    """Set a deployment's clock offset directly, or from one photo whose true time is known."""
    dep = s.get(Deployment, deployment_id)
    if dep is None:
        raise TimeFixError(
            f"no deployment {deployment_id!r}; see `pardus status` for the deployments there are"
        )
    method = "offset"
    ref_media: Media | None = None
    ref_true: datetime | None = None
    if reference is not None and offset_s is not None:
        raise TimeFixError(
            "give either --offset or --reference with --true-time, not both: they would disagree"
        )
    if true_time is not None and reference is None:
        raise TimeFixError("--true-time needs --reference: the photo whose true time that is")
    if reference is not None:
        if true_time is None:
            raise TimeFixError(
                "give --true-time with --reference: the real time at which that photo was taken"
            )
        ref_media = s.scalars(
            select(Media).where(
                Media.deployment_id == deployment_id,
                (Media.id == reference) | (Media.file_name == reference) | (Media.file_path == reference),
            )
        ).first()
        if ref_media is None or ref_media.camera_time is None:
            raise TimeFixError(
                f"no photo {reference!r} with a camera time in deployment {deployment_id}; "
                "give its file name (e.g. IMG_0001.JPG), its path on the card or its media id"
            )
        ref_true = parse_true_time(true_time, dep.utc_offset_minutes)
        try:
            local_true = ref_true.astimezone(timezone(timedelta(minutes=dep.utc_offset_minutes))).replace(
                tzinfo=None
            )
        except OverflowError as exc:
            raise TimeFixError(f"the time {true_time!r} lies outside the calendar; check the year") from exc
        offset_s = (local_true - ref_media.camera_time).total_seconds()
        method = "reference-photo"
    if offset_s is None:
        raise TimeFixError("give either --offset (e.g. +3h) or --reference FILE with --true-time")
    check_offset(offset_s)
    before = {m.id: m.timestamp for m in s.scalars(select(Media).where(Media.deployment_id == deployment_id))}
    previous = dep.clock_offset_s
    s.add(
        ClockCorrection(
            deployment_id=deployment_id,
            previous_offset_s=previous,
            offset_s=offset_s,
            method=method,
            reference_media_id=ref_media.id if ref_media else None,
            reference_true_time=ref_true,
            created_by=by,
            note=note,
        )
    )
    dep.clock_offset_s = offset_s
    refresh_deployment_times(s, deployment_id, gap_seconds)
    after = {m.id: m.timestamp for m in s.scalars(select(Media).where(Media.deployment_id == deployment_id))}
    changed = sum(1 for k, v in after.items() if before.get(k) != v)
    return FixResult(deployment_id, previous, offset_s, changed)
