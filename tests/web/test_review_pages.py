"""The review desk's pages in-process, on both databases: reviewer decisions by the desk's own
requests, bulk blanks with undo, a viewer refused, hostile input answered plainly."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.web.test_pages import PASSWORD, sign_in

from pardus.people.accounts import add_user
from pardus.review import queue as rq
from pardus.store import Workspace
from pardus.store.models import Observation, ReviewDecision, ReviewItem
from pardus.testing.rows import SeasonSize, fill_season
from pardus.web.app import LiveConfig, create_app


@pytest.fixture
def desk(workspace: Workspace):
    with workspace.db.engine.begin() as conn:
        fill_season(conn, SeasonSize(photos=120, alerts=3, stations=3, plots=1, online=1, silent=0, heartbeats=2))
    add_user(workspace, "olga", "reviewer", password=PASSWORD)
    add_user(workspace, "guest", "viewer", password=PASSWORD)
    with TestClient(create_app(workspace, LiveConfig(pipeline=False)), base_url="http://testserver") as c:
        yield c


def _seq(html: str) -> str:
    m = re.search(r'data-seq="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


def test_reviewer_decides_undoes_and_bulk_accepts_blanks(workspace: Workspace, desk: TestClient) -> None:
    csrf = sign_in(desk, "olga")
    assert desk.get("/", follow_redirects=False).headers["location"] == "/review"  # a reviewer's start page
    page = desk.get("/review")
    assert "queue is empty" in page.text
    assert desk.post("/review/refresh", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    page = desk.get("/review?unreviewed=true")
    first = _seq(page.text)
    h = {"X-CSRF-Token": csrf}
    r = desk.post("/review/decide?unreviewed=true", data={"sequence_id": first, "action": "human"}, headers=h)
    assert r.status_code == 200 and r.headers["X-Pardus-Decision"]
    second = _seq(r.text)
    assert second != first
    r = desk.post("/review/decide?unreviewed=true", data={"sequence_id": second, "action": "animal",
                                                          "species": "<script>x</script>", "count": "2"}, headers=h)
    assert r.status_code == 200
    with workspace.db.session() as s:
        assert s.get(ReviewItem, second).human_species == "<script>x</script>"
    back = desk.get(f"/review/seq?at={second}")
    assert "<script>x</script>" not in back.text and "&lt;script&gt;" in back.text
    r = desk.post("/review/undo", data={}, headers=h)
    assert r.status_code == 200 and _seq(r.text) == second
    with workspace.db.session() as s:
        assert s.get(ReviewItem, second).reviewed_at is None
        assert s.get(ReviewItem, first).reviewed_by == "olga"
        assert s.scalar(select(func.count()).select_from(ReviewDecision).where(ReviewDecision.undone_at.is_(None))) == 1
        blank = s.scalars(select(ReviewItem).where(ReviewItem.machine_type == "blank",
                                                   ReviewItem.reviewed_at.is_(None))).first()
        active = s.scalar(select(func.count()).select_from(Observation).where(Observation.superseded_by.is_(None)))
    shown = desk.get(f"/review/blanks?camera={blank.deployment_id}&day={blank.camera_day}")
    ids = re.findall(r'name="sequence_id" value="([^"]+)"', shown.text)
    assert blank.sequence_id in ids
    done = desk.post("/review/blanks", data={"csrf_token": csrf, "camera": blank.deployment_id,
                                             "day": blank.camera_day, "sequence_id": ids})
    assert done.status_code == 200 and f"{len(ids)} sequence(s) accepted" in done.text
    batch = re.search(r'name="batch" value="([^"]+)"', done.text).group(1)
    r = desk.post("/review/blanks/undo", data={"csrf_token": csrf, "batch": batch, "camera": blank.deployment_id,
                                               "day": blank.camera_day}, follow_redirects=False)
    assert r.status_code == 303
    with workspace.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Observation).where(
            Observation.superseded_by.is_(None))) == active
        assert all(s.get(ReviewItem, i).reviewed_at is None for i in ids)
    prog = desk.get("/review/progress")
    assert prog.status_code == 200 and "olga" in prog.text


def test_viewer_looks_but_every_decision_is_refused(workspace: Workspace, desk: TestClient) -> None:
    with workspace.db.session() as s:
        rq.refresh(s)
        seq = s.scalars(select(ReviewItem)).first().sequence_id
    csrf = sign_in(desk, "guest")
    page = desk.get("/review")
    assert page.status_code == 200 and "Accept (a)" not in page.text
    for url, data in (("/review/decide", {"sequence_id": seq, "action": "blank"}), ("/review/undo", {}),
                      ("/review/blanks", {"sequence_id": seq}), ("/review/refresh", {})):
        assert desk.post(url, data={**data, "csrf_token": csrf}).status_code == 403, url
    with workspace.db.session() as s:
        assert s.scalar(select(func.count()).select_from(ReviewDecision)) == 0


def test_hostile_review_requests_get_a_clear_answer(workspace: Workspace, desk: TestClient) -> None:
    with workspace.db.session() as s:
        rq.refresh(s)
        seq = s.scalars(select(ReviewItem)).first().sequence_id
    csrf = sign_in(desk, "olga")
    h = {"X-CSRF-Token": csrf}
    for data, words in (({"sequence_id": seq, "action": "eat"}, "action must be"),
                        ({"sequence_id": "nope", "action": "blank"}, "no sequence"),
                        ({"sequence_id": seq, "action": "animal"}, "which species"),
                        ({"sequence_id": seq, "action": "human", "count": "-3"}, "count"),
                        ({"sequence_id": seq, "action": "human", "count": "many"}, "count"),
                        ({"action": "blank"}, "sequence_id")):
        r = desk.post("/review/decide", data=data, headers=h)
        assert r.status_code == 400 and words in r.text and "Traceback" not in r.text, (data, r.text[:300])
    assert desk.post("/review/decide", data={"sequence_id": seq, "action": "blank"}).status_code == 403  # no CSRF
    for url in ("/review?order=random", "/review?machine=dragon", "/review/seq?after=nope",
                "/review?since=2024-05-01&until=2024-04-01", "/review/blanks?camera=D000&day=yesterday"):
        r = desk.get(url, headers={"Accept": "text/html"})
        assert r.status_code == 400 and "Traceback" not in r.text, url
    with workspace.db.session() as s:
        assert s.scalar(select(func.count()).select_from(ReviewDecision)) == 0
