"""People's decisions about sequences: human observations beside the machine's, superseded (never
overwritten) by later decisions, undone by bringing back what they replaced.

Each decision writes one media-level human observation per photo of the sequence, with the
reviewer's name and time (Camtrap DP ``classificationMethod=human``, ``classifiedBy``), the
machine's best box of that kind on the photo (so ``pardus models train-species`` learns from the
crop the stage classifies) and what the machine had said (``extra.machine``). Identities of
individual leopards and tigers are decided through the catalogue (``pardus.reid.catalogue``), not
here: a decision about a sequence's species never supersedes an identity.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pardus.models.species import HUMAN
from pardus.review.queue import QueueError, disagrees, sequence_media
from pardus.store.models import Detection, Observation, ReviewDecision, ReviewItem, utcnow

ACTIONS = ("accept", "blank", "animal", "human", "vehicle")
BOX_CATEGORY = {"animal": "animal", "human": "person", "vehicle": "vehicle"}
MAX_COUNT = 1000
UNDONE = "undone"


@dataclass(frozen=True)
class Decided:
    decision_id: str
    sequence_id: str
    observation_type: str
    scientific_name: str | None
    count: int | None
    photos: int


def _check_species(name: str | None) -> str:
    name = (name or "").strip()
    if not name:
        raise QueueError("say which species: an animal decision needs its scientific name")
    if len(name) > 255 or not name.isprintable():
        raise QueueError("the species name must be printable text of at most 255 characters")
    return name


def decide(s: Session, sequence_id: str, by: str, action: str, *, species: str | None = None,
           count: int | None = None, batch_id: str | None = None, at: datetime | None = None) -> Decided:
    """Record what ``by`` decided about a sequence: ``accept`` the machine's call, or say it is
    ``blank``, an ``animal`` of ``species``, a ``human`` or a ``vehicle`` (with an optional count)."""
    if action not in ACTIONS:
        raise QueueError(f"action must be one of {', '.join(ACTIONS)}, not {action[:40]!r}")
    if count is not None and not 0 <= count <= MAX_COUNT:
        raise QueueError(f"count must be 0-{MAX_COUNT}, not {count}")
    item = s.get(ReviewItem, sequence_id) if sequence_id and len(sequence_id) <= 64 else None
    if item is None:
        raise QueueError(f"no sequence {sequence_id[:70]!r} in the review queue")
    at = at or utcnow()
    if action == "accept":
        if item.machine_type is None:
            raise QueueError("the machine made no call on this sequence: choose blank, a species, person or vehicle")
        kind, name = item.machine_type, item.machine_species
    else:
        kind = action
        name = _check_species(species) if kind == "animal" else HUMAN if kind == "human" else None
    if kind == "blank":
        count = None
    elif count is None:
        count = 1
    photos = sequence_media(s, sequence_id)
    if not photos:
        raise QueueError(f"the sequence {sequence_id[:70]!r} has no photos left in the store")
    decision = ReviewDecision(id=uuid.uuid4().hex, sequence_id=sequence_id, batch_id=batch_id, by=by, at=at,
                              action=action, observation_type=kind, scientific_name=name, count=count,
                              machine_type=item.machine_type, machine_species=item.machine_species,
                              machine_confidence=item.confidence)
    s.add(decision)
    ids = [m.id for m in photos]
    for old in s.scalars(select(Observation).where(
            Observation.media_id.in_(ids), Observation.classification_method == "human",
            Observation.individual_id.is_(None), Observation.superseded_by.is_(None))):
        old.superseded_by = decision.id
    boxes: dict[str, Detection] = {}
    if kind in BOX_CATEGORY:
        for det in s.scalars(select(Detection).where(
                Detection.media_id.in_(ids), Detection.category == BOX_CATEGORY[kind], Detection.repeat.is_(False))
                .order_by(Detection.score.desc())):
            boxes.setdefault(det.media_id, det)
    machine = {"type": item.machine_type, "species": item.machine_species, "confidence": item.confidence}
    for m in photos:
        b = boxes.get(m.id)
        s.add(Observation(
            deployment_id=m.deployment_id, media_id=m.id, event_id=m.sequence_id, observation_level="media",
            observation_type=kind, scientific_name=name, count=count,
            bbox_x=b.x if b else None, bbox_y=b.y if b else None, bbox_width=b.w if b else None,
            bbox_height=b.h if b else None, classification_method="human", classified_by=by,
            classification_timestamp=at, review_decision_id=decision.id, extra={"machine": machine}))
    item.human_type, item.human_species, item.reviewed_by, item.reviewed_at = kind, name, by, at
    item.disagree = disagrees(item)
    return Decided(decision.id, sequence_id, kind, name, count, len(photos))


def _restore_item(s: Session, sequence_id: str) -> None:
    item = s.get(ReviewItem, sequence_id)
    if item is None:
        return
    last = s.scalars(select(ReviewDecision).where(ReviewDecision.sequence_id == sequence_id,
                                                  ReviewDecision.undone_at.is_(None))
                     .order_by(ReviewDecision.at.desc(), ReviewDecision.id.desc()).limit(1)).first()
    if last is None:
        item.human_type = item.human_species = item.reviewed_by = None
        item.reviewed_at = None
    else:
        item.human_type, item.human_species = last.observation_type, last.scientific_name
        item.reviewed_by, item.reviewed_at = last.by, last.at
    item.disagree = disagrees(item)


def undo(s: Session, decision_or_batch: str, by: str) -> list[str]:
    """Undo a decision (or every decision of a bulk action): its observations are marked undone and
    kept; what they had replaced counts again. Returns the sequences undone, in decision order."""
    if not decision_or_batch or len(decision_or_batch) > 64:
        raise QueueError("nothing to undo: give a decision id")
    rows = list(s.scalars(select(ReviewDecision).where(
        (ReviewDecision.id == decision_or_batch) | (ReviewDecision.batch_id == decision_or_batch),
        ReviewDecision.undone_at.is_(None))))
    if not rows:
        raise QueueError("nothing to undo: that decision does not exist or was undone already")
    ids = [d.id for d in rows]
    later = s.scalar(select(ReviewDecision.id).join(Observation, Observation.superseded_by == ReviewDecision.id)
                     .where(Observation.review_decision_id.in_(ids), ReviewDecision.undone_at.is_(None)).limit(1))
    if later is not None:
        raise QueueError("a later decision replaced this one; undo that one first")
    now = utcnow()
    for d in sorted(rows, key=lambda d: d.at, reverse=True):
        d.undone_at, d.undone_by = now, by
        for o in s.scalars(select(Observation).where(Observation.review_decision_id == d.id)):
            o.superseded_by = UNDONE
        for o in s.scalars(select(Observation).where(Observation.superseded_by == d.id)):
            o.superseded_by = None
        s.flush()
        _restore_item(s, d.sequence_id)
    return [d.sequence_id for d in sorted(rows, key=lambda d: (d.at, d.id))]


def last_undoable(s: Session, by: str) -> str | None:
    """The newest decision (or bulk action) of ``by`` that can still be undone: what the undo key undoes."""
    d = s.scalars(select(ReviewDecision).where(ReviewDecision.by == by, ReviewDecision.undone_at.is_(None))
                  .order_by(ReviewDecision.at.desc(), ReviewDecision.id.desc()).limit(1)).first()
    return (d.batch_id or d.id) if d is not None else None


def accept_blanks(s: Session, sequence_ids: list[str], by: str) -> tuple[str, int]:
    """Bulk: accept the machine's "blank" for the sequences the person was shown (their thumbnails);
    any that stopped being an unreviewed machine blank meanwhile are left alone. One undo reverts all."""
    if not sequence_ids:
        raise QueueError("no sequences to accept")
    if len(sequence_ids) > 2000:
        raise QueueError("at most 2000 sequences in one bulk action")
    batch = "batch-" + uuid.uuid4().hex[:24]
    at = utcnow()
    n = 0
    for item in s.scalars(select(ReviewItem).where(ReviewItem.sequence_id.in_(set(sequence_ids)),
                                                   ReviewItem.machine_type == "blank",
                                                   ReviewItem.reviewed_at.is_(None))):
        decide(s, item.sequence_id, by, "accept", batch_id=batch, at=at)
        n += 1
    if n == 0:
        raise QueueError("none of those sequences is an unreviewed machine blank any more")
    return batch, n


@dataclass(frozen=True)
class ProgressRow:
    by: str
    day: str
    sequences: int


def progress(s: Session, limit_days: int = 60) -> list[ProgressRow]:
    """Sequences reviewed per reviewer and per day (UTC), newest day first; undone decisions don't count."""
    day = func.date(ReviewDecision.at)
    rows = s.execute(select(ReviewDecision.by, day, func.count(func.distinct(ReviewDecision.sequence_id)))
                     .where(ReviewDecision.undone_at.is_(None)).group_by(ReviewDecision.by, day)
                     .order_by(day.desc(), ReviewDecision.by))
    out = [ProgressRow(by, str(d)[:10], int(n)) for by, d, n in rows]
    days = sorted({r.day for r in out}, reverse=True)[:limit_days]
    return [r for r in out if r.day in days]
