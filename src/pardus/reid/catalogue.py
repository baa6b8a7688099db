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

**Species groups.** One coat matcher serves several species (``MATCHER_GROUPS``: the spotted cats,
the striped tigers), but individuals of different species are never compared with each other: a box
is matched against the catalogue of its own species, in the park's own names (:class:`ParkTaxa`).
When the classifier's name is one the park does not catalogue (the default map calls every spotted
big cat "Panthera pardus orientalis"; a park may record its snow leopards as *Panthera uncia*), the
box is compared with the park's catalogue of the same matcher group instead of with nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pardus.ingest.timefix import untrusted_time_clause
from pardus.reid.features import FeatureParams
from pardus.reid.index import Annotation, FeatureIndex
from pardus.reid.photos import BACKGROUND_REFERENCES, photo_features
from pardus.store import Workspace
from pardus.store.models import Individual, IndividualEvent, Media, Observation, utcnow

FLANKS = ("left", "right")
SPECIES_PREFIX = {"Panthera pardus orientalis": "LEO", "Panthera pardus": "LEO",
                  "Panthera tigris altaica": "TIG", "Panthera tigris": "TIG", "Panthera uncia": "SNL"}
DEFAULT_PARAMS = FeatureParams()
Box = tuple[float, float, float, float]

# Species whose individuals one coat matcher tells apart (genus and species; subspecies belong to
# their species). Within a group the matcher is shared, the catalogue is not: a snow leopard is never
# proposed as an Amur leopard. Only boxes of these species (or of species the park's own catalogue
# holds) are re-identified.
MATCHER_GROUPS: dict[str, tuple[str, ...]] = {
    "spotted": ("Panthera pardus", "Panthera uncia", "Panthera onca", "Acinonyx jubatus", "Neofelis nebulosa",
                "Neofelis diardi"),
    "striped": ("Panthera tigris",),
}


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


def observation_box(obs: Observation) -> Box | None:
    if obs.bbox_x is None or obs.bbox_width is None or obs.bbox_y is None or obs.bbox_height is None:
        return None
    return (obs.bbox_x, obs.bbox_y, obs.bbox_width, obs.bbox_height)


def same_box(a: Box | None, b: Box | None, tol: float = 1e-4) -> bool:
    """Two stored boxes are the same drawing (both whole frames, or equal within rounding)."""
    if a is None or b is None:
        return a is None and b is None
    return all(abs(u - v) <= tol for u, v in zip(a, b, strict=True))


def parse_box(text: str) -> Box:
    """``"x,y,w,h"`` (normalised to the frame, 0..1, top-left corner, commas, semicolons or spaces)
    as a box; a :class:`CatalogueError` says what is wrong with it."""
    parts = [p for p in re.split(r"[,; ]+", text.strip()) if p]
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        vals = []
    if len(vals) != 4 or not all(v == v for v in vals):  # v == v: not NaN
        raise CatalogueError(f"box {text!r} is not four numbers x,y,w,h (fractions of the frame, e.g. 0.1,0.2,0.5,0.4)")
    x, y, w, h = vals
    eps = 1e-6
    if min(x, y) < -eps or w <= 0 or h <= 0 or x + w > 1 + eps or y + h > 1 + eps:
        raise CatalogueError(f"box {text!r} must lie inside the frame: x,y,w,h as fractions of its width and "
                             "height (0..1), w and h above 0")
    return (x, y, w, h)


def species_key(name: str | None) -> str | None:
    """Genus and species of a scientific name, case-folded ("Panthera pardus orientalis" ->
    "panthera pardus"): a park that writes the subspecies and one that writes the species keep one
    catalogue. None for a name that is not a binomial (a genus, a family, nothing)."""
    words = (name or "").split()
    return " ".join(words[:2]).casefold() if len(words) >= 2 else None


_GROUP_OF = {species_key(sp): g for g, members in MATCHER_GROUPS.items() for sp in members}
_GROUP_MEMBERS = tuple(sp for members in MATCHER_GROUPS.values() for sp in members)


def matcher_group(name: str | None) -> str | None:
    """The coat matcher group of a species name ("spotted", "striped"), None when it has none."""
    return _GROUP_OF.get(species_key(name))


@dataclass(frozen=True)
class SearchScope:
    """Which catalogue individuals one animal box is compared with, and what may be said of it."""

    species: str | None  # the park's name for the animal's species (recorded on the proposal)
    individuals: tuple[str, ...] | None  # individual ids compared with; None: the whole catalogue
    may_be_new: bool  # a known coat-patterned animal: "probably a new individual" may be said
    note: str  # why, in words, for the review screens


class ParkTaxa:
    """The park's own taxa: the species its catalogue records, individual by individual.

    The species gate asks it which individuals a box of a given species call is compared with
    (:meth:`scope`). Made from the store once per batch, so a species changed on an individual
    counts from the next batch on, without rebuilding anything.
    """

    def __init__(self, species_of: dict[str, str | None]) -> None:
        self.species_of = species_of
        self._keys = {species_key(sp) for sp in species_of.values() if sp}

    @classmethod
    def load(cls, s: Session) -> ParkTaxa:
        rows = s.execute(select(Individual.id, Individual.scientific_name).where(Individual.merged_into.is_(None)))
        return cls({i: sp for i, sp in rows})

    def marked(self, name: str | None) -> bool:
        """A species whose individuals the park tells apart by their coat."""
        return matcher_group(name) is not None or species_key(name) in self._keys

    def _where(self, keep: Callable[[str], bool]) -> tuple[str, ...]:
        """Individuals whose species passes ``keep``, plus those with no species (they may be anything)."""
        return tuple(i for i, sp in self.species_of.items() if not sp or keep(sp))

    def scope(self, call: str | None, *, assessed: bool, best: str | None = None) -> SearchScope | None:
        """What a box with species ``call`` is compared with; None when its species has no coat to match.

        ``assessed`` False: no species stage looked at the box; it is compared with the whole
        catalogue and may be new (the behaviour without a classifier). ``call`` None with
        ``assessed``: the species stage was unsure; the box is still compared with the catalogue of
        its best guess's matcher group (every group when that names none), but never called new,
        because it may not be a cat at all.
        """
        if not assessed:
            return SearchScope(None, None, True, "no species call: compared with the whole catalogue")
        if call is None:
            group = matcher_group(best)
            members = self._where(lambda sp: matcher_group(sp) == group) if group else tuple(self.species_of)
            return SearchScope(None, members, False, f"species unsure: compared with the {group or 'whole'} "
                                                      "catalogue, never called new")
        key = species_key(call)
        if key is None:  # a genus ("Panthera") or a family: which species of it is not known
            genus = call.split()[0].casefold() if call.split() else ""
            known = {sp for sp in (*self.species_of.values(), *_GROUP_MEMBERS) if sp}
            if not any(sp.split()[0].casefold() == genus for sp in known):
                return None
            members = self._where(lambda sp: sp.split()[0].casefold() == genus)
            return SearchScope(None, members, False, f"called only {call}: compared with that genus's catalogue, "
                                                     "never called new")
        same = [sp for sp in self.species_of.values() if sp and species_key(sp) == key]
        if same:
            park_name = Counter(same).most_common(1)[0][0]
            return SearchScope(park_name, self._where(lambda sp: species_key(sp) == key), True,
                               f"compared with the catalogue of {park_name}")
        group = matcher_group(call)
        if group is None:
            return None  # a deer or a boar: no individual markings to match
        names = sorted({sp for sp in self.species_of.values() if sp and matcher_group(sp) == group})
        if names:
            # the classifier's name is not one the park records: the park's own species of that group
            species = names[0] if len(names) == 1 else call
            return SearchScope(species, self._where(lambda sp: matcher_group(sp) == group), True,
                               f"called {call}, which the park does not record: compared with its {group} "
                               f"catalogue ({', '.join(names)})")
        return SearchScope(call, self._where(lambda sp: False), True, f"no {call} is catalogued yet")


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

    def sync_index(self, progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
        """Make the index match the store's human decisions: add, relabel, re-species, withdraw.

        The store is the truth; the index is derived from it. A crash between a committed decision
        and the index write is repaired here, and ``reindex`` is this on an empty folder. It runs
        before every match batch and after every decision, so a species changed on an individual
        reaches the index at once. ``progress(done, total)`` is called per photo to extract.
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
            todo = sum(1 for obs, _, _ in rows if annotation_id(obs.id) not in idx)
            for obs, media, species in rows:
                ann_id = annotation_id(obs.id)
                wanted.add(ann_id)
                flank = _reid(obs).get("flank")
                species = species or obs.scientific_name
                if ann_id in idx:
                    ann = idx.annotation(ann_id)
                    if (ann.individual != obs.individual_id or ann.flank != flank or not ann.active
                            or ann.species != species):
                        idx.relabel([ann_id], obs.individual_id or "", save=False)
                        idx.set_flank(ann_id, flank, save=False)
                        idx.set_active([ann_id], True, save=False)
                        # FeatureIndex has no setter for the species label; the annotation is its
                        # public record and the manifest written below carries the change
                        ann.species = species
                        counts["relabelled"] += 1
                    continue
                feats = photo_features(self.ws, s, media, observation_box(obs), self.params,
                                       references=self.references)
                idx.add(Annotation(ann_id, obs.individual_id or "", flank, species,
                                   media_id=media.id, observation_id=obs.id), feats, save=False)
                counts["added"] += 1
                if progress is not None:
                    progress(counts["added"], todo)
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

    def find_photo(self, s: Session, ref: str, *, deployment: str | None = None) -> Media:
        """A stored photo by its id, sha256, path on the card or file name (``deployment`` narrows
        a name several cards share); a :class:`CatalogueError` says why none or several fit."""
        ref = ref.strip()
        if not ref:
            raise CatalogueError("no photo given: name it by file name, path on the card or sha256")
        media = s.get(Media, ref)
        if media is not None:
            return media
        q = select(Media)
        if deployment:
            q = q.where(Media.deployment_id == deployment)
        if re.fullmatch(r"[0-9a-fA-F]{64}", ref):
            found = list(s.scalars(q.where(Media.sha256 == ref.lower()).limit(2)))
        else:
            found = list(s.scalars(q.where(Media.file_path == ref).limit(10)))
            if not found:
                name = ref.replace("\\", "/").rsplit("/", 1)[-1]
                found = list(s.scalars(q.where(Media.file_name == name).limit(10)))
        if len(found) == 1:
            return found[0]
        where = f" in deployment {deployment}" if deployment else ""
        if not found:
            raise CatalogueError(f"no photo {ref!r}{where} in this data folder; import its card first "
                                 "(`pardus import-card`), or give the photo's sha256")
        deps = sorted({m.deployment_id for m in found})
        raise CatalogueError(f"{len(found)} photos fit {ref!r}{where} (deployments {', '.join(deps)}); "
                             "give its deployment or its sha256")

    def open_proposals(self, s: Session, media_id: str) -> list[Observation]:
        """The photo's re-identification proposals nobody has decided yet (current ones only)."""
        rows = s.scalars(select(Observation).where(
            Observation.media_id == media_id, Observation.classification_method == "machine",
            Observation.classified_by.like("pardus-reid%"), Observation.superseded_by.is_(None)))
        return [o for o in rows if "reid" in (o.extra or {}) and not _reid(o).get("decision")]

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

    def confirm_photo(self, media_id: str, code: str, *, by: str, box: Box | None = None,
                      flank: str | None = None) -> Observation:
        """Record a known identity without a machine proposal (e.g. a park's earlier ID sheets)."""
        with self.ws.db.session() as s:
            obs = self._confirm(s, media_id, box, self.find(s, code), flank, by, None)
            obs_id = obs.id
        return self._after_confirm(obs_id)

    def confirm_ref(self, ref: str, code: str, *, by: str, flank: str | None = None, box: Box | None = None,
                    deployment: str | None = None) -> tuple[Observation, str]:
        """Confirm what a person names: a proposal (id or its first characters), or a photo.

        A photo is found by :meth:`find_photo`. With ``box`` that box is confirmed; without, the
        photo's one open proposal when it has exactly one, else the whole frame (a photo the
        detector boxed nothing in, or that was never processed). Returns the observation and how
        the photo was taken ("proposal", "box", "whole frame").
        """
        with self.ws.db.session() as s:
            try:
                prop_id: str | None = self.proposal(s, ref).id
            except CatalogueError:
                prop_id = None
            if prop_id is None:
                media = self.find_photo(s, ref, deployment=deployment)
                media_id = media.id
                open_props = self.open_proposals(s, media_id) if box is None else []
                if len(open_props) > 1:
                    ids = ", ".join(o.id[:8] for o in open_props)
                    raise CatalogueError(f"photo {media.file_name or media.file_path} has {len(open_props)} open "
                                         f"proposals ({ids}): confirm one of them, or give --box")
                prop_id = open_props[0].id if open_props else None
            elif box is not None:
                raise CatalogueError(f"{ref!r} is a proposal, which has its own box; --box is for photos "
                                     "without a proposal")
        if prop_id is not None:
            return self.confirm(prop_id, code, by=by, flank=flank), "proposal"
        return self.confirm_photo(media_id, code, by=by, box=box, flank=flank), "box" if box else "whole frame"

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

    def identities(self, s: Session, media_id: str) -> list[Observation]:
        """The identities people gave in this photo (one per animal they confirmed)."""
        return list(s.scalars(select(Observation).where(
            Observation.media_id == media_id, Observation.classification_method == "human",
            Observation.individual_id.is_not(None))))

    def _confirm(self, s: Session, media_id: str, box: Box | None, ind: Individual,
                 flank: str | None, by: str, prop: Observation | None, source: str | None = None) -> Observation:
        if flank not in (None, *FLANKS):
            raise CatalogueError(f"flank must be left or right (or left out when unsure), not {flank!r}")
        media = s.get(Media, media_id)
        if media is None:
            raise CatalogueError(f"no photo {media_id!r} in this data folder")
        if ind.merged_into:
            raise CatalogueError(f"{ind.code} was merged into another individual; confirm the survivor instead")
        if prop is None:
            for other in self.identities(s, media_id):
                if same_box(observation_box(other), box):
                    known = s.get(Individual, other.individual_id or "")
                    raise CatalogueError(f"{'this box' if box else 'the whole frame'} of photo "
                                         f"{media.file_name or media.file_path} is already confirmed as "
                                         f"{known.code if known else other.individual_id}; split or merge to "
                                         "change it")
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
            "flank": flank, "machine_rank": rank, "machine_probability": prob, "box": list(box) if box else None,
            "source": source}))
        self._refresh_seen(s, ind)
        return obs

    def edit(self, code: str, *, by: str, name: str | None = None, species: str | None = None,
             sex: str | None = None, notes: str | None = None) -> tuple[Individual, dict[str, list[Any]]]:
        """Change an individual's facts (only those given); returns it and ``{field: [old, new]}``.

        A species change also renames the species of its confirmed photos (they are the park's
        species observations) and reaches the matching index at once: from the next match on, its
        photos are compared only with boxes of that species (see :class:`ParkTaxa`).
        """
        if sex not in (None, "female", "male", "unknown"):
            raise CatalogueError(f"sex must be female, male or unknown, not {sex!r}")
        with self.ws.db.session() as s:
            ind = self.find(s, code)
            wanted = {"name": name, "scientific_name": species, "sex": sex, "notes": notes}
            changes = {k: [getattr(ind, k), v] for k, v in wanted.items() if v is not None and getattr(ind, k) != v}
            if not changes:
                s.expunge(ind)
                return ind, {}
            for k, (_, v) in changes.items():
                setattr(ind, k, v)
            if "scientific_name" in changes:
                ids = lineage(s, ind.id)  # records merged into it keep the same species (merge asks for it)
                for merged in s.scalars(select(Individual).where(Individual.id.in_(ids - {ind.id}))):
                    merged.scientific_name = species
                for o in s.scalars(select(Observation).where(Observation.individual_id.in_(ids),
                                                             Observation.classification_method == "human")):
                    o.scientific_name = species
            s.add(IndividualEvent(individual_id=ind.id, action="edit", by=by, details={"changes": changes}))
            s.flush()
            s.expunge(ind)
        self.sync_index()
        return ind, changes

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
            .where(Observation.individual_id == ind.id, Observation.classification_method == "human",
                   ~untrusted_time_clause(Media.timestamp_issues))  # a reset clock is no first sighting
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
