"""One decision per encounter, in the stage: a burst's proposals ranked together, "new" said once.

Two kinds of test, on SQLite and PostgreSQL:

- the stage's writer (``ReidStage.box_payload`` and ``ReidStage.write``, exactly as the pipeline
  records a batch) given per-photo match results chosen so that one photo *alone* proposes the
  wrong cat or calls a known cat new: what the store keeps, photo by photo, is then fully known;
- the whole stage on rendered leopards: a burst of three photos of a catalogued cat, one of them
  showing the flank the catalogue lacks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.reid.conftest import Card, write_card

from pardus.alerts.rules import parse_rules
from pardus.live.queue import LiveWorker
from pardus.pipeline.core import ItemResult, run_stage
from pardus.reid.catalogue import Catalogue, SearchScope
from pardus.reid.encounter import candidate_entries
from pardus.reid.features import FeatureParams
from pardus.reid.match import Calibration, Candidate, MatchResult
from pardus.reid.review import encounter_verdict, review_proposal
from pardus.reid.stage import BoxCall, ReidStage, save_calibration
from pardus.store import Workspace
from pardus.store.models import Alert, Media, Observation

BY = "ranger Olga"
# 50 % sure at a score of 1 (as tests/reid/test_catalogue.py's park): below 1, "probably new"
CAL = Calibration(slope=4.0, intercept=-4.0 * math.log(2.0), new_threshold=0.5, source="test park")
LEOPARD = "Panthera pardus orientalis"
Loader = Callable[[Workspace, Card], dict[str, str]]


def _result(scores: dict[str, float]) -> MatchResult:
    """One photo's match as ``match`` returns it: verified candidates, best first, calibrated."""
    cands = sorted((Candidate(ind, "left", s, float(CAL.probability(s))) for ind, s in scores.items()),
                   key=lambda c: -c.score)
    best = cands[0].probability if cands else 0.0
    return MatchResult(cands, 400, "left", best < CAL.new_threshold, 1.0 - best)


def _write(ws: Workspace, stage: ReidStage, media_id: str, boxes: list[dict[str, float]],
           names: dict[str, tuple[str, str | None]], *, coat: int = 400) -> None:
    """Record one photo's result the way ``run_stage`` does: one session per batch, ``write``."""
    scope = SearchScope(LEOPARD, None, True, "the leopard catalogue")
    payloads = [stage.box_payload(_result(scores), candidate_entries(_result(scores), names, 10, lambda p: None),
                                  coat=coat, scope=scope, call=BoxCall(LEOPARD, True), calibration=CAL,
                                  detection_id=None, box=(0.1 + 0.3 * k, 0.2, 0.25, 0.3), det_score=0.9)
                for k, scores in enumerate(boxes)]
    with ws.db.session() as s:
        stage.write(s, ItemResult(media_id, payload=payloads))


def _reid(ws: Workspace, media_id: str, model_key: str) -> list[tuple[str, dict]]:
    with ws.db.session() as s:
        return [(o.id, o.extra["reid"]) for o in s.scalars(
            select(Observation).where(Observation.media_id == media_id, Observation.classified_by == model_key)
            .order_by(Observation.bbox_x))]


def _one(ws: Workspace, media_id: str, model_key: str) -> tuple[str, dict]:
    rows = _reid(ws, media_id, model_key)
    assert len(rows) == 1
    return rows[0]


def _burst(ws: Workspace, media_ids: list[str], sequence: str = "burst-1") -> None:
    with ws.db.session() as s:
        for mid in media_ids:
            m = s.get(Media, mid)
            assert m is not None
            m.sequence_id = sequence


@pytest.fixture
def park(workspace: Workspace, card: Card, load_card: Loader) -> tuple[Workspace, list[str], dict]:
    """The rendered card's first three photos as one burst; two leopards in the catalogue."""
    media = load_card(workspace, card)
    burst = [media[n] for n in ("IMG_0001.JPG", "IMG_0002.JPG", "IMG_0003.JPG")]
    _burst(workspace, burst)
    cat = Catalogue(workspace)
    a = cat.create(by=BY, code="LEO_001", name="Berry", species=LEOPARD)
    b = cat.create(by=BY, code="LEO_002", species=LEOPARD)
    return workspace, burst, {a.id: (a.code, a.name), b.id: (b.code, b.name)}


def test_a_burst_is_ranked_together_on_every_photo(park: tuple[Workspace, list[str], dict]) -> None:
    ws, burst, names = park
    a, b = list(names)
    stage = ReidStage()
    key = stage.model_key
    frames = [{a: 3.0, b: 1.0}, {b: 2.5, a: 1.5}, {a: 2.8, b: 0.5}]  # alone, the second frame proposes B

    _write(ws, stage, burst[0], [frames[0]], names)
    _write(ws, stage, burst[1], [frames[1]], names)
    (p1, r1), (p2, r2) = _one(ws, burst[0], key), _one(ws, burst[1], key)
    assert r2["photo"]["candidates"][0]["code"] == "LEO_002", "the photo's own evidence is kept as it was"
    assert r1["candidates"][0]["code"] == r2["candidates"][0]["code"] == "LEO_001"
    assert r2["encounter"]["proposals"] == [p1, p2] and r1["encounter"] == r2["encounter"]

    _write(ws, stage, burst[2], [frames[2]], names)  # a later frame updates the earlier proposals
    rows = [_one(ws, mid, key) for mid in burst]
    for _, r in rows:
        top = r["candidates"][0]
        assert top["code"] == "LEO_001" and top["verified"] and top["support"] == 3
        # the mean over the three photos: one photo's scale, so the photo calibration applies
        assert top["score"] == pytest.approx((3.0 + 1.5 + 2.8) / 3, abs=1e-3)
        assert top["probability"] == pytest.approx(CAL.probability(top["score"]), abs=1e-3)
        assert r["encounter"]["proposals"] == [p for p, _ in rows] and r["encounter"]["photos"] == 3
        assert r["is_new"] is False and r["new_in_encounter"] is None
    with ws.db.session() as s:  # the desk lists the encounter's ranking first, for every photo
        from pardus.reid import desk

        shown = [desk.proposal(s, pid) for pid, _ in rows]
    assert all(p is not None and [c.code for c in p.candidates[:2]] == ["LEO_001", "LEO_002"] for p in shown)
    assert all(p is not None and p.encounter_photos == 3 for p in shown)

    # a person decides the first photo: the machine never touches that proposal again, and the
    # others are ranked over the undecided photos (the person's word outweighs that photo's match)
    Catalogue(ws, FeatureParams(chip_sqrt_area=400, max_features=350), references=1).confirm(
        rows[0][0], "LEO_001", by=BY, flank="left")
    decided = _one(ws, burst[0], key)[1]
    _write(ws, stage, burst[1], [frames[1]], names)  # the second frame is matched again
    assert _one(ws, burst[0], key)[1] == decided
    (p2, r2), (p3, r3) = _one(ws, burst[1], key), _one(ws, burst[2], key)
    for r in (r2, r3):
        assert r["candidates"][0]["code"] == "LEO_001" and r["encounter"]["proposals"] == [p2, p3]
        assert r["candidates"][0]["score"] == pytest.approx((1.5 + 2.8) / 2, abs=1e-3)


def test_a_burst_of_an_unknown_cat_says_new_once_and_alerts_once(park: tuple[Workspace, list[str], dict]) -> None:
    ws, burst, names = park
    a, b = list(names)
    stage = ReidStage()
    worker = LiveWorker(ws, parse_rules("rules: [{name: unknown-leopard, kind: new-individual}]"))
    alerts = []
    # processed out of time order (a retry, a second worker): the second frame first
    for mid, scores in ((burst[1], {a: 0.3}), (burst[0], {b: 0.2, a: 0.1}), (burst[2], {a: 0.4})):
        _write(ws, stage, mid, [scores], names)
        alerts += worker.alert_on([mid])
    rows = {mid: _one(ws, mid, stage.model_key) for mid in burst}
    carriers = [pid for pid, r in rows.values() if r["is_new"]]
    assert carriers == [rows[burst[1]][0]], "the first frame written says new and keeps it"
    for mid in (burst[0], burst[2]):
        assert rows[mid][1]["new_in_encounter"] == carriers[0]
        assert rows[mid][1]["photo"]["is_new"] is True, "alone, each frame would have said new"
    assert len(alerts) == 1
    with ws.db.session() as s:
        assert s.scalars(select(Alert.media_id).where(Alert.kind == "new-individual")).all() == [burst[1]]


def test_a_later_frame_takes_new_back_and_two_animals_stay_apart(park: tuple[Workspace, list[str], dict]) -> None:
    ws, burst, names = park
    a, b = list(names)
    stage = ReidStage()
    key = stage.model_key
    _write(ws, stage, burst[0], [{b: 0.4}], names)  # a poor first frame: alone, "probably new"
    assert _one(ws, burst[0], key)[1]["is_new"] is True
    _write(ws, stage, burst[1], [{a: 3.0}], names)
    _write(ws, stage, burst[2], [{a: 2.5}, {b: 2.0}], names)  # two animals in the last frame
    r1, r2 = _one(ws, burst[0], key)[1], _one(ws, burst[1], key)[1]
    assert not r1["is_new"] and not r2["is_new"] and r1["new_in_encounter"] is None
    assert r1["candidates"][0]["code"] == r2["candidates"][0]["code"] == "LEO_001"
    assert r1["encounter"]["photos"] == 2, "the two-animal frame cannot say which box is this cat"
    (_, left), (_, right) = _reid(ws, burst[2], key)
    assert left["encounter"]["photos"] == right["encounter"]["photos"] == 1
    assert (left["candidates"][0]["code"], right["candidates"][0]["code"]) == ("LEO_001", "LEO_002")


def test_two_cats_one_after_the_other_are_two_encounters(park: tuple[Workspace, list[str], dict]) -> None:
    """A sequence is every photo up to a minute apart: two cats passing one after the other are
    told apart when two frames each name a different cat decisively."""
    ws, burst, names = park
    a, b = list(names)
    stage = ReidStage()
    key = stage.model_key
    for mid, scores in zip(burst, ({a: 20.0, b: 0.3}, {b: 18.0, a: 0.2}, {b: 0.5}), strict=True):
        _write(ws, stage, mid, [scores], names)
    (p1, r1), (p2, r2), (p3, r3) = (_one(ws, mid, key) for mid in burst)
    assert r1["candidates"][0]["code"] == "LEO_001" and r1["encounter"]["proposals"] == [p1]
    assert r2["candidates"][0]["code"] == "LEO_002" and r2["encounter"]["proposals"] == [p2]
    # once a sequence holds two cats, a frame that names neither decisively is decided alone
    assert r3["encounter"]["proposals"] == [p3] and r3["is_new"] is True


def test_too_little_coat_in_every_frame_is_never_called_new(park: tuple[Workspace, list[str], dict]) -> None:
    ws, burst, names = park
    a, _ = list(names)
    stage = ReidStage(min_coat_features=80)
    for mid in burst:
        _write(ws, stage, mid, [{a: 0.2}], names, coat=30)  # tail tips
    for mid in burst:
        r = _one(ws, mid, stage.model_key)[1]
        assert r["is_new"] is False and r["new_in_encounter"] is None
        assert "features on the animal" in r["new_withheld"]


# --- the whole stage on rendered leopards ---------------------------------------------------------

PARAMS = FeatureParams(chip_sqrt_area=400, max_features=350)  # small and fast; same code path
# (file, individual, flank, seed): the catalogue (A's left flank, B's left flank), then one burst
# of A turning: two frames of its left flank, the last of its right, which the catalogue lacks
BURST_PLAN = [("CAT_A.JPG", "SIM_A", "left", 301), ("CAT_B.JPG", "SIM_B", "left", 302),
              ("BURST_1.JPG", "SIM_A", "left", 331), ("BURST_2.JPG", "SIM_A", "left", 332),
              ("BURST_3.JPG", "SIM_A", "right", 333)]


@pytest.fixture(scope="session")
def burst_card(tmp_path_factory: pytest.TempPathFactory) -> Card:
    # the burst's frames share their camera's scene; the catalogue photos are from elsewhere
    return write_card(tmp_path_factory.mktemp("burst-card"), BURST_PLAN,
                      lambda name: 77 if name.startswith("BURST") else None)


def test_the_stage_decides_a_rendered_burst_together(workspace: Workspace, burst_card: Card,
                                                      load_card: Loader, tmp_path: Path) -> None:
    media = load_card(workspace, burst_card)
    burst = [media[n] for n in ("BURST_1.JPG", "BURST_2.JPG", "BURST_3.JPG")]
    _burst(workspace, burst)
    _burst(workspace, [media["CAT_A.JPG"]], "visit-a")
    _burst(workspace, [media["CAT_B.JPG"]], "visit-b")
    cat = Catalogue(workspace, PARAMS, references=1)
    cat.create(by=BY, code="LEO_001", species=LEOPARD)
    cat.create(by=BY, code="LEO_002", species=LEOPARD)
    cat.confirm_photo(media["CAT_A.JPG"], "LEO_001", by=BY, box=burst_card[1]["CAT_A.JPG"], flank="left")
    cat.confirm_photo(media["CAT_B.JPG"], "LEO_002", by=BY, box=burst_card[1]["CAT_B.JPG"], flank="left")
    save_calibration(workspace, CAL)
    stage = ReidStage(params=PARAMS, references=1)
    run = run_stage(workspace, stage, media_ids=burst)
    assert run.done == 3 and run.failed == 0, run.errors

    rows = [_one(workspace, mid, stage.model_key) for mid in burst]
    ids = [pid for pid, _ in rows]
    for _, r in rows:
        assert r["encounter"]["proposals"] == ids and r["encounter"]["photos"] == 3
        assert r["candidates"][0]["code"] == "LEO_001", r["candidates"]
        assert r["is_new"] is False and r["new_in_encounter"] is None
    # the right-flank frame alone finds only chance votes (the catalogue has A's left flank only):
    # alone it would have called a catalogued cat "probably new", and raised an alert
    own = rows[2][1]["photo"]
    assert own["is_new"] is True, own["candidates"]
    # the review sheet speaks for the encounter, in the order the desk lists
    verdict = encounter_verdict(rows[2][1])
    assert verdict is not None and verdict[0].startswith("Probably LEO_001") and "3 photos together" in verdict[0]
    out, _ = review_proposal(cat, ids[2], tmp_path / "sheet.jpg")
    assert out.stat().st_size > 10_000


# --- the pure parts the stage and bench/reid.py share -----------------------------------------------

def test_split_animals_keeps_one_cat_whole_and_parts_two() -> None:
    from pardus.reid.match import split_animals

    one = [_result({"A": 3.0, "B": 1.0}), _result({"B": 2.5, "A": 1.5}), _result({"A": 2.8, "B": 0.5})]
    assert split_animals(one, CAL) == [[0, 1, 2]], "one decisive name: the wrong frame is outvoted"
    two = [_result({"A": 20.0}), _result({"B": 0.4}), _result({"B": 18.0, "A": 0.2})]
    assert split_animals(two, CAL) == [[0], [1], [2]]
    assert split_animals([], CAL) == []


def test_the_station_prior_reorders_known_cats_only_as_a_prior() -> None:
    from pardus.reid.match import apply_prior, camera_prior

    assert camera_prior({}, ["A", "B"]) == {"A": 0.0, "B": 0.0}, "a camera with no catalogue photos: flat"
    prior = camera_prior({"B": 9}, ["A", "B"])  # B: 10/11 of the camera's photos (Laplace), A 1/11
    assert prior["B"] == pytest.approx(math.log(10 / 11 * 2)) and prior["A"] == pytest.approx(math.log(1 / 11 * 2))
    close = _result({"A": 1.2, "B": 1.1})
    ranked = apply_prior(close, prior, CAL)
    assert [c.individual for c in ranked.candidates] == ["B", "A"], "a near tie goes to the cat seen here"
    assert (ranked.is_new, ranked.new_probability) == (close.is_new, close.new_probability)
    clear = _result({"A": 9.0, "B": 0.5})
    assert apply_prior(clear, prior, CAL).candidates[0].individual == "A", "clear coat evidence wins"
    votes_only = MatchResult([], 400, None, True, 1.0, unverified=["A", "C", "B"])  # nothing lined up
    prior3 = camera_prior({"B": 9}, ["A", "B", "C"])
    assert apply_prior(votes_only, prior3, CAL).top(3) == ["B", "A", "C"], "the prior orders, votes break ties"
    assert apply_prior(votes_only, camera_prior({}, ["A", "B", "C"]), CAL).top(3) == ["A", "C", "B"]
