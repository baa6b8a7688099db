"""Bringing a catalogue in from the web, in-process on both databases: a photo that has no
proposal identified by a reviewer (the machine's animal box or the whole frame, an existing
individual or a new one, reached from the individual's page and the photo view), an ID sheet
uploaded and imported (every problem by its row with nothing written, then the summary; twice
is safe), and a top candidate no photo verified never called "Probably X".

The photos are rendered virtual-park leopards imported through the card import with their true
boxes as the detector's; decisions go through the real catalogue (features, index and history).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.web.test_identities import Card, _snapshot, make_card
from tests.web.test_pages import PASSWORD, sign_in

from pardus.ingest.card import import_card
from pardus.people.accounts import add_user
from pardus.reid.catalogue import Catalogue
from pardus.store import Workspace
from pardus.store.models import Deployment, Detection, Individual, IndividualEvent, Location, Media, Observation, utcnow
from pardus.web.app import LiveConfig, create_app

SPECIES = "Panthera pardus orientalis"


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Card:
    return make_card(tmp_path_factory.mktemp("card"))


@pytest.fixture
def store(workspace: Workspace, card: Card) -> dict[str, str]:
    """The card imported with its boxes as detections, LEO_001 "Berry" and LEO_002 in the catalogue
    with no photo yet, no proposal anywhere; a reviewer, a viewer and an admin."""
    root, boxes = card
    with workspace.db.session() as s:
        s.add(Location(id="L-S01", name="Kedrovaya pad", plot="North", latitude=43.1, longitude=131.5))
        s.add(Deployment(id="LOL-S01", location_id="L-S01", start=utcnow().replace(year=2020)))
    import_card(workspace, root, "LOL-S01")
    with workspace.db.session() as s:
        media = {m.file_name: m.id for m in s.scalars(select(Media))}
        for name, box in boxes.items():
            s.add(Detection(media_id=media[name], category="animal", score=0.9, x=box[0], y=box[1], w=box[2],
                            h=box[3], model_name="virtual-park-truth", model_version="1"))
            s.add(Detection(media_id=media[name], category="animal", score=0.3, x=0.0, y=0.0, w=0.1, h=0.1,
                            model_name="virtual-park-truth", model_version="1"))  # a weaker box, not offered
    cat = Catalogue(workspace)
    cat.create(by="setup", name="Berry", species=SPECIES, sex="female")
    cat.create(by="setup", species=SPECIES)
    add_user(workspace, "olga", "reviewer", password=PASSWORD)
    add_user(workspace, "guest", "viewer", password=PASSWORD)
    add_user(workspace, "boss", "admin", password=PASSWORD)
    return media


@pytest.fixture
def client(workspace: Workspace):
    with TestClient(create_app(workspace, LiveConfig(pipeline=False)), base_url="http://testserver") as c:
        yield c


def _identities(ws: Workspace, media_id: str) -> list[Observation]:
    with ws.db.session() as s:
        out = list(s.scalars(select(Observation).where(Observation.media_id == media_id,
                                                       Observation.classification_method == "human",
                                                       Observation.individual_id.is_not(None))))
        s.expunge_all()
    return out


def _proposal(ws: Workspace, media_id: str, candidates: list[dict], *, is_new: bool = False) -> str:
    """A re-identification proposal as the reid stage stores it (stage.result_payload's shape)."""
    with ws.db.session() as s:
        obs = Observation(deployment_id="LOL-S01", media_id=media_id, observation_level="media",
                          observation_type="animal", scientific_name=SPECIES, count=1, bbox_x=0.2, bbox_y=0.3,
                          bbox_width=0.4, bbox_height=0.3, classification_method="machine",
                          classified_by="pardus-reid-hotspotter@1/test", classification_timestamp=utcnow(),
                          extra={"reid": {"is_new": is_new, "new_probability": 0.3, "candidates": candidates,
                                          "flank": None, "n_features": 300, "species": SPECIES}})
        s.add(obs)
        s.flush()
        return obs.id


def _cand(ws: Workspace, code: str, *, verified: bool) -> dict:
    with ws.db.session() as s:
        ind = s.scalars(select(Individual).where(Individual.code == code)).one()
        return {"individual_id": ind.id, "code": code, "name": ind.name, "score": 12.5 if verified else None,
                "probability": 0.81 if verified else None, "flank": "left" if verified else None, "photos": [],
                "inliers": 14 if verified else 0, "verified": verified}


def test_an_unverified_top_candidate_is_named_closest_never_probable(
        workspace: Workspace, store: dict[str, str], client: TestClient) -> None:
    only = _proposal(workspace, store["IMG_0005.JPG"], [_cand(workspace, "LEO_002", verified=False),
                                                        _cand(workspace, "LEO_001", verified=False)])
    sign_in(client, "olga")
    page = client.get(f"/identities/{only}")
    assert page.status_code == 200
    verdict = page.text.split('id="verdict"', 1)[1].split("</p>", 1)[0]
    assert "No verified match; closest: LEO_002 (unverified)" in verdict and "Probably" not in verdict
    assert "unverified: its coat got votes" in page.text and "% sure" not in page.text

    mixed = _proposal(workspace, store["IMG_0004.JPG"], [_cand(workspace, "LEO_001", verified=True),
                                                         _cand(workspace, "LEO_002", verified=False)])
    page = client.get(f"/identities/{mixed}")
    verdict = page.text.split('id="verdict"', 1)[1].split("</p>", 1)[0]
    assert "Probably LEO_001 (81% sure)" in verdict and "unverified" not in verdict
    assert page.text.count("unverified: its coat got votes") == 1


def test_a_reviewer_identifies_a_photo_without_a_proposal(
        workspace: Workspace, store: dict[str, str], client: TestClient) -> None:
    csrf = sign_in(client, "olga")
    ind_page = client.get("/individuals/LEO_001")
    assert 'id="add-photo-form"' in ind_page.text and 'action="/identities/photo"' in ind_page.text
    assert 'id="identify-link"' in client.get(f"/media/{store['IMG_0003.JPG']}").text

    # from the individual's page: the photo by its file name, the individual chosen already
    r = client.get("/identities/photo", params={"ref": "IMG_0003.JPG", "code": "LEO_001"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/identities/photo/{store['IMG_0003.JPG']}?code=LEO_001"
    page = client.get(r.headers["location"])
    assert page.status_code == 200 and 'id="best-box"' in page.text and 'id="identify-form"' in page.text
    assert '<option value="LEO_001" selected>' in page.text and 'value="new"' in page.text
    assert client.get("/identities/photo", params={"ref": "IMG_9999.JPG"}).status_code == 404

    # the machine's best animal box (not the weaker one), left flank
    r = client.post(f"/identities/photo/{store['IMG_0003.JPG']}/confirm",
                    data={"individual": "LEO_001", "region": "box", "flank": "left", "csrf_token": csrf},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/individuals/LEO_001", r.text
    (obs,) = _identities(workspace, store["IMG_0003.JPG"])
    with workspace.db.session() as s:
        det = s.scalars(select(Detection).where(Detection.media_id == store["IMG_0003.JPG"])
                        .order_by(Detection.score.desc())).first()
        ind = s.get(Individual, obs.individual_id)
        ev = s.scalars(select(IndividualEvent).where(IndividualEvent.action == "confirm")).one()
        assert ind.code == "LEO_001" and obs.classified_by == "olga" and ev.by == "olga"
        assert (obs.bbox_x, obs.bbox_y, obs.bbox_width, obs.bbox_height) == pytest.approx((det.x, det.y, det.w, det.h))
        assert obs.extra["reid"]["flank"] == "left" and ev.details["proposal_id"] is None
    assert store["IMG_0003.JPG"] in client.get("/individuals/LEO_001").text  # a sighting now

    # the same box again: refused, nothing written
    before = _snapshot(workspace)
    again = client.post(f"/identities/photo/{store['IMG_0003.JPG']}/confirm",
                        data={"individual": "LEO_002", "region": "box", "csrf_token": csrf})
    assert again.status_code == 409 and "already confirmed as LEO_001" in again.text
    assert _snapshot(workspace) == before

    # a new individual from the whole frame
    r = client.post(f"/identities/photo/{store['IMG_0004.JPG']}/confirm",
                    data={"individual": "new", "region": "frame", "code": "LEO_050", "name": "Newcomer",
                          "sex": "male", "species": SPECIES, "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/individuals/LEO_050", r.text
    (obs,) = _identities(workspace, store["IMG_0004.JPG"])
    assert obs.bbox_x is None and obs.bbox_width is None  # the whole frame
    with workspace.db.session() as s:
        new = s.scalars(select(Individual).where(Individual.code == "LEO_050")).one()
        assert (new.name, new.sex, new.scientific_name) == ("Newcomer", "male", SPECIES)
        assert obs.individual_id == new.id
    page = client.get(f"/identities/photo/{store['IMG_0004.JPG']}")
    assert 'id="photo-identities"' in page.text and "LEO_050" in page.text

    # a photo with a proposal waiting is decided on the desk, not here
    pid = _proposal(workspace, store["IMG_0005.JPG"], [_cand(workspace, "LEO_001", verified=True)])
    page = client.get(f"/identities/photo/{store['IMG_0005.JPG']}")
    assert 'id="has-proposal"' in page.text and f"/identities/{pid}" in page.text
    before = _snapshot(workspace)
    r = client.post(f"/identities/photo/{store['IMG_0005.JPG']}/confirm",
                    data={"individual": "LEO_001", "region": "frame", "csrf_token": csrf})
    assert r.status_code == 409 and pid in r.text
    # hostile or wrong input: 400/404, nothing written
    for data, status in [({"individual": "LEO_001", "region": "elsewhere"}, 400),
                         ({"individual": "<script>", "region": "frame"}, 400),
                         ({"individual": "new", "region": "frame", "name": "<b>x</b>"}, 400),
                         ({"individual": "new", "region": "frame", "species": "Canis lupus"}, 400),
                         ({"individual": "LEO_404", "region": "frame"}, 400),
                         ({"individual": "LEO_001", "region": "frame", "flank": "front"}, 400)]:
        r = client.post(f"/identities/photo/{store['IMG_0002.JPG']}/confirm", data={**data, "csrf_token": csrf})
        assert r.status_code == status, (data, r.text)
    assert client.post("/identities/photo/nosuchphoto/confirm",
                       data={"individual": "LEO_001", "csrf_token": csrf}).status_code == 404
    assert client.get("/identities/photo/nosuchphoto").status_code == 404
    assert _snapshot(workspace) == before


def test_viewers_look_and_forged_posts_are_refused(
        workspace: Workspace, store: dict[str, str], client: TestClient, tmp_path: Path) -> None:
    csrf = sign_in(client, "guest")
    page = client.get(f"/identities/photo/{store['IMG_0001.JPG']}")
    assert page.status_code == 200 and 'id="identify-form"' not in page.text and "can look" in page.text
    imp = client.get("/identities/import")
    assert imp.status_code == 200 and 'id="import-form"' not in imp.text
    before = _snapshot(workspace)
    assert client.post(f"/identities/photo/{store['IMG_0001.JPG']}/confirm",
                       data={"individual": "LEO_001", "csrf_token": csrf}).status_code == 403
    assert client.post("/identities/import", data={"csrf_token": csrf},
                       files={"sheet": ("s.csv", b"file,individual\nIMG_0001.JPG,LEO_001\n", "text/csv")}
                       ).status_code == 403
    client.cookies.clear()
    sign_in(client, "olga")
    assert client.post(f"/identities/photo/{store['IMG_0001.JPG']}/confirm",
                       data={"individual": "LEO_001"}).status_code == 403  # no CSRF token
    assert client.post("/identities/import",
                       files={"sheet": ("s.csv", b"file,individual\nIMG_0001.JPG,LEO_001\n", "text/csv")}
                       ).status_code == 403
    assert _snapshot(workspace) == before


def test_an_id_sheet_is_checked_whole_then_imported(
        workspace: Workspace, store: dict[str, str], client: TestClient) -> None:
    csrf = sign_in(client, "olga")
    page = client.get("/identities/import")
    assert page.status_code == 200 and 'id="import-form"' in page.text and 'enctype="multipart/form-data"' in page.text
    with workspace.db.session() as s:
        sha2 = s.get(Media, store["IMG_0002.JPG"]).sha256

    bad = ("file,individual,name,flank,box\n"
           "IMG_0001.JPG,LEO_001,,left,\n"
           "IMG_0099.JPG,LEO_001,,left,\n"
           "IMG_0003.JPG,LEO_001,,front,\n"
           "../../../../../../etc/hostname,LEO_007,,,\n"
           "IMG_0004.JPG,LEO_001,,,\"0.1,0.2,0.3\"\n")
    before = _snapshot(workspace)
    r = client.post("/identities/import", data={"csrf_token": csrf},
                    files={"sheet": ("park sheet.csv", bad.encode(), "text/csv")})
    assert r.status_code == 422 and 'id="import-problems"' in r.text
    for row, words in [(3, "IMG_0099.JPG"), (4, "flank"), (5, "etc/hostname"), (6, "box")]:
        assert f"row {row}: " in r.text and words in r.text, (row, r.text)
    assert "row 2:" not in r.text and "nothing was imported" in r.text
    assert _snapshot(workspace) == before
    # htmx asks for the partial: the same problems, where the summary goes
    part = client.post("/identities/import", data={"csrf_token": csrf}, headers={"HX-Request": "true"},
                       files={"sheet": ("park sheet.csv", bad.encode(), "text/csv")})
    assert part.status_code == 422 and part.text.lstrip().startswith('<div class="card warn" id="import-problems"')
    assert "<html" not in part.text

    good = ("file;individual;name;flank;box\n"
            "IMG_0001.JPG;LEO_001;;left;\n"
            f"{sha2};LEO_007;Tayga;R;\n"
            "IMG_0003.JPG;LEO_001;;;\"0.1,0.2,0.3,0.4\"\n")
    r = client.post("/identities/import", data={"csrf_token": csrf, "species": SPECIES},
                    headers={"HX-Request": "true"}, files={"sheet": ("park-2023.csv", good.encode(), "text/csv")})
    assert r.status_code == 200 and 'id="import-summary"' in r.text, r.text
    assert "3 row(s), 3 photo(s) confirmed, 0 already" in r.text and "LEO_007" in r.text
    with workspace.db.session() as s:
        new = s.scalars(select(Individual).where(Individual.code == "LEO_007")).one()
        assert (new.name, new.scientific_name) == ("Tayga", SPECIES)
        evs = list(s.scalars(select(IndividualEvent).where(IndividualEvent.action == "confirm")))
        assert len(evs) == 3 and {e.by for e in evs} == {"olga"}
        assert {e.details["source"] for e in evs} == {"ID sheet park-2023.csv"}
    (obs,) = _identities(workspace, store["IMG_0002.JPG"])
    assert obs.extra["reid"]["flank"] == "right"

    # the same sheet again, by an admin: counted, not added
    client.cookies.clear()
    csrf = sign_in(client, "boss")
    before = _snapshot(workspace)
    r = client.post("/identities/import", data={"csrf_token": csrf},
                    files={"sheet": ("park-2023.csv", good.encode(), "text/csv")})
    assert r.status_code == 200 and "0 photo(s) confirmed, 3 already in the catalogue" in r.text
    assert _snapshot(workspace) == before
    with workspace.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Individual)) == 3

    # not a sheet at all, empty, too large, a species that is not marked
    for body, status in [(b"\xff\xfe\x00binary", 400), (b"", 400), (b"file,individual\n" + b"x" * (6 << 20), 413)]:
        r = client.post("/identities/import", data={"csrf_token": csrf},
                        files={"sheet": ("x.csv", body, "text/csv")})
        assert r.status_code == status, (status, r.text[:300])
    r = client.post("/identities/import", data={"csrf_token": csrf, "species": "Canis lupus"},
                    files={"sheet": ("x.csv", good.encode(), "text/csv")})
    assert r.status_code == 400
    assert _snapshot(workspace) == before


@pytest.mark.slow
def test_the_import_form_in_chromium_shows_the_problems_then_the_summary(
        browser, card: Card, tmp_path: Path) -> None:
    """htmx uploads the sheet; a 422 answer (the problems by row) is shown in place, not dropped."""
    from tests.web.helpers import backend_settings
    from tests.web.helpers import sign_in as browser_sign_in

    from pardus.store import open_workspace
    from pardus.web.process import ServerProcess

    with backend_settings("sqlite", tmp_path / "data") as settings:
        with open_workspace(settings) as ws:
            with ws.db.session() as s:
                s.add(Deployment(id="LOL-S01", start=utcnow().replace(year=2020)))
            import_card(ws, card[0], "LOL-S01")
            add_user(ws, "olga", "reviewer", password=PASSWORD, token=False)
        server = ServerProcess(settings.data_dir, pipeline=False).start()
        try:
            page = browser.new_page()
            browser_sign_in(page, server.url, "olga", PASSWORD, "/identities/import")
            bad, good = tmp_path / "bad.csv", tmp_path / "good.csv"
            bad.write_text("file,individual,flank\nIMG_0001.JPG,LEO_001,front\nIMG_0042.JPG,LEO_001,left\n")
            good.write_text("file,individual,flank\nIMG_0001.JPG,LEO_001,left\nIMG_0002.JPG,LEO_002,right\n")
            page.evaluate("window.samePage = true")  # gone if the form navigated instead of htmx swapping
            page.set_input_files("#sheet", str(bad))
            page.select_option("#species", SPECIES)
            page.click("#import-submit")
            problems = page.wait_for_selector("#import-problems", timeout=15_000)
            text = problems.inner_text()
            assert "row 2: flank 'front'" in text and "row 3: no photo 'IMG_0042.JPG'" in text
            assert page.evaluate("window.samePage === true")  # answered in place
            page.set_input_files("#sheet", str(good))
            page.click("#import-submit")
            summary = page.wait_for_selector("#import-summary", timeout=120_000)  # two photos into the index
            assert "2 photo(s) confirmed" in summary.inner_text() and page.locator("#import-problems").count() == 0
            assert page.evaluate("window.samePage === true")
            page.close()
        finally:
            server.stop()
