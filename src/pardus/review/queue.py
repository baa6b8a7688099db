"""The review queue: one row per sequence with the machine's call, kept in ``review_item`` so that
the next sequence is one indexed query at a million photos (keyset pagination, never OFFSET).

Why the default order is one camera-day at a time (``order="camera-day"``): a reviewer who sees a
camera's bursts of one day in time order recognises the same animal passing, the same patrol, the
same swaying branch, and can accept that day's machine blanks in one bulk action after a glance at
their thumbnails; most of a season is blanks, so this saves the most work. ``order="confidence"``
(least sure first) is there for checking the machine where it is weakest.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, literal, or_, select, tuple_, update
from sqlalchemy.orm import Session

from pardus.store.models import Deployment, Location, Media, Observation, ReviewItem

TYPES = ("blank", "animal", "human", "vehicle")
# The machine's call for a sequence is its most important content: a poacher behind a deer is a person.
PRIORITY = ("human", "vehicle", "animal", "blank")
ORDERS = ("camera-day", "confidence")
CONFIDENCE_BANDS = {"low": (0.0, 0.5), "medium": (0.5, 0.8), "high": (0.8, 1.01)}
PAGE = 50
# A sequence whose photos carry no time at all sorts first in its camera's queue (flagged as a time
# problem): keyset pagination needs a value, and NULLs sort differently on SQLite and PostgreSQL.
NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)


class QueueError(ValueError):
    """A queue request cannot be answered; the message says what to change."""


@dataclass(frozen=True)
class QueueFilter:
    """What a reviewer narrows the queue to; every field optional."""

    plot: str | None = None
    deployment_id: str | None = None
    since: date | None = None
    until: date | None = None
    machine_type: str | None = None
    species: str | None = None
    confidence: str | None = None  # a CONFIDENCE_BANDS key
    unreviewed: bool = False
    disagree: bool = False
    time_issues: bool = False

    def check(self) -> QueueFilter:
        if self.machine_type and self.machine_type not in TYPES:
            raise QueueError(f"machine call must be one of {', '.join(TYPES)}, not {self.machine_type[:40]!r}")
        if self.confidence and self.confidence not in CONFIDENCE_BANDS:
            raise QueueError(f"confidence band must be one of {', '.join(CONFIDENCE_BANDS)}")
        if self.since and self.until and self.since > self.until:
            raise QueueError("the first date is after the last one")
        for text in (self.plot, self.deployment_id, self.species):
            if text is not None and len(text) > 255:
                raise QueueError("a filter value is too long")
        return self


def _local_day(t: datetime | None, utc_offset_minutes: int) -> str | None:
    return (t + timedelta(minutes=utc_offset_minutes)).date().isoformat() if t is not None else None


def machine_call(rows: list[tuple[str, str | None, float | None, str]]) -> tuple[str | None, str | None, float | None]:
    """(type, species, confidence) of a sequence from its machine observations
    ``(observation_type, scientific_name, probability, level)``. Event-level rows (burst smoothing)
    speak for the sequence when there are any; otherwise the frames do."""
    events = [r for r in rows if r[3] == "event"]
    use = events or rows
    types = {r[0] for r in use}
    kind = next((t for t in PRIORITY if t in types), None)
    if kind is None:
        return None, None, None
    chosen = [r for r in use if r[0] == kind]
    species = None
    if kind == "animal":
        named = Counter(r[1] for r in chosen if r[1])
        species = named.most_common(1)[0][0] if named else None
    probs = [r[2] for r in chosen if r[2] is not None and (kind != "animal" or species is None or r[1] == species)]
    return kind, species, (max(probs) if probs else None)


_MACHINE_FIELDS = ("deployment_id", "plot", "start", "end", "media_count", "first_media_id", "time_issues",
                   "camera_day", "machine_type", "machine_species", "confidence", "disagree")
_WRITE_CHUNK = 5000


def refresh(s: Session, *, deployments: Collection[str] | None = None,
            progress: Callable[[int, int], None] | None = None) -> int:
    """Bring ``review_item`` up to date with the photos and the machine's latest calls; people's
    decisions on it are kept. Returns the number of sequences refreshed.

    ``deployments`` limits the work to those cameras (what a `pardus process` run touched): at a
    million photos a full rebuild reads every photo and machine call, which a new card of one
    camera does not need. Rows are compared as plain values and only new or changed ones are
    written, in bulk statements, so a refresh that changes nothing writes nothing."""
    scope = list(deployments) if deployments is not None else None
    if scope is not None and not scope:
        return 0
    places = {d: (plot, off) for d, plot, off in s.execute(
        select(Deployment.id, Location.plot, Deployment.utc_offset_minutes)
        .outerjoin(Location, Location.id == Deployment.location_id))}
    seqs: dict[str, dict[str, Any]] = {}
    media_seq: dict[str, str] = {}
    media_q = select(Media.id, Media.deployment_id, Media.sequence_id, Media.timestamp, Media.timestamp_issues) \
        .where(Media.available.is_(True))
    if scope is not None:
        media_q = media_q.where(Media.deployment_id.in_(scope))
    for mid, dep, seq, t, issues in s.execute(media_q.order_by(Media.deployment_id, Media.timestamp, Media.id)):
        key = seq or mid  # a photo without a sequence is its own
        media_seq[mid] = key
        item = seqs.get(key)
        if item is None:
            plot, off = places.get(dep, (None, 600))
            seqs[key] = item = {"deployment_id": dep, "plot": plot, "start": t, "end": t, "media_count": 0,
                                "first_media_id": mid, "time_issues": False, "camera_day": _local_day(t, off or 0)}
        item["media_count"] += 1
        item["time_issues"] = item["time_issues"] or issues is not None
        if t is not None:
            item["start"] = min(item["start"] or t, t)
            item["end"] = max(item["end"] or t, t)
    calls: dict[str, list[tuple[str, str | None, float | None, str]]] = defaultdict(list)
    obs_q = select(Observation.media_id, Observation.event_id, Observation.observation_type,
                   Observation.scientific_name, Observation.classification_probability,
                   Observation.observation_level) \
        .where(or_(Observation.classification_method.is_(None), Observation.classification_method != "human"),
               Observation.superseded_by.is_(None))
    if scope is not None:
        obs_q = obs_q.where(Observation.deployment_id.in_(scope))
    for mid, ev, typ, name, p, level in s.execute(obs_q):
        key = media_seq.get(mid) if mid else (ev if ev in seqs else None)
        if key is not None:
            calls[key].append((typ, name, p, level))
    item_q = select(ReviewItem.sequence_id, ReviewItem.human_type, ReviewItem.human_species,
                    *(getattr(ReviewItem, f) for f in _MACHINE_FIELDS))
    if scope is not None:
        item_q = item_q.where(ReviewItem.deployment_id.in_(scope))
    existing = {row[0]: row[1:] for row in s.execute(item_q)}
    total = len(seqs)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for i, (key, item) in enumerate(seqs.items()):
        kind, species, conf = machine_call(calls.get(key, []))
        item.update(machine_type=kind, machine_species=species, confidence=conf)
        if item["start"] is None:
            item["start"], item["time_issues"] = NO_TIME, True
        old = existing.pop(key, None)
        human_type, human_species = (old[0], old[1]) if old is not None else (None, None)
        item["disagree"] = _disagree(human_type, human_species, kind, species)
        if old is None:
            inserts.append({"sequence_id": key, **item})
        elif tuple(old[2:]) != tuple(item[f] for f in _MACHINE_FIELDS):
            updates.append({"sequence_id": key, **item})
        if progress and (i % 1000 == 0 or i == total - 1):
            progress(i + 1, total)
    for chunk in range(0, len(inserts), _WRITE_CHUNK):
        s.execute(insert(ReviewItem), inserts[chunk : chunk + _WRITE_CHUNK])
    for chunk in range(0, len(updates), _WRITE_CHUNK):
        s.execute(update(ReviewItem), updates[chunk : chunk + _WRITE_CHUNK])  # by primary key
    if existing:  # sequences whose photos are gone (never deleted by Pardus, but a store can be edited)
        gone = list(existing)
        for chunk in range(0, len(gone), _WRITE_CHUNK):
            s.execute(delete(ReviewItem).where(ReviewItem.sequence_id.in_(gone[chunk : chunk + _WRITE_CHUNK])))
    return total


def _disagree(human_type: str | None, human_species: str | None, machine_type: str | None,
              machine_species: str | None) -> bool:
    if human_type is None or machine_type is None:
        return False
    return human_type != machine_type or (
        human_type == "animal" and bool(machine_species) and human_species != machine_species)


def disagrees(row: ReviewItem) -> bool:
    return _disagree(row.human_type, row.human_species, row.machine_type, row.machine_species)


def _filtered(f: QueueFilter) -> Any:
    q = select(ReviewItem)
    if f.plot:
        q = q.where(ReviewItem.plot == f.plot)
    if f.deployment_id:
        q = q.where(ReviewItem.deployment_id == f.deployment_id)
    if f.since:
        q = q.where(ReviewItem.camera_day >= f.since.isoformat())
    if f.until:
        q = q.where(ReviewItem.camera_day <= f.until.isoformat())
    if f.machine_type:
        q = q.where(ReviewItem.machine_type == f.machine_type)
    if f.species:
        q = q.where(or_(ReviewItem.machine_species == f.species, ReviewItem.human_species == f.species))
    if f.confidence:
        lo, hi = CONFIDENCE_BANDS[f.confidence]
        q = q.where(ReviewItem.confidence >= lo, ReviewItem.confidence < hi)
    if f.unreviewed:
        q = q.where(ReviewItem.reviewed_at.is_(None))
    if f.disagree:
        q = q.where(ReviewItem.disagree.is_(True))
    if f.time_issues:
        q = q.where(ReviewItem.time_issues.is_(True))
    return q


def page(s: Session, f: QueueFilter, *, order: str = "camera-day", after: str | None = None, before: str | None = None,
         limit: int = PAGE) -> list[ReviewItem]:
    """Up to ``limit`` sequences after (or before) the sequence ``after``/``before`` in ``order``:
    keyset pagination on an index, so the millionth photo costs what the first does."""
    if order not in ORDERS:
        raise QueueError(f"order must be one of {', '.join(ORDERS)}")
    if not 1 <= limit <= 500:
        raise QueueError("limit must be 1-500")
    f.check()
    q = _filtered(f)
    anchor_id = after or before
    anchor = s.get(ReviewItem, anchor_id) if anchor_id else None
    if anchor_id and anchor is None:
        raise QueueError(f"no sequence {anchor_id[:70]!r} in the queue")
    forward = before is None
    # One row-value comparison against the anchor: both databases seek the index to it (an OR of
    # comparisons made SQLite sort, and PostgreSQL read, everything after it: bench/review_speed.py).
    if order == "confidence":
        # Least sure first, among the sequences the machine gave a probability (its blanks have none:
        # they are for the camera-day order and its bulk accept).
        cols: tuple[Any, ...] = (ReviewItem.confidence, ReviewItem.sequence_id)
        q = q.where(ReviewItem.confidence.is_not(None))
        at: tuple[Any, ...] | None = (
            (anchor.confidence if anchor.confidence is not None else -1.0, anchor.sequence_id) if anchor else None)
    else:
        cols = (ReviewItem.deployment_id, ReviewItem.start, ReviewItem.sequence_id)
        at = (anchor.deployment_id, anchor.start, anchor.sequence_id) if anchor else None
    if at is not None:
        key, value = tuple_(*cols), tuple_(*(literal(v, type_=c.type) for v, c in zip(at, cols, strict=True)))
        q = q.where(key > value if forward else key < value)
    q = q.order_by(*(c if forward else c.desc() for c in cols)).limit(limit)
    rows = list(s.scalars(q))
    return rows if forward else rows[::-1]


def sequence_media(s: Session, sequence_id: str) -> list[Media]:
    """The photos of a sequence in time order (a photo without a sequence is its own)."""
    rows = list(s.scalars(select(Media).where(Media.sequence_id == sequence_id)
                          .order_by(Media.timestamp, Media.sequence_index, Media.id)))
    if not rows:
        m = s.get(Media, sequence_id)
        rows = [m] if m is not None and m.sequence_id is None else []
    return rows


def camera_day_items(s: Session, deployment_id: str, camera_day: str, *, machine_type: str | None = None,
                     unreviewed: bool = True) -> list[ReviewItem]:
    q = select(ReviewItem).where(ReviewItem.deployment_id == deployment_id, ReviewItem.camera_day == camera_day)
    if machine_type:
        q = q.where(ReviewItem.machine_type == machine_type)
    if unreviewed:
        q = q.where(ReviewItem.reviewed_at.is_(None))
    return list(s.scalars(q.order_by(ReviewItem.start, ReviewItem.sequence_id).limit(2000)))


def is_empty(s: Session) -> bool:
    return s.scalar(select(ReviewItem.sequence_id).limit(1)) is None


# The Land of the Leopard's fauna a reviewer chooses from (scientific, common), before the names the
# store has seen; the species most often decided or called come first, so they get the number keys.
PARK_SPECIES: tuple[tuple[str, str], ...] = (
    ("Panthera pardus orientalis", "Amur leopard"), ("Panthera tigris altaica", "Amur tiger"),
    ("Cervus nippon", "sika deer"), ("Capreolus pygargus", "Siberian roe deer"), ("Cervus elaphus", "red deer"),
    ("Sus scrofa", "wild boar"), ("Meles leucurus", "Asian badger"), ("Nyctereutes procyonoides", "raccoon dog"),
    ("Lynx lynx", "Eurasian lynx"), ("Prionailurus bengalensis euptilurus", "Amur leopard cat"),
    ("Ursus arctos", "brown bear"), ("Ursus thibetanus", "Asiatic black bear"), ("Vulpes vulpes", "red fox"),
    ("Canis lupus", "wolf"), ("Canis familiaris", "domestic dog"), ("Martes zibellina", "sable"),
    ("Martes flavigula", "yellow-throated marten"), ("Mustela sibirica", "Siberian weasel"),
    ("Lepus mandshuricus", "Manchurian hare"), ("Sciurus vulgaris", "red squirrel"),
    ("Moschus moschiferus", "Siberian musk deer"), ("Aves", "bird"),
)


def species_choices(s: Session, limit: int = 200) -> list[tuple[str, str]]:
    """(scientific name, common name) for the reviewer's list: the park's fauna and every name in the
    store's queue, most used first."""
    used: Counter[str] = Counter()
    for name, n in s.execute(select(ReviewItem.human_species, func.count()).where(
            ReviewItem.human_species.is_not(None)).group_by(ReviewItem.human_species)):
        used[name] += 3 * n
    for name, n in s.execute(select(ReviewItem.machine_species, func.count()).where(
            ReviewItem.machine_species.is_not(None)).group_by(ReviewItem.machine_species)):
        used[name] += n
    common = dict(PARK_SPECIES)
    names = list(dict.fromkeys([n for n, _ in used.most_common()] + [n for n, _ in PARK_SPECIES]))
    names.sort(key=lambda n: -used.get(n, 0))  # stable: the park's order among the unused
    return [(n, common.get(n, "")) for n in names[:limit] if n != "Homo sapiens"]
