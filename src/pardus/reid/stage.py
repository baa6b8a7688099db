"""The ``reid`` pipeline stage: every animal box gets a ranked list of catalogue individuals.

It runs after detection, on photos with animal boxes that are not flagged as repeats (of the
detect stage ``boxes_from``: after a detector change the new boxes are matched once, and the old
boxes' undecided proposals are set aside, kept and superseded; a person's decisions stay).

**The species gate, box by box.** Each box is decided on its own species: a person's call for it
(the review desk's), else the species stage's call whose ``extra.detection_id`` is that box (current
calls only: not superseded, made on the same detector's boxes). The park's own taxa decide what it
is compared with (:class:`pardus.reid.catalogue.ParkTaxa`): a named coat-patterned species with the
catalogue of that species, in the park's names (a park recording *Panthera uncia* is matched as
well as one recording *Panthera pardus*); a box the species stage is unsure of with the catalogue
of its best guess's matcher group; a deer or a person is skipped. A box a person already
identified gets no proposal.

For each box it writes one *proposal*: a machine ``Observation`` (no ``individual_id``; only a
person gives one) whose ``extra["reid"]`` holds::

    {"is_new": bool, "new_probability": p, "candidates": [{"individual_id", "code", "name",
     "score", "probability", "flank", "photos", "inliers", "verified", "support"}, ...], "flank",
     "n_features", "coat_features", "detection_id", "species", "species_call", "species_unsure",
     "species_best", "search", "calibration", "new_withheld", "new_in_encounter",
     "photo": {"candidates", "is_new", "new_probability", "flank", "n_features", "may_be_new",
               "new_withheld"},
     "encounter": {"proposals", "photos", "support", "flank"}}

**One decision per encounter** (the photos of one burst, ``Media.sequence_id``, at one
deployment; :mod:`pardus.reid.encounter`): ``photo`` is this box's own evidence, every verified
candidate with its raw score; ``candidates``, ``is_new`` and ``new_probability`` are the
encounter's combined decision (:func:`pardus.reid.match.decide_encounter` over the burst's
proposals), updated on every undecided proposal of the burst whenever another of its photos is
written. ``candidates`` are ranked: the spatially verified ones first (with their calibrated
probability), then those with coat votes that no photo verified (``verified: false``, ``score``
and ``probability`` None), so a reviewer always has someone to compare with. "Probably new" is
said only of an encounter with a box that is a known coat-patterned species with at least
``min_coat_features`` features on the animal (``photo.may_be_new``), and once per encounter: one
proposal carries ``is_new``, the others name it in ``new_in_encounter``. ``new_withheld`` says
why an encounter was not called new when its match was weak (``photo.new_withheld``: why this
box alone would not have been).

The alert room reads exactly ``is_new``, ``new_probability`` and ``candidates`` to raise
"previously unknown individual"; keep that contract.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from pardus.pipeline.classify import animal_boxes
from pardus.pipeline.core import ItemResult, keyed_on, set_aside_stale
from pardus.reid.catalogue import DEFAULT_PARAMS, Catalogue, ParkTaxa, SearchScope, observation_box
from pardus.reid.encounter import candidate_entries, decide_proposals, photo_block
from pardus.reid.features import ChipFeatures, FeatureParams, decode_image
from pardus.reid.index import FeatureIndex
from pardus.reid.match import Calibration, MatchParams, MatchResult, match
from pardus.reid.openset import DecisionReport, calibrate
from pardus.reid.photos import BACKGROUND_REFERENCES, photo_features
from pardus.store import Workspace
from pardus.store.models import Detection, Individual, Media, Observation, utcnow

VERSION = "1"
# Species names offered where a person picks one (the web catalogue); the gate itself goes by
# matcher group and the park's own taxa (pardus.reid.catalogue.MATCHER_GROUPS, ParkTaxa).
MARKED_SPECIES = ("Panthera pardus orientalis", "Panthera pardus", "Panthera tigris altaica", "Panthera tigris",
                  "Panthera uncia")
# "Probably new" needs this many features on the animal (weights summed: scenery counts ~0): a box
# on a tail tip, a blur or a patch of rock has too little coat for "no catalogue cat has this coat"
# to mean anything. A chip of a whole flank has several hundred (900 at most by default). Chosen,
# not fitted: bench/reid.py has no boxes of that kind to fit it on.
MIN_COAT_FEATURES = 80
# A person's species call applies to a box it overlaps this much (their box is the photo's best box).
SAME_ANIMAL_IOU = 0.5


def calibration_path(ws: Workspace) -> Path:
    return ws.settings.data_dir / "reid" / "calibration.json"


def load_calibration(ws: Workspace) -> Calibration:
    """The park's own calibration when `pardus reid calibrate` made one, else the bench default."""
    path = calibration_path(ws)
    if path.exists():
        return Calibration(**json.loads(path.read_text()))
    return Calibration()


def save_calibration(ws: Workspace, cal: Calibration) -> Path:
    path = calibration_path(ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(cal), indent=2))
    return path


def coat_features(feats: ChipFeatures) -> int:
    """How many of the box's features lie on the animal: their weights summed (scenery weighs ~0)."""
    return int(round(float(np.sum(feats.weight)))) if len(feats) else 0


def match_in_scope(feats: ChipFeatures, index: FeatureIndex, scope: SearchScope, *,
                   params: MatchParams | None = None, calibration: Calibration | None = None) -> MatchResult:
    """Match one box against the catalogue individuals its species may be compared with.

    ``match`` filters by one exact species name; the park's names and the matcher groups need a
    set of individuals, which is what its ``shortlist`` takes.
    """
    cal = calibration or Calibration()
    if scope.individuals is not None and not scope.individuals:
        return MatchResult([], len(feats), None, True, 1.0)  # nobody of this species is catalogued yet
    return match(feats, index, params=params, calibration=cal,
                 shortlist=None if scope.individuals is None else list(scope.individuals))


@dataclass(frozen=True)
class BoxCall:
    """What is known of one animal box's species: ``assessed`` False when nothing looked at it,
    ``animal`` False when a person said it is no animal (a blank, a person, a vehicle)."""

    name: str | None
    assessed: bool
    best: str | None = None  # an unsure call's best guess
    animal: bool = True


def species_calls(s: Session, media_id: str) -> list[Observation]:
    """The photo's current species calls: a person's and the species stage's (not identities or
    re-id proposals, nothing superseded)."""
    rows = s.scalars(select(Observation).where(
        Observation.media_id == media_id, Observation.observation_level == "media",
        Observation.individual_id.is_(None), Observation.superseded_by.is_(None)))
    return [o for o in rows if not (o.classified_by or "").startswith("pardus-reid")]


def box_call(calls: Sequence[Observation], det: Detection, boxes_from: str | None, taxa: ParkTaxa) -> BoxCall:
    """The species of this box: a person's call covering it, else the species stage's calls on it
    (``extra.detection_id`` is the box; made on ``boxes_from``'s boxes when that is named).

    Several machine calls (a taught head beside SpeciesNet): a coat-patterned name among them wins
    (a person decides the identity anyway); only names that are all other species skip the box.
    """
    from pardus.models.detectors import Box, iou

    here = Box("animal", det.score, det.x, det.y, det.w, det.h)
    for o in calls:
        if o.classification_method != "human":
            continue
        b = observation_box(o)
        if b is None or iou(here, Box("animal", 0.0, *b)) >= SAME_ANIMAL_IOU:
            if o.observation_type != "animal":
                return BoxCall(None, True, animal=False)
            return BoxCall(o.scientific_name, True)
    mine = [o for o in calls if o.classification_method == "machine" and o.observation_type in ("animal", "human")
            and (o.extra or {}).get("detection_id") == det.id
            and (boxes_from is None or (o.extra or {}).get("boxes_from") in (None, boxes_from))]
    if not mine:
        return BoxCall(None, False)
    mine.sort(key=lambda o: -(o.classification_probability or 0.0))
    named = [o for o in mine if o.scientific_name]
    marked = [o for o in named if taxa.marked(o.scientific_name)]
    if marked or named:
        return BoxCall((marked or named)[0].scientific_name, True)
    best = next(((o.extra or {}).get("best") for o in mine if (o.extra or {}).get("best")), None)
    return BoxCall(None, True, best=best)


def proposal_scope(taxa: ParkTaxa, reid: dict[str, Any]) -> SearchScope:
    """The catalogue a stored proposal is matched against again (the review sheet), from the
    species call it recorded; a proposal written before the species gate took calls box by box
    recorded only ``species``."""
    if "species_call" in reid:
        call, assessed = reid.get("species_call"), bool(reid.get("species_call") or reid.get("species_unsure"))
    else:
        call, assessed = reid.get("species"), reid.get("species") is not None
    scope = taxa.scope(call, assessed=assessed, best=reid.get("species_best"))
    return scope or SearchScope(reid.get("species"), None, False, "species no longer marked")


def identified(s: Session, media_id: str) -> list[tuple[float, float, float, float] | None]:
    """Boxes of the photo a person already gave an identity (None: the whole frame)."""
    rows = s.scalars(select(Observation).where(Observation.media_id == media_id,
                                               Observation.classification_method == "human",
                                               Observation.individual_id.is_not(None)))
    return [observation_box(o) for o in rows]


@dataclass
class ReidStage:
    """See the module docstring."""

    params: FeatureParams = DEFAULT_PARAMS
    match_params: MatchParams = field(default_factory=MatchParams)
    top: int = 5
    references: int = BACKGROUND_REFERENCES
    boxes_from: str | None = None  # the detect stage's model key whose boxes are matched (None: any)
    min_coat_features: int = MIN_COAT_FEATURES
    name: str = "reid"

    def __post_init__(self) -> None:
        self._catalogue: Catalogue | None = None

    @property
    def model_key(self) -> str:
        return f"pardus-reid-hotspotter@{VERSION}/{self.params.key}"

    @property
    def state_key(self) -> str:
        return keyed_on(self.model_key, self.boxes_from)

    def prepare(self, ws: Workspace) -> int:
        """Set aside undecided proposals made on another detector's boxes (decided ones are history)."""
        if self.boxes_from is None:
            return 0
        decided = Observation.extra[("reid", "decision")].as_string().is_not(None)
        return set_aside_stale(ws, classified_by=self.model_key, input_stage="detect", input_key=self.boxes_from,
                               keep=decided)

    def eligible(self) -> Select[tuple[str]]:
        boxed = select(Detection.media_id).where(*animal_boxes(self.boxes_from))
        return select(Media.id).where(Media.available.is_(True), Media.file_mediatype.like("image/%"),
                                      Media.id.in_(boxed))

    def catalogue(self, ws: Workspace) -> Catalogue:
        if self._catalogue is None or self._catalogue.ws is not ws:
            self._catalogue = Catalogue(ws, self.params, self.references)
        return self._catalogue

    def process(self, ws: Workspace, media_ids: Sequence[str]) -> Iterable[ItemResult]:
        cat = self.catalogue(ws)
        cat.sync_index()  # photos confirmed (and species changed) since the last batch count at once
        cal = load_calibration(ws)
        with ws.db.session() as s:
            names = {i.id: (i.code, i.name) for i in s.scalars(select(Individual))}
            taxa = ParkTaxa.load(s)
            for mid in media_ids:
                try:
                    yield ItemResult(mid, payload=self._one(ws, s, cat, cal, names, taxa, mid))
                except (FileNotFoundError, ValueError) as exc:
                    yield ItemResult(mid, error=str(exc))

    def _one(self, ws: Workspace, s: Session, cat: Catalogue, cal: Calibration,
             names: dict[str, tuple[str, str | None]], taxa: ParkTaxa, mid: str) -> list[dict[str, Any]]:
        from pardus.models.detectors import Box, iou

        media = s.get(Media, mid)
        assert media is not None
        dets = list(s.scalars(select(Detection).where(Detection.media_id == mid, *animal_boxes(self.boxes_from))
                              .order_by(Detection.score.desc(), Detection.id)))
        calls = species_calls(s, mid)
        done = identified(s, mid)
        image = None
        out = []
        for det in dets:
            box = (det.x, det.y, det.w, det.h)
            here = Box("animal", det.score, *box)
            if any(b is None or iou(here, Box("animal", 0.0, *b)) >= SAME_ANIMAL_IOU for b in done):
                continue  # a person already said who this is
            call = box_call(calls, det, self.boxes_from, taxa)
            scope = taxa.scope(call.name, assessed=call.assessed, best=call.best) if call.animal else None
            if scope is None:
                continue  # a deer, a boar, a person: no individual markings to match
            if image is None:
                image = decode_image(ws.blobs.get_bytes(media.sha256 or ""))
            feats = photo_features(ws, s, media, box, self.params, image=image, references=self.references)
            res = match_in_scope(feats, cat.index, scope, params=self.match_params, calibration=cal)
            # the photo's own evidence keeps every verified candidate (an encounter's combined
            # ranking adds them up; a cat fifth in one frame may be first over the burst)
            keep = max(self.top, self.match_params.shortlist_individuals)
            cands = candidate_entries(res, names, keep, lambda p: cat.index.annotation(p.annotation_id).observation_id)
            payload = self.box_payload(res, cands, coat=coat_features(feats), scope=scope, call=call,
                                       calibration=cal, detection_id=det.id, box=box, det_score=det.score)
            out.append(payload)
        return out

    def box_payload(self, res: MatchResult, candidates: list[dict[str, Any]], *, coat: int, scope: SearchScope,
                    call: BoxCall, calibration: Calibration, detection_id: int | None,
                    box: tuple[float, float, float, float], det_score: float) -> dict[str, Any]:
        """One box's result as :meth:`write` stores it (``box`` and ``score`` are the detection's, for
        the observation's columns): at first the photo's own decision, until its encounter's is made.

        ``candidates`` are the photo's every verified candidate and then unverified ones
        (:func:`pardus.reid.encounter.candidate_entries`); the top level shows ``top`` of them."""
        barrier = None  # why this box may not be called new, whatever its match
        if not scope.may_be_new:
            barrier = scope.note
        elif coat < self.min_coat_features:
            barrier = f"only {coat} features on the animal; at least {self.min_coat_features} to call it new"
        photo = photo_block(res, candidates, may_be_new=barrier is None, withheld=barrier, calibration=calibration)
        return {"is_new": photo["is_new"], "new_probability": photo["new_probability"],
                "candidates": candidates[:self.top], "flank": res.flank, "n_features": res.n_features,
                "coat_features": coat, "detection_id": detection_id, "species": scope.species,
                "species_call": call.name, "species_unsure": call.assessed and call.name is None,
                "species_best": call.best, "search": scope.note, "calibration": calibration.source,
                "new_withheld": barrier if res.is_new else None, "new_in_encounter": None, "photo": photo,
                "box": list(box), "score": det_score}

    def write(self, s: Session, result: ItemResult) -> None:
        """Store the photo's proposals (each with its own evidence), then decide its encounter again
        over the burst's current proposals (:func:`pardus.reid.encounter.decide_proposals`)."""
        media = s.get(Media, result.media_id)
        assert media is not None
        # a rerun after a crash between write and state: replace undecided proposals, keep decided ones
        for old in s.scalars(select(Observation).where(Observation.media_id == media.id,
                                                       Observation.classified_by == self.model_key,
                                                       Observation.superseded_by.is_(None))):
            if not (old.extra or {}).get("reid", {}).get("decision"):
                s.execute(delete(Observation).where(Observation.id == old.id))
        now = utcnow()
        for p in result.payload:
            reid = {k: v for k, v in p.items() if k not in ("box", "score")}
            best = next((c for c in p["candidates"] if c.get("verified", True)), None)
            x, y, w, h = p["box"]
            s.add(Observation(
                deployment_id=media.deployment_id, media_id=media.id, observation_level="media",
                observation_type="animal", scientific_name=p["species"], count=1,
                bbox_x=x, bbox_y=y, bbox_width=w, bbox_height=h,
                classification_method="machine", classified_by=self.model_key, classification_timestamp=now,
                classification_probability=best["probability"] if best else None,
                extra={"reid": reid, "boxes_from": self.boxes_from},
            ))
        s.flush()
        decide_proposals(s, media, self.model_key, keep=self.top)


def calibrate_from_catalogue(cat: Catalogue) -> tuple[Calibration, DecisionReport, int]:
    """Fit the park's own calibration on its confirmed photos and save it.

    Every catalogue photo is matched twice, within its species' catalogue (as the stage matches):
    against the catalogue without its whole encounter (every photo of the same burst at the same
    deployment: frames a second apart share pose and scenery, and would flatter the fit), a known
    query when its animal has photos from other encounters; and without every photo of its animal,
    a new one. The score-to-probability curve and the "new" threshold are fitted on those labelled
    queries (:func:`pardus.reid.openset.calibrate`); the returned report gives precision and recall
    of "new" on them (fitted and scored on the same queries, so it flatters a little).
    """
    idx = cat.index
    anns = [a for a in idx.annotations if a.active]
    with cat.ws.db.session() as s:
        encounter_of = {mid: (dep, seq or mid) for mid, dep, seq in s.execute(
            select(Media.id, Media.deployment_id, Media.sequence_id)
            .where(Media.id.in_([a.media_id for a in anns if a.media_id])))}
        taxa = ParkTaxa.load(s)
    by_individual: dict[str, list[int]] = {}
    by_encounter: dict[tuple[str, str] | None, list[int]] = {}
    for a in anns:
        by_individual.setdefault(a.individual, []).append(a.id)
        by_encounter.setdefault(encounter_of.get(a.media_id or ""), []).append(a.id)
    scores: list[float] = []
    right: list[bool] = []
    new: list[bool] = []
    for a in anns:
        feats = idx.features(a.id)
        enc = encounter_of.get(a.media_id or "")
        burst = by_encounter[enc] if enc is not None else [b.id for b in anns if b.media_id == a.media_id]
        scope = taxa.scope(taxa.species_of.get(a.individual) or a.species, assessed=bool(a.species))
        shortlist = None if scope is None or scope.individuals is None else list(scope.individuals)
        if len(set(by_individual[a.individual]) - set(burst)) > 0:
            res = match(feats, idx, exclude=burst, calibration=Calibration(), shortlist=shortlist)
            scores.append(res.best.score if res.best else 0.0)
            right.append(bool(res.best) and res.best.individual == a.individual)  # type: ignore[union-attr]
            new.append(False)
        res = match(feats, idx, exclude=by_individual[a.individual], calibration=Calibration(), shortlist=shortlist)
        scores.append(res.best.score if res.best else 0.0)
        right.append(False)
        new.append(True)
    if not any(right):
        raise ValueError("the catalogue needs individuals confirmed in at least two encounters (bursts) to "
                         "calibrate; confirm photos from more encounters first")
    n_enc = len({encounter_of.get(a.media_id or "") for a in anns})
    cal, report = calibrate(scores, right, new,
                            source=f"catalogue ({len(anns)} photos, {n_enc} encounters, bursts left out)")
    save_calibration(cat.ws, cal)
    return cal, report, len(scores)
