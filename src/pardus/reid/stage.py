"""The ``reid`` pipeline stage: every animal box gets a ranked list of catalogue individuals.

It runs after detection, on photos with animal boxes that are not flagged as repeats (of the
detect stage ``boxes_from``: after a detector change the new boxes are matched once, and the old
boxes' undecided proposals are set aside, kept and superseded; a person's decisions stay). Where a
species is known for the photo (a classifier's or a person's observation), the search is limited
to that species' catalogue, and photos of species without individual markings are skipped.

For each box it writes one *proposal*: a machine ``Observation`` (no ``individual_id``; only a
person gives one) whose ``extra["reid"]`` holds::

    {"is_new": bool, "new_probability": p, "candidates": [{"individual_id", "code", "name",
     "score", "probability", "flank", "photos", "inliers"}, ...], "flank", "n_features",
     "detection_id", "species", "calibration"}

The alert room reads exactly ``is_new``, ``new_probability`` and ``candidates`` to raise
"previously unknown individual"; keep that contract.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from pardus.pipeline.classify import animal_boxes
from pardus.pipeline.core import ItemResult, keyed_on, set_aside_stale
from pardus.reid.catalogue import DEFAULT_PARAMS, Catalogue
from pardus.reid.features import FeatureParams, decode_image
from pardus.reid.match import Calibration, MatchParams, MatchResult, match
from pardus.reid.openset import DecisionReport, calibrate
from pardus.reid.photos import BACKGROUND_REFERENCES, photo_features
from pardus.store import Workspace
from pardus.store.models import Detection, Individual, Media, Observation, utcnow

VERSION = "1"
# Species whose individuals the coat pattern tells apart.
MARKED_SPECIES = ("Panthera pardus orientalis", "Panthera pardus", "Panthera tigris altaica", "Panthera tigris",
                  "Panthera uncia")


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


def result_payload(res: MatchResult, catalogue: Catalogue, names: dict[str, tuple[str, str | None]], top: int
                   ) -> dict[str, Any]:
    """The JSON a proposal stores (see the module docstring)."""
    idx = catalogue.index
    cands = []
    for c in res.candidates[:top]:
        code, name = names.get(c.individual, (c.individual, None))
        photos = [idx.annotation(p.annotation_id).observation_id for p in c.photos]
        cands.append({"individual_id": c.individual, "code": code, "name": name, "score": round(c.score, 4),
                      "probability": round(c.probability, 4), "flank": c.flank,
                      "photos": [p for p in photos if p], "inliers": int(sum(len(p.query_idx) for p in c.photos))})
    return {"is_new": bool(res.is_new), "new_probability": round(float(res.new_probability), 4),
            "candidates": cands, "flank": res.flank, "n_features": res.n_features}


@dataclass
class ReidStage:
    """See the module docstring."""

    params: FeatureParams = DEFAULT_PARAMS
    match_params: MatchParams = field(default_factory=MatchParams)
    top: int = 5
    references: int = BACKGROUND_REFERENCES
    boxes_from: str | None = None  # the detect stage's model key whose boxes are matched (None: any)
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
        cat.sync_index()  # photos confirmed since the last batch are matched at once
        cal = load_calibration(ws)
        with ws.db.session() as s:
            names = {i.id: (i.code, i.name) for i in s.scalars(select(Individual))}
            for mid in media_ids:
                try:
                    yield ItemResult(mid, payload=self._one(ws, s, cat, cal, names, mid))
                except (FileNotFoundError, ValueError) as exc:
                    yield ItemResult(mid, error=str(exc))

    def _one(self, ws: Workspace, s: Session, cat: Catalogue, cal: Calibration,
             names: dict[str, tuple[str, str | None]], mid: str) -> list[dict[str, Any]]:
        media = s.get(Media, mid)
        assert media is not None
        species = s.scalars(select(Observation.scientific_name).where(
            Observation.media_id == mid, Observation.observation_type == "animal",
            Observation.scientific_name.is_not(None), Observation.superseded_by.is_(None))
            .order_by(Observation.classification_method.desc())).first()
        if species and species not in MARKED_SPECIES:
            return []  # a deer or a boar: no individual markings to match
        dets = list(s.scalars(select(Detection).where(Detection.media_id == mid, *animal_boxes(self.boxes_from))
                              .order_by(Detection.score.desc())))
        image = decode_image(ws.blobs.get_bytes(media.sha256 or ""))
        out = []
        for det in dets:
            box = (det.x, det.y, det.w, det.h)
            feats = photo_features(ws, s, media, box, self.params, image=image, references=self.references)
            res = match(feats, cat.index, species=species, params=self.match_params, calibration=cal)
            payload = result_payload(res, cat, names, self.top)
            payload.update({"detection_id": det.id, "species": species, "calibration": cal.source,
                            "box": list(box), "score": det.score})
            out.append(payload)
        return out

    def write(self, s: Session, result: ItemResult) -> None:
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
            best = p["candidates"][0] if p["candidates"] else None
            x, y, w, h = p["box"]
            s.add(Observation(
                deployment_id=media.deployment_id, media_id=media.id, observation_level="media",
                observation_type="animal", scientific_name=p["species"], count=1,
                bbox_x=x, bbox_y=y, bbox_width=w, bbox_height=h,
                classification_method="machine", classified_by=self.model_key, classification_timestamp=now,
                classification_probability=best["probability"] if best else None,
                extra={"reid": {k: v for k, v in p.items() if k not in ("box", "score")},
                       "boxes_from": self.boxes_from},
            ))


def calibrate_from_catalogue(cat: Catalogue) -> tuple[Calibration, DecisionReport, int]:
    """Fit the park's own calibration on its confirmed photos and save it.

    Every catalogue photo is matched twice: against the catalogue without its own photo (a known
    query, when its animal has other photos) and without every photo of its animal (a new one).
    The score-to-probability curve and the "new" threshold are fitted on those labelled queries
    (:func:`pardus.reid.openset.calibrate`); the returned report gives precision and recall of
    "new" on them (fitted and scored on the same queries, so it flatters a little).
    """
    idx = cat.index
    anns = [a for a in idx.annotations if a.active]
    by_individual: dict[str, list[int]] = {}
    for a in anns:
        by_individual.setdefault(a.individual, []).append(a.id)
    scores: list[float] = []
    right: list[bool] = []
    new: list[bool] = []
    for a in anns:
        feats = idx.features(a.id)
        same_photo = [b.id for b in anns if b.media_id == a.media_id]
        if len(set(by_individual[a.individual]) - set(same_photo)) > 0:
            res = match(feats, idx, exclude=same_photo, calibration=Calibration())
            scores.append(res.best.score if res.best else 0.0)
            right.append(bool(res.best) and res.best.individual == a.individual)  # type: ignore[union-attr]
            new.append(False)
        res = match(feats, idx, exclude=by_individual[a.individual], calibration=Calibration())
        scores.append(res.best.score if res.best else 0.0)
        right.append(False)
        new.append(True)
    if not any(right):
        raise ValueError("the catalogue needs individuals with at least two confirmed photos to calibrate; "
                         "confirm more photos first")
    cal, report = calibrate(scores, right, new, source=f"catalogue ({len(anns)} photos)")
    save_calibration(cat.ws, cal)
    return cal, report, len(scores)
