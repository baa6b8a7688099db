"""Telemetry records in the store: import (idempotent, all or nothing), outlier flags, tag links, tracks.

A record's identity is (tag, sensor type, time): importing the same file twice, or an overlapping
later export of the same study, adds only the records not yet stored, and the data owner's values
already stored are never overwritten. Failed fixes (no position) are stored as such, because fix
success rate is itself a fact about a collar and its habitat.

Nothing is deleted. Three kinds of outlier are flagged in ``TelemetryFix.outlier``:
- ``marked``: the data owner's own verdict (Movebank ``visible=false`` or ``manually-marked-outlier``);
- ``speed``: a spike, a fix whose implied speed from the previous *and* to the next kept fix both
  exceed ``max_speed_kmh`` (a two-sided speed filter, simplified from McConnell, Chambers and Fedak
  1992, Antarctic Science 4, 393-398, who combine the speeds to two fixes on each side; one fast step
  alone is a real dash, two in and out of one point is a bad fix);
- ``null-island``: exactly 0, 0, a receiver's "no position" written as a position.
Flags are recomputed for every tag an import touches, so they always describe the whole track.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pardus.store.models import Individual, TelemetryFix, TelemetryTag, utcnow
from pardus.telemetry.movebank import FixRecord, MovebankFile

DEFAULT_MAX_SPEED_KMH = 100.0  # faster than any terrestrial carnivore sustains between fixes
EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)
FIXED_FLAGS = ("marked", "null-island")


class TelemetryError(ValueError):
    """A telemetry operation that cannot be done; the message says why and what to do."""


@dataclass
class ImportReport:
    """What an import did: every row of the file is accounted for in exactly one count."""

    source: str
    rows: int
    stored: int = 0
    already: int = 0  # records the store held before (a re-import, an overlapping export)
    duplicates: int = 0  # rows repeating an earlier row of the same file
    without_fix: int = 0  # of the stored rows
    flagged: dict[str, int] = field(default_factory=dict)  # outliers in the touched tags, by reason
    tags: list[str] = field(default_factory=list)


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres (haversine, spherical Earth of mean radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def speed_outliers(times: Sequence[float], lons: Sequence[float], lats: Sequence[float],
                   max_speed_kmh: float = DEFAULT_MAX_SPEED_KMH) -> list[bool]:
    """Which fixes of one track (sorted by time, seconds) are speed spikes.

    A fix is a spike when the speed from the previous kept fix to it and from it to the next fix both
    exceed the limit (McConnell et al. 1992). The first and last fixes have one side only and are never
    called spikes: with one neighbour it cannot be told which of the two is wrong. Fixes closer than one
    second are compared at one second, so a repeated instant is not an infinite speed. A spike is not
    used as the previous fix of the next one, so one bad fix does not condemn the good fix after it.
    """
    n = len(times)
    limit = max_speed_kmh / 3.6
    out = [False] * n

    def speed(i: int, j: int) -> float:
        return haversine_m(lons[i], lats[i], lons[j], lats[j]) / max(abs(times[j] - times[i]), 1.0)

    prev: int | None = None  # the last fix kept
    for i in range(n):
        if prev is not None and i + 1 < n and speed(prev, i) > limit and speed(i, i + 1) > limit:
            out[i] = True
        else:
            prev = i
    return out


def _tag_rows(s: Session, tags: Iterable[str]) -> dict[str, TelemetryTag]:
    tags = list(set(tags))
    found: dict[str, TelemetryTag] = {}
    for i in range(0, len(tags), 500):
        chunk = tags[i:i + 500]
        found.update({t.tag_id: t for t in s.scalars(select(TelemetryTag).where(TelemetryTag.tag_id.in_(chunk)))})
    return found


def reflag(s: Session, tags: Iterable[str], max_speed_kmh: float = DEFAULT_MAX_SPEED_KMH) -> dict[str, int]:
    """Recompute the speed flags of every record of these tags; returns flagged counts by reason.

    'marked' and 'null-island' are facts of the record itself, set when it is stored; speed spikes
    depend on the neighbours, so they are recomputed over the whole track of each tag given.
    """
    counts: dict[str, int] = {}
    for tag in sorted(set(tags)):
        rows = [tuple(r) for r in s.execute(
            select(TelemetryFix.id, TelemetryFix.timestamp, TelemetryFix.longitude, TelemetryFix.latitude,
                   TelemetryFix.outlier)
            .where(TelemetryFix.tag_id == tag, TelemetryFix.sensor_type == "gps", TelemetryFix.latitude.is_not(None))
            .order_by(TelemetryFix.timestamp))]
        track = [r for r in rows if r[4] not in FIXED_FLAGS]
        spikes = speed_outliers([r[1].timestamp() for r in track], [r[2] for r in track], [r[3] for r in track],
                                max_speed_kmh)
        for r, spike in zip(track, spikes, strict=True):
            want = "speed" if spike else None
            if want != r[4]:
                s.execute(update(TelemetryFix).where(TelemetryFix.id == r[0]).values(outlier=want))
        for r in s.execute(select(TelemetryFix.outlier, func.count()).where(
                TelemetryFix.tag_id == tag, TelemetryFix.outlier.is_not(None)).group_by(TelemetryFix.outlier)):
            counts[r[0]] = counts.get(r[0], 0) + int(r[1])
    return counts


def record_flag(rec: FixRecord) -> str | None:
    """The flag a record carries by itself: the owner's verdict, or a receiver's 0, 0."""
    if not rec.visible or rec.marked_outlier:
        return "marked"
    if rec.latitude == 0.0 and rec.longitude == 0.0:
        return "null-island"
    return None


def _row(rec: FixRecord, individual_id: str | None) -> dict[str, object]:
    extra = dict(rec.extra)
    if rec.marked_outlier:
        extra["manually-marked-outlier"] = "true"
    return {"tag_id": rec.tag_id, "sensor_type": rec.sensor_type, "timestamp": rec.timestamp,
            "latitude": rec.latitude, "longitude": rec.longitude, "event_id": rec.event_id,
            "animal": rec.animal, "visible": rec.visible, "dop": rec.dop, "individual_id": individual_id,
            "outlier": record_flag(rec), "extra": extra}


def import_records(s: Session, parsed: MovebankFile, *,
                   max_speed_kmh: float = DEFAULT_MAX_SPEED_KMH) -> ImportReport:
    """Store a parsed file's new records in the caller's transaction and reflag the tags it touches.

    Existing records (same tag, sensor and time) are left exactly as they are. A concurrent import
    of the same records loses on the unique key and is reported as such, with nothing written.
    """
    rep = ImportReport(parsed.source, parsed.rows, duplicates=parsed.duplicates)
    by_tag: dict[str, list[FixRecord]] = {}
    for rec in parsed.records:
        by_tag.setdefault(rec.tag_id, []).append(rec)
    tags = _tag_rows(s, by_tag)
    for tag_id, recs in by_tag.items():
        first = recs[0]
        tag = tags.get(tag_id)
        if tag is None:
            tag = TelemetryTag(tag_id=tag_id, animal=first.animal, taxon=first.taxon, study=first.study, extra={})
            s.add(tag)
            tags[tag_id] = tag
        else:
            tag.animal = tag.animal or first.animal
            tag.taxon = tag.taxon or first.taxon
            tag.study = tag.study or first.study
    s.flush()
    new_rows: list[dict[str, object]] = []
    for tag_id, recs in by_tag.items():
        lo, hi = min(r.timestamp for r in recs), max(r.timestamp for r in recs)
        have = {(st, ts) for st, ts in s.execute(select(TelemetryFix.sensor_type, TelemetryFix.timestamp).where(
            TelemetryFix.tag_id == tag_id, TelemetryFix.timestamp >= lo, TelemetryFix.timestamp <= hi))}
        ind = tags[tag_id].individual_id
        for rec in recs:
            if (rec.sensor_type, rec.timestamp) in have:
                rep.already += 1
                continue
            new_rows.append(_row(rec, ind))
            rep.stored += 1
            rep.without_fix += rec.latitude is None
    try:
        for i in range(0, len(new_rows), 5000):
            s.execute(TelemetryFix.__table__.insert(), new_rows[i:i + 5000])
        s.flush()
    except IntegrityError as exc:
        raise TelemetryError("another import stored some of these records at the same moment; nothing was "
                             "imported from this file: run the same command again") from exc
    rep.tags = sorted(by_tag)
    # only tracks that gained records can gain or lose a spike
    rep.flagged = reflag(s, {r["tag_id"] for r in new_rows}, max_speed_kmh)  # type: ignore[misc]
    return rep


def _individual(s: Session, code: str) -> Individual:
    """The catalogue individual with this code (a merged one leads to its survivor)."""
    ind = s.scalars(select(Individual).where(Individual.code == code)).first()
    if ind is None:
        raise TelemetryError(f"no individual with code {code!r}; `pardus individuals list` shows the codes")
    seen = {ind.id}
    while ind.merged_into and ind.merged_into not in seen:
        nxt = s.get(Individual, ind.merged_into)
        if nxt is None:
            break
        seen.add(nxt.id)
        ind = nxt
    return ind


def link_tag(s: Session, code: str, tag_id: str, *, by: str) -> tuple[Individual, int]:
    """Link a collar's tag to a catalogue individual, so its track stands beside its camera sightings.

    The tag may be linked before its data arrive (later imports inherit the link). Linking a tag that
    is linked to another individual is refused: unlink by linking again only after saying so
    (``force`` is deliberately absent; a wrong link would put one animal's track on another's page).
    Returns the individual and how many records now carry it.
    """
    tag_id = tag_id.strip()
    if not tag_id or len(tag_id) > 64:
        raise TelemetryError("give the tag as the collar's tag-local-identifier (1-64 characters)")
    ind = _individual(s, code)
    tag = s.get(TelemetryTag, tag_id)
    if tag is None:
        tag = TelemetryTag(tag_id=tag_id, extra={})
        s.add(tag)
    elif tag.individual_id and tag.individual_id != ind.id:
        other = s.get(Individual, tag.individual_id)
        raise TelemetryError(f"tag {tag_id} is linked to {other.code if other else tag.individual_id} already; "
                             "a tag carries one animal's track")
    tag.individual_id, tag.linked_by, tag.linked_at = ind.id, by, utcnow()
    res = s.execute(update(TelemetryFix).where(TelemetryFix.tag_id == tag_id).values(individual_id=ind.id))
    return ind, int(res.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Track:
    """One tag's positions in time order, outliers left out (``outliers`` says how many)."""

    tag_id: str
    individual_id: str | None
    times: list[datetime]
    lons: list[float]
    lats: list[float]
    outliers: int
    without_fix: int


def tracks(s: Session, *, individual_id: str | None = None, tag_id: str | None = None,
           start: datetime | None = None, end: datetime | None = None) -> list[Track]:
    """The GPS tracks (good fixes only) of one individual, one tag, or every tag, in a period."""
    q = select(TelemetryFix.tag_id, TelemetryFix.individual_id, TelemetryFix.timestamp, TelemetryFix.longitude,
               TelemetryFix.latitude, TelemetryFix.outlier).where(TelemetryFix.sensor_type == "gps")
    if individual_id is not None:
        q = q.where(TelemetryFix.individual_id == individual_id)
    if tag_id is not None:
        q = q.where(TelemetryFix.tag_id == tag_id)
    if start is not None:
        q = q.where(TelemetryFix.timestamp >= start)
    if end is not None:
        q = q.where(TelemetryFix.timestamp < end)
    out: dict[str, dict[str, object]] = {}
    for tag, ind, ts, lon, lat, outlier in s.execute(q.order_by(TelemetryFix.tag_id, TelemetryFix.timestamp)):
        t = out.setdefault(tag, {"ind": ind, "times": [], "lons": [], "lats": [], "out": 0, "nofix": 0})
        if lon is None or lat is None:
            t["nofix"] += 1  # type: ignore[operator]
        elif outlier:
            t["out"] += 1  # type: ignore[operator]
        else:
            t["times"].append(ts)  # type: ignore[attr-defined]
            t["lons"].append(lon)  # type: ignore[attr-defined]
            t["lats"].append(lat)  # type: ignore[attr-defined]
    return [Track(tag, v["ind"], v["times"], v["lons"], v["lats"], v["out"], v["nofix"])  # type: ignore[arg-type]
            for tag, v in out.items()]
