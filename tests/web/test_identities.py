"""Leopard identities in the web app, in-process on both databases: the queue of the machine's
re-identification proposals decided by a reviewer (confirm, reject, new individual, a whole
encounter), the catalogue and an individual's page, merge / split / undo, a viewer refused, and
hostile input answered 400/404 with nothing written.

The proposals are made by the real reid code: rendered virtual-park leopards go in through the
card import with their true boxes as detections, two are confirmed into the catalogue, and the
re-identification stage matches the others (as `pardus reid run` does).
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.web.test_pages import PASSWORD, sign_in

from pardus.ingest.card import import_card
from pardus.people.accounts import add_user
from pardus.pipeline.core import run_stage
from pardus.reid import desk as desk_reads
from pardus.reid.catalogue import Catalogue
from pardus.reid.match import Calibration
from pardus.reid.simulated import render_animal
from pardus.reid.stage import ReidStage, save_calibration
from pardus.store import Workspace
from pardus.store.models import Deployment, Detection, Individual, IndividualEvent, Location, Media, Observation, utcnow
from pardus.web.app import LiveConfig, create_app

# (file, animal, flank, seed): A and B are catalogued from photos 1 and 2; 3 and 4 are A and B
# again, 5 is an animal the catalogue does not have.
PLAN = [("IMG_0001.JPG", "SIM_A", "left", 301), ("IMG_0002.JPG", "SIM_B", "left", 302),
        ("IMG_0003.JPG", "SIM_A", "left", 303), ("IMG_0004.JPG", "SIM_B", "left", 304),
        ("IMG_0005.JPG", "SIM_C", "right", 305)]
Card = tuple[Path, dict[str, tuple[float, float, float, float]]]


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Card:
    return make_card(tmp_path_factory.mktemp("card"))


def make_card(root: Path) -> Card:
    """A memory card of the rendered leopards of PLAN, with each photo's true box."""
    folder = root / "DCIM" / "100RECNX"
    folder.mkdir(parents=True)
    boxes = {}
    for name, ind, flank, seed in PLAN:
        photo = render_animal(ind, flank, seed)
        (folder / name).write_bytes(photo.jpeg)
        boxes[name] = photo.box
    return root, boxes


def build_desk(ws: Workspace, card: Card) -> dict[str, str]:
    """Catalogue LEO_001 and LEO_002 from photos 1 and 2, then let the stage propose 3, 4 and 5.
    Returns file name -> media id, and 'P3'.. 'P5' -> proposal id."""
    root, boxes = card
    with ws.db.session() as s:
        s.add(Location(id="L-S01", name="Kedrovaya pad", plot="North", latitude=43.1234, longitude=131.5678,
                       sensitive=True))
        s.add(Deployment(id="LOL-S01", location_id="L-S01", start=utcnow() - timedelta(days=900)))
    import_card(ws, root, "LOL-S01")
    with ws.db.session() as s:
        media = {m.file_name: m.id for m in s.scalars(select(Media))}
        for name, box in boxes.items():
            s.add(Detection(media_id=media[name], category="animal", score=0.9, x=box[0], y=box[1], w=box[2],
                            h=box[3], model_name="virtual-park-truth", model_version="1"))
    cat = Catalogue(ws)
    a = cat.create(by="setup", name="Berry", species="Panthera pardus orientalis", sex="female")
    b = cat.create(by="setup", species="Panthera pardus orientalis")
    cat.confirm_photo(media["IMG_0001.JPG"], a.code, by="setup", box=boxes["IMG_0001.JPG"], flank="left")
    cat.confirm_photo(media["IMG_0002.JPG"], b.code, by="setup", box=boxes["IMG_0002.JPG"], flank="left")
    save_calibration(ws, Calibration(slope=4.0, intercept=-4.0 * math.log(2.0), new_threshold=0.5, source="test"))
    run = run_stage(ws, ReidStage(), media_ids=[media[f"IMG_000{i}.JPG"] for i in (3, 4, 5)])
    assert run.done == 3 and run.failed == 0, run.errors
    out = dict(media)
    with ws.db.session() as s:
        for i in (3, 4, 5):
            out[f"P{i}"] = s.scalars(select(Observation.id).where(Observation.media_id == media[f"IMG_000{i}.JPG"],
                                                                  Observation.classification_method == "machine")).one()
    return out


@pytest.fixture
def desk(workspace: Workspace, card: Card) -> dict[str, str]:
    ids = build_desk(workspace, card)
    add_user(workspace, "olga", "reviewer", password=PASSWORD)
    add_user(workspace, "guest", "viewer", password=PASSWORD)
    return ids


@pytest.fixture
def client(workspace: Workspace):
    with TestClient(create_app(workspace, LiveConfig(pipeline=False)), base_url="http://testserver") as c:
        yield c


def _snapshot(ws: Workspace) -> tuple:
    """Everything a decision writes: the catalogue, its history, and the proposals' JSON."""
    with ws.db.session() as s:
        return (s.scalar(select(func.count()).select_from(Individual)),
                s.scalar(select(func.count()).select_from(IndividualEvent)),
                s.scalar(select(func.count()).select_from(Observation)),
                sorted((o.id, repr(o.extra)) for o in s.scalars(select(Observation).where(
                    Observation.classification_method == "machine"))))


def test_reviewer_confirms_a_proposal_and_the_individual_page_shows_the_sighting(
        workspace: Workspace, desk: dict[str, str], client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    csrf = sign_in(client, "olga")
    page = client.get("/identities")
    assert page.status_code == 200
    p3 = desk["P3"]
    assert f'data-proposal="{p3}"' in page.text  # the oldest photo first
    assert "LEO_001" in page.text and 'data-key="1"' in page.text and "matches.jpg" in page.text
    assert "flank" in page.text.lower() and "% sure" in page.text
    sheet = client.get(f"/identities/{p3}/matches.jpg")
    assert sheet.status_code == 200 and sheet.headers["content-type"] == "image/jpeg"
    assert sheet.content[:2] == b"\xff\xd8"
    assert client.get(f"/identities/{p3}/matches.jpg").content == sheet.content  # kept, not drawn again

    r = client.post(f"/identities/{p3}/confirm", data={"rank": "1", "flank": "left", "csrf_token": csrf},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/identities/{desk['P4']}?last={p3}"
    nxt = client.get(r.headers["location"])
    assert "Done: photo IMG_0003.JPG is" in nxt.text and "LEO_001" in nxt.text
    with workspace.db.session() as s:
        obs = s.scalars(select(Observation).where(Observation.media_id == desk["IMG_0003.JPG"],
                                                  Observation.classification_method == "human")).one()
        ind = s.get(Individual, obs.individual_id)
        assert ind.code == "LEO_001" and obs.classified_by == "olga"
        ev = s.scalars(select(IndividualEvent).where(IndividualEvent.action == "confirm",
                                                     IndividualEvent.by == "olga")).one()
        assert ev.details["proposal_id"] == p3 and ev.details["flank"] == "left"
    assert f'data-proposal="{p3}"' not in client.get("/identities").text  # decided: out of the queue

    ind_page = client.get("/individuals/LEO_001")
    assert ind_page.status_code == 200
    assert f"/media/{desk['IMG_0003.JPG']}/thumb" in ind_page.text  # the photo, among the best of its flank
    assert f'data-media="{desk["IMG_0003.JPG"]}"' in ind_page.text and "2 confirmed photo(s)" in ind_page.text
    assert "Kedrovaya pad" in ind_page.text and '"lat": 43.1234' in ind_page.text  # a reviewer sees exact places
    assert "confirm" in ind_page.text and "olga" in ind_page.text  # the history
    cat = client.get("/individuals")
    assert re.search(r"LEO_001</a></td><td>Berry</td><td>female</td>.*?<td>2</td>", cat.text, re.S)
    # The queue's keyset walk skips decided proposals across batch boundaries.
    monkeypatch.setattr(desk_reads, "BATCH", 1)
    with workspace.db.session() as s:
        assert [p.id for p in desk_reads.pending_proposals(s, 5)] == [desk["P4"], desk["P5"]]
        assert [p.id for p in desk_reads.pending_proposals(s, 5, after=desk["P4"])] == [desk["P5"]]
        assert desk_reads.neighbours(s, p3) == (None, desk["P4"])
        assert desk_reads.neighbours(s, desk["P5"]) == (desk["P4"], None)
        assert desk_reads.pending_count(s) == 2
    # Deciding the same photo again is refused, not done twice.
    r = client.post(f"/identities/{p3}/confirm", data={"rank": "1", "csrf_token": csrf})
    assert r.status_code == 409 and "already confirmed" in r.text


def test_reject_then_new_individual_and_an_encounter_decided_together(
        workspace: Workspace, desk: dict[str, str], client: TestClient) -> None:
    csrf = sign_in(client, "olga")
    p4 = desk["P4"]
    r = client.post(f"/identities/{p4}/reject", data={"reason": "no ear notch", "csrf_token": csrf},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/identities/{p4}?last={p4}"  # still to decide
    page = client.get(r.headers["location"])
    assert "Recorded for photo IMG_0004.JPG: not LEO_002" in page.text
    with workspace.db.session() as s:
        rejected = s.get(Observation, p4).extra["reid"]["rejected"]
        assert [(x["code"], x["by"], x["reason"]) for x in rejected] == [("LEO_002", "olga", "no ear notch")]
        assert not s.get(Observation, p4).extra["reid"].get("decision")

    # Photos 4 and 5 made one encounter: one new individual for both.
    with workspace.db.session() as s:
        for mid in (desk["IMG_0004.JPG"], desk["IMG_0005.JPG"]):
            s.get(Media, mid).sequence_id = "LOL-S01:000099"
    page = client.get(f"/identities/{p4}")
    assert "all 2 photos of this encounter" in page.text
    r = client.post(f"/identities/{p4}/new", data={"code": "LEO_009", "name": "Shadow", "sex": "male",
                                                   "flank": "right", "encounter": "true", "csrf_token": csrf},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    with workspace.db.session() as s:
        new = s.scalars(select(Individual).where(Individual.code == "LEO_009")).one()
        assert (new.name, new.sex, new.scientific_name) == ("Shadow", "male", "Panthera pardus orientalis")
        confirmed = s.scalars(select(Observation.media_id).where(Observation.individual_id == new.id)).all()
        assert sorted(confirmed) == sorted([desk["IMG_0004.JPG"], desk["IMG_0005.JPG"]])
        assert {e.by for e in s.scalars(select(IndividualEvent).where(IndividualEvent.individual_id == new.id))} \
            == {"olga"}
    page = client.get("/individuals/LEO_009")
    assert page.status_code == 200 and "Shadow" in page.text and "2 confirmed photo(s)" in page.text
    assert "right flank" in page.text
    queue = client.get("/identities").text
    assert "1 photo(s) wait" in queue and f'data-proposal="{desk["P3"]}"' in queue  # only photo 3 is left
    client.post(f"/identities/{desk['P3']}/confirm", data={"rank": "1", "csrf_token": csrf})
    assert "No re-identification proposal waits" in client.get("/identities").text


def test_merge_undo_and_split_from_the_individual_page(
        workspace: Workspace, desk: dict[str, str], client: TestClient) -> None:
    csrf = sign_in(client, "olga")
    client.post(f"/identities/{desk['P3']}/confirm", data={"rank": "1", "flank": "left", "csrf_token": csrf})
    r = client.post("/individuals/LEO_001/merge", data={"other": "LEO_002", "reason": "same ear", "csrf_token": csrf},
                    follow_redirects=False)
    assert r.status_code == 303
    page = client.get("/individuals/LEO_001")
    assert "3 confirmed photo(s)" in page.text and "Undo this merge" in page.text
    assert "merged into" in client.get("/individuals/LEO_002").text
    event = int(re.search(r'name="event" value="(\d+)"', page.text).group(1))
    r = client.post("/individuals/LEO_001/undo", data={"event": str(event), "csrf_token": csrf},
                    follow_redirects=False)
    assert r.status_code == 303
    assert "2 confirmed photo(s)" in client.get("/individuals/LEO_001").text
    assert "1 confirmed photo(s)" in client.get("/individuals/LEO_002").text
    # The same undo twice is refused.
    assert client.post("/individuals/LEO_001/undo", data={"event": str(event), "csrf_token": csrf}).status_code == 400
    with workspace.db.session() as s:
        obs3 = s.scalars(select(Observation.id).where(Observation.media_id == desk["IMG_0003.JPG"],
                                                      Observation.classification_method == "human")).one()
    r = client.post("/individuals/LEO_001/split", data={"observations": [obs3], "new_code": "LEO_010",
                                                        "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/individuals/LEO_010"
    page = client.get("/individuals/LEO_001")
    assert "1 confirmed photo(s)" in page.text and "Undo this split" in page.text


def test_a_viewer_sees_the_pages_but_every_decision_is_refused(
        workspace: Workspace, desk: dict[str, str], client: TestClient) -> None:
    csrf = sign_in(client, "guest")
    before = _snapshot(workspace)
    page = client.get(f"/identities/{desk['P3']}")
    assert page.status_code == 200 and "LEO_001" in page.text and 'id="confirm-1"' not in page.text
    ind = client.get("/individuals/LEO_001")
    assert ind.status_code == 200 and "merge-form" not in ind.text
    assert '"lat": 43.1' in ind.text and '"rounded": true' in ind.text  # a sensitive place, rounded
    for url, data in ((f"/identities/{desk['P3']}/confirm", {"rank": "1"}),
                      (f"/identities/{desk['P3']}/reject", {}),
                      (f"/identities/{desk['P5']}/new", {"name": "Ghost"}),
                      ("/individuals/LEO_001/merge", {"other": "LEO_002"}),
                      ("/individuals/LEO_001/split", {"observations": ["x"]}),
                      ("/individuals/LEO_001/undo", {"event": "1"})):
        r = client.post(url, data={**data, "csrf_token": csrf})
        assert r.status_code == 403, url
    # A reviewer's POST without the CSRF token is refused too.
    client.cookies.clear()
    sign_in(client, "olga")
    assert client.post(f"/identities/{desk['P3']}/confirm", data={"rank": "1"}).status_code == 403
    assert _snapshot(workspace) == before


def test_hostile_input_is_answered_plainly_with_nothing_written(
        workspace: Workspace, desk: dict[str, str], client: TestClient) -> None:
    csrf = sign_in(client, "olga")
    before = _snapshot(workspace)
    p5 = desk["P5"]
    for url, status in (("/identities/nope", 404), ("/identities/" + "a" * 500, 404), ("/identities/%3Cscript%3E", 404),
                        ("/identities/nope/matches.jpg", 404), ("/individuals/NOPE", 404),
                        ("/individuals/" + "A" * 500, 404), ("/identities?last=<b>x</b>", 200)):
        r = client.get(url, headers={"Accept": "text/html"})
        assert r.status_code == status, (url, r.status_code)
        assert "Traceback" not in r.text and "<b>x</b>" not in r.text and "<script>" not in r.text
    posts = [
        (f"/identities/{p5}/new", {"name": "<script>alert(1)</script>"}, 400),
        (f"/identities/{p5}/new", {"name": "x" * 5000}, 400),
        (f"/identities/{p5}/new", {"code": "<b>LEO</b>"}, 400),
        (f"/identities/{p5}/new", {"code": "LEO_001"}, 400),  # already used
        (f"/identities/{p5}/new", {"sex": "robot"}, 400),
        (f"/identities/{p5}/new", {"species": "Canis lupus"}, 400),
        (f"/identities/{p5}/new", {"flank": "up"}, 400),
        (f"/identities/{p5}/confirm", {"rank": "9"}, 400),
        (f"/identities/{p5}/confirm", {"rank": "one"}, 400),
        (f"/identities/{p5}/confirm", {}, 400),
        (f"/identities/{p5}/reject", {"reason": "y" * 600}, 400),
        ("/identities/nope/confirm", {"rank": "1"}, 404),
        ("/identities/nope/new", {}, 404),
        ("/individuals/NOPE/merge", {"other": "LEO_001"}, 404),
        ("/individuals/LEO_001/merge", {"other": "LEO_001"}, 400),
        ("/individuals/LEO_001/merge", {"other": "NOPE"}, 404),
        ("/individuals/LEO_001/split", {"observations": ["../../x"]}, 400),
        ("/individuals/LEO_001/split", {"observations": ["abc123"]}, 400),
        ("/individuals/LEO_001/undo", {"event": "99999"}, 400),
        ("/individuals/LEO_001/undo", {"event": "-1"}, 400),
    ]
    for url, data, status in posts:
        r = client.post(url, data={**data, "csrf_token": csrf}, headers={"Accept": "text/html"})
        assert r.status_code == status, (url, data, r.status_code, r.text[:300])
        assert "Traceback" not in r.text and "<script>alert" not in r.text
    assert _snapshot(workspace) == before
