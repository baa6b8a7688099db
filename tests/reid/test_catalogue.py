"""The catalogue and the reid stage on a real store (SQLite and PostgreSQL) with rendered leopards.

Photos go in through the real card import; the detection boxes are the renderer's true boxes
(recorded as Detection rows by 'virtual-park truth'), so these tests need no detector weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from pardus.pipeline.core import run_stage
from pardus.reid.catalogue import Catalogue, CatalogueError, annotation_id
from pardus.reid.features import FeatureParams
from pardus.reid.match import Calibration
from pardus.reid.stage import ReidStage, calibrate_from_catalogue, load_calibration, save_calibration
from pardus.store import Workspace
from pardus.store.models import Individual, IndividualEvent, Media, Observation

PARAMS = FeatureParams(chip_sqrt_area=400, max_features=350)  # small and fast; same code path
BY = "ranger Olga"
Card = tuple[Path, dict[str, tuple[float, float, float, float]]]
Loader = Callable[[Workspace, Card], dict[str, str]]


def _proposal(ws: Workspace, media_id: str) -> Observation:
    with ws.db.session() as s:
        obs = s.scalars(select(Observation).where(Observation.media_id == media_id,
                                                  Observation.classification_method == "machine")).one()
        s.expunge(obs)
        return obs


def _bursts(ws: Workspace, media: dict[str, str], groups: list[list[str]]) -> None:
    """Put the card's photos into these encounters (the rendered card is one burst a minute apart)."""
    with ws.db.session() as s:
        for i, names in enumerate(groups):
            for n in names:
                m = s.get(Media, media[n])
                assert m is not None
                m.sequence_id = f"visit-{i}"


def test_catalogue_workflow_with_the_stage(workspace: Workspace, card: Card, load_card: Loader) -> None:
    media = load_card(workspace, card)
    _bursts(workspace, media, [[n] for n in sorted(media)])  # five visits
    cat = Catalogue(workspace, PARAMS, references=1)
    a = cat.create(by=BY, name="Berry", species="Panthera pardus orientalis", sex="female")
    b = cat.create(by=BY, species="Panthera pardus orientalis")
    assert (a.code, b.code) == ("LEO_001", "LEO_002")
    cat.confirm_photo(media["IMG_0001.JPG"], a.code, by=BY, box=card[1]["IMG_0001.JPG"], flank="left")
    cat.confirm_photo(media["IMG_0002.JPG"], b.code, by=BY, box=card[1]["IMG_0002.JPG"], flank="left")
    assert len(cat.index) == 2

    # the park's own calibration (as `openset.calibrate` would write it): 50 % at a score of 1
    save_calibration(workspace, Calibration(slope=4.0, intercept=-4.0 * math.log(2.0), new_threshold=0.5,
                                            source="test park"))
    stage = ReidStage(params=PARAMS, references=1)
    run = run_stage(workspace, stage, media_ids=[media[n] for n in ("IMG_0003.JPG", "IMG_0004.JPG", "IMG_0005.JPG")])
    assert run.done == 3 and run.failed == 0, run.errors

    # the machine proposes A for photo 3 and B for photo 4; proposals carry no identity
    p3, p4, p5 = (_proposal(workspace, media[n]) for n in ("IMG_0003.JPG", "IMG_0004.JPG", "IMG_0005.JPG"))
    for p in (p3, p4, p5):
        assert p.individual_id is None and p.classified_by == stage.model_key
    assert p3.extra["reid"]["candidates"][0]["code"] == a.code
    assert p4.extra["reid"]["candidates"][0]["code"] == b.code
    assert not p3.extra["reid"]["is_new"] and p3.extra["reid"]["new_probability"] < 0.5
    # C was never catalogued: the stage says "previously unknown individual" (the alert room's contract)
    assert p5.extra["reid"]["is_new"] is True and p5.extra["reid"]["new_probability"] > 0.5, p5.extra["reid"]
    assert set(p5.extra["reid"]) >= {"is_new", "new_probability", "candidates"}
    assert p5.extra["reid"]["calibration"] == "test park"
    # whatever the calibration, C's best (wrong) evidence is far below a true match's: no photo lines
    # up at all (its chance votes went to the distractor coats), or a score a fifth of a true match's
    c_best = p5.extra["reid"]["candidates"][0]
    assert c_best["score"] is None or c_best["score"] < 0.2 * p3.extra["reid"]["candidates"][0]["score"]

    # confirm: a human observation with the identity; the photo is searchable at once, nothing rebuilt
    obs = cat.confirm(p3.id, a.code, by=BY, flank="left")
    assert obs.individual_id == a.id and obs.classification_method == "human" and obs.classified_by == BY
    assert annotation_id(obs.id) in cat.index and len(cat.index) == 3
    with pytest.raises(CatalogueError, match="already confirmed"):
        cat.confirm(p3.id, b.code, by=BY)

    # reject: kept on the proposal and in B's history
    cat.reject(p4.id, a.code, by=BY, reason="ear notch differs")
    assert _proposal(workspace, media["IMG_0004.JPG"]).extra["reid"]["rejected"][0]["code"] == a.code

    # create from a proposal the machine called new
    c = cat.confirm_new(p5.id, by=BY, name="Newcomer", flank="right", species="Panthera pardus orientalis")
    assert (c.code, c.name, c.scientific_name) == ("LEO_003", "Newcomer", "Panthera pardus orientalis")
    summary = {x.code: x for x in cat.summaries()}
    assert summary[a.code].photos == 2 and summary[a.code].photos_per_flank == {"left": 2}
    assert summary[a.code].first_seen is not None and summary[a.code].first_seen <= summary[a.code].last_seen
    assert summary["LEO_003"].best_photos["right"]

    with workspace.db.session() as s:
        actions = [e.action for e in s.scalars(select(IndividualEvent).order_by(IndividualEvent.id))]
    assert actions == ["create", "create", "confirm", "confirm", "confirm", "reject", "create", "confirm"]

    # the park's own calibration from its confirmed photos: A's two photos find each other (known),
    # every photo with its animal withdrawn is a new one
    cal, report, n_queries = calibrate_from_catalogue(cat)
    assert n_queries == 2 + 4 and cal.slope > 0
    assert cal.source == "catalogue (4 photos, 4 encounters, bursts left out)"
    assert report.recall == 1.0 and report.true_known == 2
    assert load_calibration(workspace) == cal

    # A's two photos in one burst: frames of one encounter never stand for each other, so no
    # catalogue photo has a known match left and the park is told to confirm more encounters
    _bursts(workspace, media, [["IMG_0001.JPG", "IMG_0003.JPG"], ["IMG_0002.JPG"], ["IMG_0005.JPG"]])
    with pytest.raises(ValueError, match="at least two encounters"):
        calibrate_from_catalogue(cat)


def test_merge_and_split_keep_the_full_history(workspace: Workspace, card: Card, load_card: Loader) -> None:
    media = load_card(workspace, card)
    cat = Catalogue(workspace, PARAMS, references=1)
    a = cat.create(by=BY, code="SC_026", name="Berry", species="Panthera pardus orientalis", sex="female")
    b = cat.create(by="ranger Ivan", code="SC_031", species="Panthera pardus orientalis")
    obs_a = [cat.confirm_photo(media[n], "SC_026", by=BY, box=card[1][n], flank="left").id
             for n in ("IMG_0001.JPG", "IMG_0003.JPG")]
    obs_b = [cat.confirm_photo(media[n], "SC_031", by="ranger Ivan", box=card[1][n], flank="left").id
             for n in ("IMG_0002.JPG", "IMG_0004.JPG")]

    merged = cat.merge("SC_026", "SC_031", by="Dr. Petrova", reason="same animal, two codes")
    assert merged.id == a.id
    with workspace.db.session() as s:
        gone = s.get(Individual, b.id)
        assert gone is not None and gone.merged_into == a.id  # the record stays, pointing to the survivor
        assert {o.individual_id for o in s.scalars(select(Observation).where(Observation.id.in_(obs_b)))} == {a.id}
    # the index follows without re-extraction: B's photos now vote for A
    assert {cat.index.annotation(annotation_id(o)).individual for o in obs_a + obs_b} == {a.id}
    # the merged code still finds the survivor, and its history is part of the survivor's
    assert cat.summaries(["SC_026"])[0].photos == 4
    hist = cat.history("SC_031")
    assert [e.action for e in hist] == ["create", "create", "confirm", "confirm", "confirm", "confirm", "merge",
                                        "merged-into"]
    merge_ev = next(e for e in hist if e.action == "merge")
    assert merge_ev.by == "Dr. Petrova" and sorted(merge_ev.details["observations"]) == sorted(obs_b)
    assert merge_ev.details["merged_code"] == "SC_031"

    # split: photo 2 was another animal after all
    new = cat.split("SC_026", [obs_b[0]], by="Dr. Petrova", new_code="SC_040", reason="different rosettes")
    with workspace.db.session() as s:
        assert s.get(Observation, obs_b[0]).individual_id == new.id  # type: ignore[union-attr]
    assert cat.index.annotation(annotation_id(obs_b[0])).individual == new.id
    # every move of that photo can be traced: confirmed by Ivan, merged, split off
    trail = cat.photo_trail(obs_b[0])
    assert [(e.action, e.by) for e in trail] == [("confirm", "ranger Ivan"), ("merge", "Dr. Petrova"),
                                                 ("merged-into", "Dr. Petrova"), ("create", "Dr. Petrova"),
                                                 ("split", "Dr. Petrova")]
    assert cat.history("SC_040")[0].details["split_from_code"] == "SC_026"
    with pytest.raises(CatalogueError, match="every photo"):
        cat.split("SC_040", [obs_b[0]], by=BY)
    with pytest.raises(CatalogueError, match="not photos of"):
        cat.split("SC_026", [obs_b[0]], by=BY)

    # undo the merge: what is still on the survivor goes back, the old record lives again
    restored = cat.undo_merge(merge_ev.id, by="Dr. Petrova")
    assert restored.id == b.id and restored.merged_into is None
    with workspace.db.session() as s:
        assert s.get(Observation, obs_b[1]).individual_id == b.id  # type: ignore[union-attr]
        assert s.get(Observation, obs_b[0]).individual_id == new.id  # type: ignore[union-attr]
        assert s.get(Observation, obs_a[0]).individual_id == a.id  # type: ignore[union-attr]
    assert cat.index.annotation(annotation_id(obs_b[1])).individual == b.id
    assert [e.action for e in cat.history("SC_031")][-1] == "restored"


def test_bad_requests_are_refused_with_a_reason(workspace: Workspace, card: Card, load_card: Loader) -> None:
    media = load_card(workspace, card)
    cat = Catalogue(workspace, PARAMS, references=1)
    cat.create(by=BY, code="SC_001", species="Panthera pardus orientalis")
    cat.create(by=BY, code="TG_001", species="Panthera tigris altaica")
    with pytest.raises(CatalogueError, match="already used"):
        cat.create(by=BY, code="SC_001")
    with pytest.raises(CatalogueError, match="no individual"):
        cat.confirm_photo(media["IMG_0001.JPG"], "SC_999", by=BY)
    with pytest.raises(CatalogueError, match="flank must be"):
        cat.confirm_photo(media["IMG_0001.JPG"], "SC_001", by=BY, flank="front")
    with pytest.raises(CatalogueError, match="different species"):
        cat.merge("SC_001", "TG_001", by=BY)
    with pytest.raises(CatalogueError, match="not a re-identification proposal"):
        cat.reject("nope", "SC_001", by=BY)
    with workspace.db.session() as s:
        assert s.scalars(select(Observation).where(Observation.classification_method == "human")).first() is None


def _species_call(ws: Workspace, media_id: str, det_id: int, name: str | None, best: str | None = None) -> None:
    """A species-stage call on one box, as pipeline.classify writes it."""
    with ws.db.session() as s:
        m = s.get(Media, media_id)
        assert m is not None
        s.add(Observation(deployment_id=m.deployment_id, media_id=media_id, observation_type="animal",
                          scientific_name=name, classification_method="machine", classified_by="species-test",
                          classification_probability=0.8 if name else 0.2,
                          extra={"stage": "species", "detection_id": det_id, "best": best or name,
                                 "boxes_from": None}))


def test_each_box_is_decided_on_its_own_species(workspace: Workspace, card: Card, load_card: Loader) -> None:
    from pardus.store.models import Detection

    media = load_card(workspace, card)
    _bursts(workspace, media, [[n] for n in sorted(media)])
    cat = Catalogue(workspace, PARAMS, references=1)
    cat.create(by=BY, code="SC_026", species="Panthera uncia")
    cat.create(by=BY, code="SC_031", species="Panthera uncia")
    cat.confirm_photo(media["IMG_0001.JPG"], "SC_026", by=BY, box=card[1]["IMG_0001.JPG"], flank="left")
    cat.confirm_photo(media["IMG_0002.JPG"], "SC_031", by=BY, box=card[1]["IMG_0002.JPG"], flank="left")
    with workspace.db.session() as s:
        det = {d.media_id: d.id for d in s.scalars(select(Detection))}  # one true box per photo
        dog = Detection(media_id=media["IMG_0003.JPG"], category="animal", score=0.95, x=0.02, y=0.6, w=0.2, h=0.3,
                        model_name="virtual-park-truth", model_version="1")
        s.add(dog)
        s.flush()
        dog_id = dog.id
    # photo 3: a dog beside the leopard, the dog's box first by score; the leopard called by the
    # default map's name although the park records snow leopards
    _species_call(workspace, media["IMG_0003.JPG"], dog_id, "Canis familiaris")
    _species_call(workspace, media["IMG_0003.JPG"], det[media["IMG_0003.JPG"]], "Panthera pardus orientalis")
    _species_call(workspace, media["IMG_0004.JPG"], det[media["IMG_0004.JPG"]], None, best="Panthera uncia")
    _species_call(workspace, media["IMG_0005.JPG"], det[media["IMG_0005.JPG"]], "Panthera uncia")
    save_calibration(workspace, Calibration(slope=4.0, intercept=-4.0 * math.log(2.0), new_threshold=0.5,
                                            source="test park"))
    stage = ReidStage(params=PARAMS, references=1, min_coat_features=10**6)
    run = run_stage(workspace, stage, media_ids=list(media.values()))
    assert run.done == 5 and run.failed == 0, run.errors
    with workspace.db.session() as s:
        props = {n: list(s.scalars(select(Observation).where(Observation.media_id == m,
                                                              Observation.classified_by == stage.model_key)))
                 for n, m in media.items()}
    assert not props["IMG_0001.JPG"] and not props["IMG_0002.JPG"], "a box a person identified gets no proposal"
    assert len(props["IMG_0003.JPG"]) == 1, "the dog is skipped, the leopard beside it is matched"
    p3 = props["IMG_0003.JPG"][0].extra["reid"]
    assert p3["detection_id"] == det[media["IMG_0003.JPG"]] and p3["candidates"][0]["code"] == "SC_026"
    assert p3["species"] == "Panthera uncia" and p3["species_call"] == "Panthera pardus orientalis"
    assert props["IMG_0003.JPG"][0].scientific_name == "Panthera uncia"
    p4 = props["IMG_0004.JPG"][0].extra["reid"]  # unsure: still matched, never "new"
    assert p4["candidates"][0]["code"] == "SC_031" and p4["species"] is None and p4["species_unsure"]
    p5 = props["IMG_0005.JPG"][0].extra["reid"]  # C is new, but this stage asks for more coat than any box has
    assert p5["is_new"] is False and "features on the animal" in p5["new_withheld"]
    for p in (p3, p4, p5):  # verified candidates first, unverified ones marked and without a probability
        flags = [c["verified"] for c in p["candidates"]]
        assert flags == sorted(flags, reverse=True)
        assert all(c["probability"] is None for c in p["candidates"] if not c["verified"])
