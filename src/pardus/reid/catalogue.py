"""The individuals catalogue: who is who, kept in the store, with every decision on record.

The machine proposes, a person decides. The re-identification stage writes *proposals*: machine
``Observation`` rows whose ``extra["reid"]`` ranks the candidates (``classification_method =
'machine'``, no ``individual_id``). Only a person's decision gives a photo an identity: a human
``Observation`` with ``individual_id`` and ``classification_method = 'human'``, and only those
photos enter the matching index ("catalogue photos").

Every operation writes an ``IndividualEvent`` (who, when, and enough detail to trace and undo):

- ``create``: a new individual (from a proposal the machine called new, or by hand);
- ``confirm``: this photo shows this individual (on this flank); the photo joins the index at once;
- ``reject``: this photo does not show this candidate; the proposal keeps the rejection;
- ``merge`` / ``merged-into``: two records were one animal; the survivor takes every photo, the
  other keeps its row (``merged_into``) and its history, and the event lists the photos moved, so
  :meth:`Catalogue.undo_merge` can put them back;
- ``split`` / ``create`` (``split_from``): some photos of one record are another animal.

Index entries are keyed by a number derived from the confirmed observation's id and labelled with
the individual's row id (not its code), so merges and splits only relabel, never re-extract.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pardus.reid.features import FeatureParams
from pardus.reid.index import Annotation, FeatureIndex
from pardus.reid.photos import BACKGROUND_REFERENCES, photo_features
from pardus.store import Workspace
from pardus.store.models import Individual, IndividualEvent, Media, Observation, utcnow

FLANKS = ("left", "right")
SPECIES_PREFIX = {"Panthera pardus orientalis": "LEO", "Panthera pardus": "LEO",
                  "Panthera tigris altaica": "TIG", "Panthera tigris": "TIG", "Panthera uncia": "SNL"}
DEFAULT_PARAMS = FeatureParams()


class CatalogueError(ValueError):
    """A catalogue operation that cannot be done as asked; the message says why and what to do."""


@dataclass
class IndividualSummary:
    """What a person wants to see about one animal."""

    id: str
    code: str
    name: str | None
    species: str | None
    sex: str | None
    first_seen: datetime | None
    last_seen: datetime | None
    photos: int
    photos_per_flank: dict[str, int]
    best_photos: dict[str, list[str]]  # flank -> observation ids, most coat visible first
    merged_into: str | None = None
    notes: str | None = None
    stations: list[str] = field(default_factory=list)


def annotation_id(observation_id: str) -> int:
    """The index key of a confirmed observation (stable, derived, so DB and index need no counter)."""
    return int(hashlib.sha1(observation_id.encode()).hexdigest()[:15], 16)


def _reid(obs: Observation) -> dict[str, Any]:
    return dict((obs.extra or {}).get("reid") or {})


def _set_reid(obs: Observation, data: dict[str, Any]) -> None:
    # JSON columns are not mutation-tracked: assign a new dict so the change is saved
    extra = dict(obs.extra or {})
    extra["reid"] = data
    obs.extra = extra


def observation_box(obs: Observation) -> tuple[float, float, float, float] | None:
    if obs.bbox_x is None or obs.bbox_width is None or obs.bbox_y is None or obs.bbox_height is None:
        return None
    return (obs.bbox_x, obs.bbox_y, obs.bbox_width, obs.bbox_height)


class Catalogue:
    """Catalogue operations on one workspace; the descriptor index lives in ``<data dir>/reid/``."""

    def __init__(self, ws: Workspace, params: FeatureParams = DEFAULT_PARAMS,
                 references: int = BACKGROUND_REFERENCES) -> None:
        self.ws = ws
        self.params = params
        self.references = references
        self._index: FeatureIndex | None = None

    # --- the index ------------------------------------------------------------------------

    @property
    def index_root(self) -> Path:
        return self.ws.settings.data_dir / "reid" / self.params.key

    @property
    def index(self) -> FeatureIndex:
        """The catalogue photos' index, brought in step with the store on first use."""
        if self._index is None:
            self._index = FeatureIndex.open(self.index_root, self.params.key)
            self.sync_index()
        return self._index

    def sync_index(self) -> dict[str, int]:
        """Make the index match the store's human decisions: add, relabel, withdraw.

        The store is the truth; the index is derived from it. A crash between a committed decision
        and the index write is repaired here, and ``reindex`` is this on an empty folder.
        """
        idx = self._index if self._index is not None else FeatureIndex.open(self.index_root, self.params.key)
        self._index = idx
        counts = {"added": 0, "relabelled": 0, "withdrawn": 0}
        with self.ws.db.session() as s:
            rows = list(s.execute(
                select(Observation, Media, Individual.scientific_name)
                .join(Media, Media.id == Observation.media_id)
                .join(Individual, Individual.id == Observation.individual_id)
                .where(Observation.classification_method == "human", Observation.individual_id.is_not(None))
            ).all())
            wanted: set[int] = set()
            for obs, media, species in rows:
                ann_id = annotation_id(obs.id)
                wanted.add(ann_id)
                flank = _reid(obs).get("flank")
                if ann_id in idx:
                    ann = idx.annotation(ann_id)
                    if ann.individual != obs.individual_id or ann.flank != flank or not ann.active:
                        idx.relabel([ann_id], obs.individual_id or "", save=False)
                        idx.set_flank(ann_id, flank, save=False)
                        idx.set_active([ann_id], True, save=False)
                        counts["relabelled"] += 1
                    continue
                feats = photo_features(self.ws, s, media, observation_box(obs), self.params,
                                       references=self.references)
                idx.add(Annotation(ann_id, obs.individual_id or "", flank, species or obs.scientific_name,
                                   media_id=media.id, observation_id=obs.id), feats, save=False)
                counts["added"] += 1
        stale = [a.id for a in idx.annotations if a.active and a.id not in wanted]
        if stale:
            idx.set_active(stale, False, save=False)
            counts["withdrawn"] = len(stale)
        idx.save()
        return counts

    def reindex(self) -> dict[str, int]:
        """Rebuild the index from the store (after a feature change, or a lost folder)."""
        import shutil

        if self.index_root.exists():
            shutil.rmtree(self.index_root)
        self._index = None
        self._index = FeatureIndex.open(self.index_root, self.params.key)
        counts = self.sync_index()
        self._index.fold()
        return counts

    # --- looking up ------------------------------------------------------------------------

    def find(self, s: Session, code_or_id: str, *, follow_merges: bool = True) -> Individual:
        """The individual with this code (or row id); a merged one leads to its survivor."""
        ind = s.scalars(select(Individual).where(Individual.code == code_or_id)).first()
        ind = ind or s.get(Individual, code_or_id)
        if ind is None:
            raise CatalogueError(f"no individual with code {code_or_id!r}; `pardus individuals list` shows the codes")
        seen = {ind.id}
        while follow_merges and ind.merged_into:
            nxt = s.get(Individual, ind.merged_into)
            if nxt is None or nxt.id in seen:
                break
            seen.add(nxt.id)
            ind = nxt
        return ind

    def next_code(self, s: Session, species: str | None) -> str:
        prefix = SPECIES_PREFIX.get(species or "", "IND")
        codes = s.scalars(select(Individual.code).where(Individual.code.like(f"{prefix}_%"))).all()
        nums = [int(m.group(1)) for c in codes if (m := re.fullmatch(rf"{prefix}_(\d+)", c))]
        return f"{prefix}_{max(nums, default=0) + 1:03d}"

    def proposal(self, s: Session, proposal_id: str) -> Observation:
        """A machine proposal by id, or by the first characters of its id as the review list shows them."""
        obs = s.get(Observation, proposal_id)
        if obs is None and len(proposal_id) >= 6:
            found = list(s.scalars(select(Observation).where(Observation.id.like(f"{proposal_id}%"),
                                                             Observation.classification_method == "machine").limit(2)))
            if len(found) > 1:
                raise CatalogueError(f"{proposal_id!r} fits several proposals; give more of its characters")
            obs = found[0] if found else None
        if obs is None or obs.classification_method != "machine" or "reid" not in (obs.extra or {}):
            raise CatalogueError(
                f"{proposal_id!r} is not a re-identification proposal; `pardus reid review` lists them")
        return obs

    # --- operations ---------------------------------------------------------------------------

    def create(self, *, by: str, code: str | None = None, name: str | None = None, species: str | None = None,
               sex: str | None = None, notes: str | None = None, details: dict[str, Any] | None = None,
               s: Session | None = None) -> Individual:
        """A new individual (no photo yet); ``code`` is made from the species when not given."""
        if s is None:
            with self.ws.db.session() as s2:
                ind = self.create(by=by, code=code, name=name, species=species, sex=sex, notes=notes,
                                  details=details, s=s2)
                s2.expunge(ind)
                return ind
        if sex not in (None, "female", "male", "unknown"):
            raise CatalogueError(f"sex must be female, male or unknown, not {sex!r}")
        code = code or self.next_code(s, species)
        if s.scalars(select(Individual).where(Individual.code == code)).first() is not None:
            raise CatalogueError(f"the code {code} is already used; choose another or leave it out for a new one")
        ind = Individual(code=code, name=name, scientific_name=species, sex=sex, notes=notes)
        s.add(ind)
        s.flush()
        s.add(IndividualEvent(individual_id=ind.id, action="create", by=by,
                              details={"code": code, "name": name, "species": species, "sex": sex, **(details or {})}))
        return ind

    def confirm(self, proposal_id: str, code: str, *, by: str, flank: str | None = None) -> Observation:
        """A person says the proposal's photo shows individual ``code`` (on ``flank``)."""
        with self.ws.db.session() as s:
            prop = self.proposal(s, proposal_id)
            ind = self.find(s, code)
            obs = self._confirm(s, prop.media_id or "", observation_box(prop), ind, flank, by, prop)
            obs_id = obs.id
        return self._after_confirm(obs_id)

    def confirm_photo(self, media_id: str, code: str, *, by: str, box: tuple[float, float, float, float] | None = None,
                      flank: str | None = None) -> Observation:
        """Record a known identity without a machine proposal (e.g. a park's earlier ID sheets)."""
        with self.ws.db.session() as s:
            obs = self._confirm(s, media_id, box, self.find(s, code), flank, by, None)
            obs_id = obs.id
        return self._after_confirm(obs_id)

    def _after_confirm(self, obs_id: str) -> Observation:
        """Add the newly confirmed photo to the index (no rebuild) and hand back its observation."""
        self.sync_index()
        with self.ws.db.session() as s:
            out = s.get(Observation, obs_id)
            assert out is not None
            s.expunge(out)
            return out

    def confirm_new(self, proposal_id: str, *, by: str, code: str | None = None, name: str | None = None,
                    sex: str | None = None, species: str | None = None, flank: str | None = None) -> Individual:
        """The proposal shows an animal not yet in the catalogue: create it and confirm the photo."""
        with self.ws.db.session() as s:
            prop = self.proposal(s, proposal_id)
            species = species or prop.scientific_name
            ind = self.create(by=by, code=code, name=name, species=species, sex=sex, s=s,
                              details={"from_proposal": prop.id, "media_id": prop.media_id,
                                       "machine_new_probability": _reid(prop).get("new_probability")})
            self._confirm(s, prop.media_id or "", observation_box(prop), ind, flank, by, prop)
            s.flush()
            s.expunge(ind)
        self.sync_index()
        return ind

    def _confirm(self, s: Session, media_id: str, box: tuple[float, float, float, float] | None, ind: Individual,
                 flank: str | None, by: str, prop: Observation | None) -> Observation:
        if flank not in (None, *FLANKS):
            raise CatalogueError(f"flank must be left or right (or left out when unsure), not {flank!r}")
        media = s.get(Media, media_id)
        if media is None:
            raise CatalogueError(f"no photo {media_id!r} in this data folder")
        if ind.merged_into:
            raise CatalogueError(f"{ind.code} was merged into another individual; confirm the survivor instead")
        rank = prob = None
        if prop is not None:
            data = _reid(prop)
            decision = data.get("decision")
            if decision and decision.get("status") == "confirmed":
                raise CatalogueError(f"this proposal was already confirmed as {decision.get('code')} by "
                                     f"{decision.get('by')}; split or merge to change it")
            for r, c in enumerate(data.get("candidates") or []):
                if c.get("individual_id") == ind.id:
                    rank, prob = r + 1, c.get("probability")
        now = utcnow()
        obs = Observation(
            deployment_id=media.deployment_id, media_id=media.id, observation_level="media",
            observation_type="animal", scientific_name=ind.scientific_name or (prop.scientific_name if prop else None),
            count=1, individual_id=ind.id,
            bbox_x=box[0] if box else None, bbox_y=box[1] if box else None,
            bbox_width=box[2] if box else None, bbox_height=box[3] if box else None,
            classification_method="human", classified_by=by, classification_timestamp=now,
            extra={"reid": {"flank": flank, "proposal_id": prop.id if prop else None,
                            "machine_rank": rank, "machine_probability": prob}},
        )
        s.add(obs)
        s.flush()
        if prop is not None:
            data = _reid(prop)
            data["decision"] = {"status": "confirmed", "individual_id": ind.id, "code": ind.code, "by": by,
                                "at": now.isoformat(), "observation_id": obs.id}
            _set_reid(prop, data)
        s.add(IndividualEvent(individual_id=ind.id, action="confirm", by=by, at=now, details={
            "observation_id": obs.id, "media_id": media.id, "proposal_id": prop.id if prop else None,
            "flank": flank, "machine_rank": rank, "machine_probability": prob}))
        self._refresh_seen(s, ind)
        return obs

    def reject(self, proposal_id: str, code: str, *, by: str, reason: str | None = None) -> None:
        """A person says the proposal's photo does not show ``code``; the rejection is kept."""
        with self.ws.db.session() as s:
            prop = self.proposal(s, proposal_id)
            ind = self.find(s, code)
            data = _reid(prop)
            cand = next((c for c in data.get("candidates") or [] if c.get("individual_id") == ind.id), None)
            rejected = list(data.get("rejected") or [])
            rejected.append({"individual_id": ind.id, "code": ind.code, "by": by, "at": utcnow().isoformat(),
                             "reason": reason})
            data["rejected"] = rejected
            _set_reid(prop, data)
            s.add(IndividualEvent(individual_id=ind.id, action="reject", by=by, details={
                "proposal_id": prop.id, "media_id": prop.media_id, "reason": reason,
                "machine_score": cand.get("score") if cand else None,
                "machine_probability": cand.get("probability") if cand else None}))

    def merge(self, keep: str, gone: str, *, by: str, reason: str | None = None) -> Individual:
        """``gone`` and ``keep`` are the same animal: every photo of ``gone`` moves to ``keep``."""
        with self.ws.db.session() as s:
            k, g = self.find(s, keep), self.find(s, gone)
            if k.id == g.id:
                raise CatalogueError(f"{keep} and {gone} are already the same individual")
            if k.scientific_name and g.scientific_name and k.scientific_name != g.scientific_name:
                raise CatalogueError(f"{k.code} is {k.scientific_name} and {g.code} is {g.scientific_name}; "
                                     "individuals of different species cannot be merged")
            moved = list(s.scalars(select(Observation).where(Observation.individual_id == g.id)))
            ids = [o.id for o in moved]
            for o in moved:
                o.individual_id = k.id
            snapshot = {"code": g.code, "name": g.name, "sex": g.sex, "notes": g.notes}
            g.merged_into = k.id
            now = utcnow()
            s.add(IndividualEvent(individual_id=k.id, action="merge", by=by, at=now, details={
                "merged": g.id, "merged_code": g.code, "observations": ids, "reason": reason,
                "merged_record": snapshot}))
            s.add(IndividualEvent(individual_id=g.id, action="merged-into", by=by, at=now, details={
                "into": k.id, "into_code": k.code, "observations": ids, "reason": reason}))
            if not k.sex and g.sex:
                k.sex = g.sex
            self._refresh_seen(s, k)
            self._refresh_seen(s, g)
            s.flush()
            s.expunge(k)
        self.sync_index()
        return k

    def undo_merge(self, event_id: int, *, by: str) -> Individual:
        """Put back the photos a ``merge`` event moved and bring the merged record back to life."""
        with self.ws.db.session() as s:
            ev = s.get(IndividualEvent, event_id)
            if ev is None or ev.action != "merge":
                raise CatalogueError(f"event {event_id} is not a merge; `pardus individuals show CODE` lists events")
            g = s.get(Individual, ev.details["merged"])
            k = s.get(Individual, ev.individual_id)
            assert g is not None and k is not None
            back = [o for o in s.scalars(select(Observation).where(Observation.id.in_(ev.details["observations"])))
                    if o.individual_id == k.id]
            for o in back:
                o.individual_id = g.id
            g.merged_into = None
            ids = [o.id for o in back]
            s.add(IndividualEvent(individual_id=k.id, action="unmerge", by=by,
                                  details={"undoes_event": ev.id, "restored": g.id, "observations": ids}))
            s.add(IndividualEvent(individual_id=g.id, action="restored", by=by,
                                  details={"undoes_event": ev.id, "from": k.id, "observations": ids}))
            self._refresh_seen(s, k)
            self._refresh_seen(s, g)
            s.flush()
            s.expunge(g)
        self.sync_index()
        return g

    def split(self, code: str, observation_ids: Sequence[str], *, by: str, new_code: str | None = None,
              name: str | None = None, sex: str | None = None, reason: str | None = None) -> Individual:
        """Some photos of ``code`` show another animal: they move to a new individual."""
        with self.ws.db.session() as s:
            src = self.find(s, code)
            obs = list(s.scalars(select(Observation).where(Observation.id.in_(list(observation_ids)))))
            wrong = sorted(set(observation_ids) - {o.id for o in obs if o.individual_id == src.id})
            if wrong:
                raise CatalogueError(f"these observations are not photos of {src.code}: {', '.join(wrong)}")
            total = s.scalar(select(func.count()).select_from(Observation).where(Observation.individual_id == src.id))
            if len(obs) == total:
                raise CatalogueError(f"that would move every photo of {src.code}; give only the photos of the other "
                                     "animal (or rename the individual instead)")
            ids = [o.id for o in obs]
            new = self.create(by=by, code=new_code, name=name, species=src.scientific_name, sex=sex, s=s,
                              details={"split_from": src.id, "split_from_code": src.code, "observations": ids})
            for o in obs:
                o.individual_id = new.id
            s.add(IndividualEvent(individual_id=src.id, action="split", by=by, details={
                "new": new.id, "new_code": new.code, "observations": ids, "reason": reason}))
            self._refresh_seen(s, src)
            self._refresh_seen(s, new)
            s.flush()
            s.expunge(new)
        self.sync_index()
        return new

    def undo_split(self, event_id: int, *, by: str) -> Individual:
        """Put a split back: the record the ``split`` event made is merged into the one it came from
        (a merge, so the history keeps both steps and the merge itself can be undone)."""
        with self.ws.db.session() as s:
            ev = s.get(IndividualEvent, event_id)
            if ev is None or ev.action != "split":
                raise CatalogueError(f"event {event_id} is not a split; `pardus individuals show CODE` lists events")
            src, new = s.get(Individual, ev.individual_id), s.get(Individual, ev.details.get("new") or "")
            if src is None or new is None:
                raise CatalogueError(f"the records of split {event_id} are no longer in the catalogue")
            if new.merged_into:
                raise CatalogueError(f"{new.code} was already merged into another individual")
            keep, gone = src.code, new.code
        return self.merge(keep, gone, by=by, reason=f"undoes split {event_id}")

    def _refresh_seen(self, s: Session, ind: Individual) -> None:
        s.flush()
        first, last = s.execute(
            select(func.min(Media.timestamp), func.max(Media.timestamp))
            .join(Observation, Observation.media_id == Media.id)
            .where(Observation.individual_id == ind.id, Observation.classification_method == "human")
        ).one()
        ind.first_seen, ind.last_seen = first, last

    # --- reading -----------------------------------------------------------------------------

    def history(self, code: str) -> list[IndividualEvent]:
        """Every event of this individual and of every record merged into it, oldest first."""
        with self.ws.db.session() as s:
            ind = self.find(s, code)
            ids = lineage(s, ind.id)
            events = list(s.scalars(select(IndividualEvent).where(IndividualEvent.individual_id.in_(ids))
                                    .order_by(IndividualEvent.at, IndividualEvent.id)))
            s.expunge_all()
            return events


    def photo_trail(self, observation_id: str) -> list[IndividualEvent]:
        """Every event that named this photo: who confirmed it, and each merge or split that moved it."""
        with self.ws.db.session() as s:
            events = [e for e in s.scalars(select(IndividualEvent).order_by(IndividualEvent.at, IndividualEvent.id))
                      if e.details.get("observation_id") == observation_id
                      or observation_id in (e.details.get("observations") or [])]
            s.expunge_all()
            return events

    def summaries(self, codes: Iterable[str] | None = None, *, include_merged: bool = False) -> list[IndividualSummary]:
        with self.ws.db.session() as s:
            q = select(Individual).order_by(Individual.code)
            inds = list(s.scalars(q))
            if codes is not None:
                wanted = set(codes)
                inds = [i for i in inds if i.code in wanted or i.id in wanted]
            elif not include_merged:
                inds = [i for i in inds if not i.merged_into]
            photos: dict[str, list[tuple[Observation, str]]] = defaultdict(list)
            rows = s.execute(select(Observation, Media.deployment_id).join(Media, Media.id == Observation.media_id)
                             .where(Observation.classification_method == "human",
                                    Observation.individual_id.in_([i.id for i in inds]))).all()
            for o, dep in rows:
                photos[o.individual_id or ""].append((o, dep))
            idx = self._index
            out = []
            for ind in inds:
                per_flank: dict[str, int] = defaultdict(int)
                best: dict[str, list[tuple[int, str]]] = defaultdict(list)
                for o, _ in photos[ind.id]:
                    flank = _reid(o).get("flank") or "unknown"
                    per_flank[flank] += 1
                    ann = annotation_id(o.id)
                    n = idx.annotation(ann).count if idx is not None and ann in idx else 0
                    best[flank].append((n, o.id))
                out.append(IndividualSummary(
                    id=ind.id, code=ind.code, name=ind.name, species=ind.scientific_name, sex=ind.sex,
                    first_seen=ind.first_seen, last_seen=ind.last_seen, photos=len(photos[ind.id]),
                    photos_per_flank=dict(per_flank),
                    best_photos={f: [oid for _, oid in sorted(v, reverse=True)[:3]] for f, v in best.items()},
                    merged_into=ind.merged_into, notes=ind.notes,
                    stations=sorted({dep for _, dep in photos[ind.id]}),
                ))
            return out


def lineage(s: Session, ind_id: str) -> set[str]:
    """This record's id and the ids of every record merged into it, however deep the merges go."""
    ids = {ind_id}
    frontier = [ind_id]
    while frontier:
        merged = s.scalars(select(Individual.id).where(Individual.merged_into.in_(frontier))).all()
        frontier = [m for m in merged if m not in ids]
        ids.update(frontier)
    return ids
