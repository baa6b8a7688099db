"""What the identity desk reads: proposals waiting for a person, one proposal with its candidates,
the catalogue as a table, and everything one individual's page shows.

The web pages (and any other interface) read the catalogue through these typed values and never
through the store's tables, so the shape of ``extra["reid"]`` that :mod:`pardus.reid.stage`
writes stays the reid room's business. Decisions are not made here: they go through
:class:`pardus.reid.catalogue.Catalogue`, which writes the history.

The queue is ordered by the photo's time (then the proposal's id), the order a person walks a
season, and paged by keyset (``after`` a proposal), never by OFFSET: the next page costs the same
on the last day of a season as on the first. Whether a proposal is decided lives in its JSON, so
undecided ones are picked out in Python from batches read in that order.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from pardus.live.stations import shown_place
from pardus.reid.catalogue import Catalogue, lineage
from pardus.store.models import Deployment, Detection, Individual, IndividualEvent, Location, Media, Observation

REID_MODEL_PREFIX = "pardus-reid"
BATCH = 200
BEST_PER_FLANK = 3


@dataclass
class Candidate:
    """One individual the machine proposes, as it stands in the catalogue now (merges followed)."""

    rank: int
    individual_id: str
    code: str
    name: str | None
    probability: float | None
    score: float | None
    flank: str | None
    inliers: int
    photo_media_ids: list[str]  # its catalogue photos the machine matched, best first
    rejected: bool = False
    species: str | None = None
    # False: its coat got votes but no photo of it lined up with this one (no score, no "% sure");
    # the desk names it as the closest, never as the probable animal
    verified: bool = True


@dataclass
class Proposal:
    """A machine proposal as the desk shows it."""

    id: str
    media_id: str
    deployment_id: str
    timestamp: datetime | None
    file_name: str | None
    sequence_id: str | None
    species: str | None
    flank: str | None
    is_new: bool
    new_probability: float | None
    box: tuple[float, float, float, float] | None
    candidates: list[Candidate] = field(default_factory=list)
    decision: dict[str, Any] | None = None  # who confirmed it, as what, when
    # how many photos of its encounter (burst) the candidates were ranked over (1: this photo alone)
    encounter_photos: int = 1

    @property
    def open_candidates(self) -> list[Candidate]:
        return [c for c in self.candidates if not c.rejected]

    @property
    def best_open(self) -> Candidate | None:
        """The candidate the verdict speaks of: the best one nobody rejected."""
        return self.open_candidates[0] if self.open_candidates else None

    @property
    def likely_species(self) -> str | None:
        """The species a new record from this photo gets by default: the photo's own (a classifier's
        or a person's), else its candidates' (the matcher searched only catalogue animals of it)."""
        return self.species or next((c.species for c in self.candidates if c.species), None)


@dataclass
class CatalogueRow:
    code: str
    name: str | None
    sex: str | None
    species: str | None
    first_seen: datetime | None
    last_seen: datetime | None
    sightings: int


@dataclass
class Sighting:
    """One confirmed photo of the individual, placed as the reader may see it."""

    observation_id: str
    media_id: str
    timestamp: datetime | None
    deployment_id: str
    place: str | None
    plot: str | None
    latitude: float | None
    longitude: float | None
    rounded: bool
    flank: str | None
    by: str | None
    box_area: float


@dataclass
class HistoryEvent:
    id: int
    at: datetime
    by: str | None
    action: str
    code: str  # the record the event belongs to (a merged record keeps its own code)
    details: dict[str, Any]
    undo: str | None = None  # "unmerge" or "unsplit" when a reviewer may still undo it


@dataclass
class IndividualPage:
    id: str
    code: str
    name: str | None
    sex: str | None
    species: str | None
    notes: str | None
    first_seen: datetime | None
    last_seen: datetime | None
    merged_into_code: str | None
    best_photos: dict[str, list[Sighting]]  # flank -> largest views of the coat first
    sightings: list[Sighting]  # oldest first
    history: list[HistoryEvent]  # oldest first


# --- the queue ------------------------------------------------------------------------------------

def _when(media: Any) -> ColumnElement[Any]:
    return func.coalesce(media.timestamp, media.imported)  # a photo without a time sorts by its import


def _reid(obs: Observation) -> dict[str, Any]:
    return dict((obs.extra or {}).get("reid") or {})


def _proposals_base() -> Any:
    return (select(Observation, Media, _when(Media).label("t")).join(Media, Media.id == Observation.media_id)
            .where(Observation.classification_method == "machine", Observation.superseded_by.is_(None),
                   Observation.classified_by.like(f"{REID_MODEL_PREFIX}%")))


def _key(s: Session, proposal_id: str) -> tuple[datetime, str] | None:
    row = s.execute(select(_when(Media)).join(Observation, Observation.media_id == Media.id)
                    .where(Observation.id == proposal_id)).first()
    return (row[0], proposal_id) if row is not None else None


def _walk(s: Session, limit: int, start: tuple[datetime, str] | None, forward: bool,
          where: ColumnElement[bool] | None = None) -> list[tuple[Observation, Media]]:
    out: list[tuple[Observation, Media]] = []
    cursor = start
    t = _when(Media)
    while len(out) < limit:
        q = _proposals_base()
        if where is not None:
            q = q.where(where)
        if cursor is not None:
            ct, cid = cursor
            q = q.where(or_(t > ct, and_(t == ct, Observation.id > cid)) if forward
                        else or_(t < ct, and_(t == ct, Observation.id < cid)))
        q = q.order_by(t, Observation.id) if forward else q.order_by(t.desc(), Observation.id.desc())
        rows = s.execute(q.limit(BATCH)).all()
        for obs, media, when in rows:
            cursor = (when, obs.id)
            if not _reid(obs).get("decision"):
                out.append((obs, media))
                if len(out) == limit:
                    break
        if len(rows) < BATCH:
            break
    return out


def pending_proposals(s: Session, limit: int = 20, after: str | None = None) -> list[Proposal]:
    """Undecided proposals in photo-time order, from the one after proposal ``after`` (keyset)."""
    start = _key(s, after) if after else None
    if after and start is None:
        raise LookupError(f"no proposal {after[:64]!r}")
    return [_proposal(s, o, m) for o, m in _walk(s, limit, start, True)]


def neighbours(s: Session, proposal_id: str) -> tuple[str | None, str | None]:
    """The undecided proposals just before and just after this one (for previous / next)."""
    key = _key(s, proposal_id)
    if key is None:
        return None, None
    before = _walk(s, 1, key, False)
    after = _walk(s, 1, key, True)
    return (before[0][0].id if before else None), (after[0][0].id if after else None)


def pending_count(s: Session) -> int:
    """How many proposals wait (reads only the JSON column of the proposals, not the photos)."""
    rows = s.scalars(select(Observation.extra).where(Observation.classification_method == "machine",
                                                     Observation.superseded_by.is_(None),
                                                     Observation.classified_by.like(f"{REID_MODEL_PREFIX}%")))
    return sum(1 for extra in rows if not ((extra or {}).get("reid") or {}).get("decision"))


def encounter_pending(s: Session, proposal_id: str) -> list[str]:
    """The undecided proposals of this proposal's encounter (its photo's sequence), this one first.

    An encounter is what the camera saw in one burst: the same animal in every photo, so a person
    may decide them together. A photo without a sequence is its own encounter."""
    row = s.execute(select(Media.sequence_id, Media.deployment_id).join(Observation, Observation.media_id == Media.id)
                    .where(Observation.id == proposal_id)).first()
    if row is None:
        return []
    seq, dep = row
    if not seq:
        return [proposal_id]
    others = [o.id for o, _ in _walk(s, 1000, None, True,
                                     and_(Media.sequence_id == seq, Media.deployment_id == dep))]
    return [proposal_id] + [o for o in others if o != proposal_id]


def _current(s: Session, individual_id: str, cache: dict[str, Individual | None]) -> Individual | None:
    """The individual as it stands now: a merged record leads to its survivor."""
    if individual_id in cache:
        return cache[individual_id]
    ind = s.get(Individual, individual_id)
    seen = set()
    while ind is not None and ind.merged_into and ind.id not in seen:
        seen.add(ind.id)
        ind = s.get(Individual, ind.merged_into) or ind
    cache[individual_id] = ind
    return ind


def _proposal(s: Session, obs: Observation, media: Media, *, top: int = 5) -> Proposal:
    data = _reid(obs)
    rejected = {r.get("individual_id") for r in data.get("rejected") or []}
    photo_obs = [p for c in (data.get("candidates") or [])[:top] for p in (c.get("photos") or [])[:3]]
    media_of = dict(s.execute(select(Observation.id, Observation.media_id)
                              .where(Observation.id.in_(photo_obs))).all()) if photo_obs else {}
    cache: dict[str, Individual | None] = {}
    cands = []
    for rank, c in enumerate((data.get("candidates") or [])[:top], start=1):
        ind = _current(s, str(c.get("individual_id")), cache)
        cands.append(Candidate(
            rank=rank, individual_id=ind.id if ind else str(c.get("individual_id")),
            code=ind.code if ind else str(c.get("code")), name=ind.name if ind else c.get("name"),
            probability=c.get("probability"), score=c.get("score"), flank=c.get("flank"),
            inliers=int(c.get("inliers") or 0),
            photo_media_ids=[m for p in (c.get("photos") or [])[:3] if (m := media_of.get(p))],
            rejected=c.get("individual_id") in rejected or (ind is not None and ind.id in rejected),
            species=ind.scientific_name if ind else None, verified=c.get("verified", True) is not False))
    box = None
    if None not in (obs.bbox_x, obs.bbox_y, obs.bbox_width, obs.bbox_height):
        box = (obs.bbox_x, obs.bbox_y, obs.bbox_width, obs.bbox_height)
    return Proposal(id=obs.id, media_id=media.id, deployment_id=media.deployment_id, timestamp=media.timestamp,
                    file_name=media.file_name, sequence_id=media.sequence_id,
                    species=data.get("species") or obs.scientific_name, flank=data.get("flank"),
                    is_new=bool(data.get("is_new")), new_probability=data.get("new_probability"),
                    box=box, candidates=cands, decision=data.get("decision"),  # type: ignore[arg-type]
                    encounter_photos=int((data.get("encounter") or {}).get("photos") or 1))


def proposal(s: Session, proposal_id: str) -> Proposal | None:
    """One proposal (decided or not) with its candidates as they stand now; None when there is none."""
    row = s.execute(_proposals_base().where(Observation.id == proposal_id)).first()
    return _proposal(s, row[0], row[1]) if row is not None else None


# --- a photo without a proposal --------------------------------------------------------------------

@dataclass
class PhotoIdentity:
    """An identity a person already gave in the photo (one per animal confirmed)."""

    code: str
    box: tuple[float, float, float, float] | None  # None: the whole frame
    flank: str | None


@dataclass
class PhotoToIdentify:
    """A photo a reviewer identifies by hand (the detector boxed nothing useful, or it never went
    through re-identification): what it is, the machine's best animal box to offer, the proposals
    that still wait for it (decided on the queue instead) and the identities it already has."""

    media_id: str
    file_name: str | None
    deployment_id: str
    timestamp: datetime | None
    is_image: bool
    best_box: tuple[float, float, float, float] | None
    best_box_score: float | None
    open_proposals: list[str]
    identities: list[PhotoIdentity]


def photo_to_identify(s: Session, media_id: str) -> PhotoToIdentify | None:
    """What the "identify this photo" page shows; None when there is no such photo.

    The offered box is the detector's best animal box (highest score, repeats of a camera's
    fixed scenery left out), the box the species stage classified and the review desk keeps."""
    media = s.get(Media, media_id)
    if media is None:
        return None
    det = s.scalars(select(Detection).where(Detection.media_id == media.id, Detection.category == "animal",
                                            Detection.repeat.is_(False))
                    .order_by(Detection.score.desc(), Detection.id).limit(1)).first()
    open_ids = [o.id for o, _ in _walk(s, 50, None, True, Observation.media_id == media.id)]
    cache: dict[str, Individual | None] = {}
    known = []
    for obs in s.scalars(select(Observation).where(Observation.media_id == media.id,
                                                   Observation.classification_method == "human",
                                                   Observation.individual_id.is_not(None))
                         .order_by(Observation.classification_timestamp)):
        ind = _current(s, obs.individual_id or "", cache)
        box = None
        if None not in (obs.bbox_x, obs.bbox_y, obs.bbox_width, obs.bbox_height):
            box = (obs.bbox_x, obs.bbox_y, obs.bbox_width, obs.bbox_height)
        known.append(PhotoIdentity(ind.code if ind else str(obs.individual_id), box, _reid(obs).get("flank")))
    return PhotoToIdentify(media_id=media.id, file_name=media.file_name or media.file_path,
                           deployment_id=media.deployment_id, timestamp=media.timestamp,
                           is_image=(media.file_mediatype or "image/").startswith("image/"),
                           best_box=(det.x, det.y, det.w, det.h) if det is not None else None,
                           best_box_score=det.score if det is not None else None,
                           open_proposals=open_ids, identities=known)


# --- the review sheet ----------------------------------------------------------------------------

def review_sheet(cat: Catalogue, proposal_id: str, *, top: int = 3) -> bytes:
    """The picture `pardus reid review` draws for this proposal (JPEG), made once and kept in the
    derived store. Its key names the catalogue's last change of records (create, merge, split,
    undo), which renames or regroups candidates and so draws it anew; confirmations and rejections
    do not, so the next photo's sheet, prefetched while the person decides this one, stays good.
    It also names the proposal's stored decision, which a later photo of its encounter may change
    (the sheet follows the encounter's ranking)."""
    from pardus.reid.review import review_proposal

    ws = cat.ws
    with ws.db.session() as s:
        last = s.scalar(select(func.max(IndividualEvent.id))
                        .where(IndividualEvent.action.not_in(("confirm", "reject")))) or 0
        obs = s.get(Observation, proposal_id)
        data = _reid(obs) if obs is not None else {}
    said = [[c.get("individual_id"), c.get("probability")] for c in data.get("candidates") or []]
    said.append([data.get("is_new"), data.get("new_in_encounter"), (data.get("encounter") or {}).get("photos")])
    key = hashlib.sha256(f"reid-sheet|{proposal_id}|{cat.params.key}|{top}|{last}|{said}".encode()).hexdigest()
    if ws.derived.exists(key):
        return ws.derived.get_bytes(key)
    with tempfile.TemporaryDirectory(prefix="pardus-sheet-") as tmp:
        out, _ = review_proposal(cat, proposal_id, Path(tmp) / "sheet.jpg", top=top)
        data = out.read_bytes()
    ws.derived.put_bytes(data, key)
    return data


# --- the catalogue and one individual -------------------------------------------------------------

def catalogue_rows(s: Session) -> list[CatalogueRow]:
    """Every individual not merged into another, with its number of confirmed photos (one query)."""
    counts = (select(Observation.individual_id, func.count().label("n"))
              .where(Observation.classification_method == "human", Observation.individual_id.is_not(None))
              .group_by(Observation.individual_id).subquery())
    rows = s.execute(select(Individual, func.coalesce(counts.c.n, 0))
                     .outerjoin(counts, counts.c.individual_id == Individual.id)
                     .where(Individual.merged_into.is_(None)).order_by(Individual.code)).all()
    return [CatalogueRow(i.code, i.name, i.sex, i.scientific_name, i.first_seen, i.last_seen, int(n))
            for i, n in rows]


def _lineage(s: Session, ind_id: str) -> dict[str, str]:
    """This record and every record merged into it (id -> code)."""
    ids = lineage(s, ind_id)
    return dict(s.execute(select(Individual.id, Individual.code).where(Individual.id.in_(ids))).all())


def individual_id(s: Session, code: str) -> str | None:
    """The row id of the individual with this code (merged or not), None when there is none."""
    return s.scalar(select(Individual.id).where(Individual.code == code))


def individual_page(s: Session, code: str, *, exact_places: bool) -> IndividualPage | None:
    """Everything an individual's page shows; None when no individual has this code.

    Best photos per flank are the largest boxes (the most coat in view), which needs no feature
    index; sensitive places are rounded for people whose role does not allow exact ones."""
    ind = s.scalars(select(Individual).where(Individual.code == code)).first()
    if ind is None:
        return None
    merged_code = s.scalar(select(Individual.code).where(Individual.id == ind.merged_into)) if ind.merged_into \
        else None
    rows = s.execute(
        select(Observation, Media, Location)
        .join(Media, Media.id == Observation.media_id)
        .join(Deployment, Deployment.id == Media.deployment_id)
        .outerjoin(Location, Location.id == Deployment.location_id)
        .where(Observation.individual_id == ind.id, Observation.classification_method == "human")
        .order_by(_when(Media), Observation.id)).all()
    sightings = []
    for obs, media, loc in rows:
        lat = lon = None
        rounded = False
        if loc is not None and loc.latitude is not None and loc.longitude is not None:
            lat, lon, rounded = shown_place(loc.latitude, loc.longitude, sensitive=bool(loc.sensitive),
                                            exact_places=exact_places)
        sightings.append(Sighting(
            observation_id=obs.id, media_id=media.id, timestamp=media.timestamp, deployment_id=media.deployment_id,
            place=loc.name if loc else None, plot=loc.plot if loc else None, latitude=lat, longitude=lon,
            rounded=rounded, flank=_reid(obs).get("flank"), by=obs.classified_by,
            box_area=(obs.bbox_width or 0.0) * (obs.bbox_height or 0.0)))
    best: dict[str, list[Sighting]] = {}
    for sg in sightings:
        best.setdefault(sg.flank or "unknown", []).append(sg)
    best = {f: sorted(v, key=lambda x: -x.box_area)[:BEST_PER_FLANK] for f, v in sorted(best.items())}
    return IndividualPage(id=ind.id, code=ind.code, name=ind.name, sex=ind.sex, species=ind.scientific_name,
                          notes=ind.notes, first_seen=ind.first_seen, last_seen=ind.last_seen,
                          merged_into_code=merged_code, best_photos=best, sightings=sightings,
                          history=_history(s, ind))


def _history(s: Session, ind: Individual) -> list[HistoryEvent]:
    codes = _lineage(s, ind.id)
    events = list(s.scalars(select(IndividualEvent).where(IndividualEvent.individual_id.in_(list(codes)))
                            .order_by(IndividualEvent.at, IndividualEvent.id)))
    undone = {e.details.get("undoes_event") for e in events if e.action == "unmerge"}
    out = []
    for e in events:
        undo = None
        if e.action == "merge" and e.id not in undone and e.individual_id == ind.id and not ind.merged_into:
            undo = "unmerge"
        elif e.action == "split" and e.individual_id == ind.id and not ind.merged_into:
            new = s.get(Individual, e.details.get("new") or "")
            if new is not None and not new.merged_into:
                undo = "unsplit"
        out.append(HistoryEvent(id=e.id, at=e.at, by=e.by, action=e.action, code=codes.get(e.individual_id, "?"),
                                details=dict(e.details or {}), undo=undo))
    return out
