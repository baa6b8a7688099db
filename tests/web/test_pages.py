"""The web app as people meet it, in-process on both databases: sign-in, roles, CSRF, the inbox,
the camera map's data, the season overview, and hostile input answered plainly."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pardus.alerts import lifecycle
from pardus.live.cameras import add_camera
from pardus.people.accounts import add_user, revoke_user
from pardus.store import Workspace
from pardus.store.models import Alert, AlertEvent, Camera, Deployment, Location, WebSession, utcnow
from pardus.web.app import LiveConfig, create_app

PASSWORD = "correct horse battery"


@pytest.fixture
def client(workspace: Workspace):
    with TestClient(create_app(workspace, LiveConfig(pipeline=False)), base_url="http://testserver") as c:
        yield c


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "the page carries no CSRF token"
    return m.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the session's CSRF token (read off the next page)."""
    page = client.get("/signin")
    r = client.post("/signin", data={"name": name, "password": password, "csrf_token": _csrf(page.text),
                                     "next": "/alerts"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return _csrf(client.get("/alerts").text)


def _place(ws: Workspace, *, sensitive: bool = False, camera: str | None = None) -> str:
    with ws.db.session() as s:
        s.add(Location(id="L1", name="Kedrovaya ridge", plot="North", latitude=43.1234, longitude=131.5678,
                       sensitive=sensitive))
        s.add(Deployment(id="D1", location_id="L1", camera_id=camera, start=utcnow() - timedelta(days=10)))
    return "D1"


def _alert(ws: Workspace, kind: str = "person") -> str:
    with ws.db.session() as s:
        raised = lifecycle.raise_alert(s, kind=kind, rule="people-at-night", severity="high", camera_id="C1",
                                       deployment_id="D1", media_id=None, evidence={"score": 0.9},
                                       window=timedelta(minutes=30))
        return raised.alert.id


def test_sign_in_wrong_password_is_refused_plainly_and_pages_need_it(workspace: Workspace, client: TestClient) -> None:
    add_user(workspace, "ivanov", "ranger", password=PASSWORD)
    r = client.get("/alerts", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/signin?next=")
    page = client.get("/signin")
    r = client.post("/signin", data={"name": "ivanov", "password": "wrong password!", "csrf_token": _csrf(page.text)})
    assert r.status_code == 401 and "Wrong user name or password" in r.text
    r = client.post("/signin", data={"name": "nobody", "password": PASSWORD, "csrf_token": _csrf(page.text)})
    assert r.status_code == 401 and "Wrong user name or password" in r.text  # the same words: names are not told
    # A sign-in form posted from elsewhere (no token of our pre-session) is refused: no login CSRF.
    r = client.post("/signin", data={"name": "ivanov", "password": PASSWORD, "csrf_token": "forged"})
    assert r.status_code == 403
    sign_in(client, "ivanov")
    cookie = client.cookies.get("pardus_session")
    assert cookie
    r = client.get("/alerts")
    assert r.status_code == 200 and "ivanov" in r.text
    with workspace.db.session() as s:  # only a hash of the cookie's secret is kept
        assert s.get(WebSession, cookie) is None and s.scalar(select(func.count()).select_from(WebSession)) == 1


def test_session_cookie_flags_expiry_sign_out_and_revocation(workspace: Workspace, client: TestClient) -> None:
    add_user(workspace, "ivanov", "ranger", password=PASSWORD)
    page = client.get("/signin")
    r = client.post("/signin", data={"name": "ivanov", "password": PASSWORD, "csrf_token": _csrf(page.text)},
                    follow_redirects=False)
    set_cookie = r.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=lax" in set_cookie and "secure" not in set_cookie  # plain http
    csrf = _csrf(client.get("/alerts").text)
    # Expired sessions sign nobody in.
    with workspace.db.session() as s:
        for row in s.scalars(select(WebSession)):
            row.expires = utcnow() - timedelta(seconds=1)
    assert client.get("/alerts", follow_redirects=False).status_code == 303
    csrf = sign_in(client, "ivanov")
    r = client.post("/signout", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and client.get("/alerts", follow_redirects=False).status_code == 303
    sign_in(client, "ivanov")
    assert revoke_user(workspace, "ivanov") == 1
    assert client.get("/alerts", follow_redirects=False).status_code == 303  # revoked: the session is gone
    page = client.get("/signin")
    r = client.post("/signin", data={"name": "ivanov", "password": PASSWORD, "csrf_token": _csrf(page.text)})
    assert r.status_code == 401


def test_tls_sets_the_secure_flag(workspace: Workspace) -> None:
    add_user(workspace, "ivanov", "ranger", password=PASSWORD)
    with TestClient(create_app(workspace, LiveConfig(pipeline=False)), base_url="https://testserver") as c:
        page = c.get("/signin")
        r = c.post("/signin", data={"name": "ivanov", "password": PASSWORD, "csrf_token": _csrf(page.text)},
                   follow_redirects=False)
        assert "secure" in r.headers["set-cookie"].lower()


def test_ranger_acks_and_resolves_with_a_note_viewer_cannot_and_csrf_is_required(
        workspace: Workspace, client: TestClient) -> None:
    _place(workspace)
    add_camera(workspace, "C1")
    aid = _alert(workspace)
    add_user(workspace, "guest", "viewer", password=PASSWORD)
    add_user(workspace, "ivanov", "ranger", password=PASSWORD)
    # The viewer sees the inbox, with no buttons; a forged POST from the viewer's session is refused.
    viewer_csrf = sign_in(client, "guest")
    page = client.get("/alerts")
    assert aid in page.text and "Acknowledge" not in page.text
    detail = client.get(f"/alerts/{aid}")
    assert detail.status_code == 200 and "resolve-button" not in detail.text
    r = client.post(f"/alerts/{aid}/ack", data={"csrf_token": viewer_csrf, "note": "x"})
    assert r.status_code == 403
    client.cookies.clear()
    csrf = sign_in(client, "ivanov")
    # Without the CSRF token (or with another session's) the same POST is refused.
    assert client.post(f"/alerts/{aid}/ack", data={"note": "x"}).status_code == 403
    assert client.post(f"/alerts/{aid}/ack", data={"note": "x", "csrf_token": viewer_csrf}).status_code == 403
    assert client.post(f"/api/v1/alerts/{aid}/ack", json={}).status_code == 403  # cookie-authenticated API too
    note = "<script>alert('x')</script> patrol 3 on its way"
    r = client.post(f"/alerts/{aid}/ack", data={"note": note, "csrf_token": csrf}, headers={"HX-Request": "true"})
    assert r.status_code == 200 and "acknowledged" in r.text
    assert "<script>alert" not in r.text and "&lt;script&gt;" in r.text  # shown as text, never run
    r = client.post(f"/alerts/{aid}/resolve", data={"outcome": "", "csrf_token": csrf}, headers={"HX-Request": "true"})
    assert r.status_code == 400 and "outcome" in r.text
    r = client.post(f"/alerts/{aid}/resolve", data={"outcome": "false alarm", "note": "our own patrol",
                                                     "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    with workspace.db.session() as s:
        a = s.get(Alert, aid)
        assert a.status == "resolved" and a.resolved_by == "ivanov" and a.outcome == "false alarm"
        events = [(e.action, e.by, e.details) for e in s.scalars(select(AlertEvent).where(AlertEvent.alert_id == aid)
                                                                 .order_by(AlertEvent.id))]
    assert events[1:] == [("acknowledged", "ivanov", {"note": note}),
                          ("resolved", "ivanov", {"outcome": "false alarm", "note": "our own patrol"})]
    assert "our own patrol" in client.get(f"/alerts/{aid}").text


@pytest.mark.parametrize("body", [
    {"note": "x" * 5000}, {"outcome": "y" * 600}, {"outcome": "ok", "unknown": 1},
])
def test_hostile_api_bodies_get_a_clear_400_and_write_nothing(workspace: Workspace, client: TestClient,
                                                               body: dict) -> None:
    _place(workspace)
    aid = _alert(workspace)
    token = add_user(workspace, "ivanov", "ranger")
    h = {"Authorization": f"Bearer {token}"}
    action = "ack" if "note" in body and "outcome" not in body else "resolve"
    r = client.post(f"/api/v1/alerts/{aid}/{action}", json=body, headers=h)
    assert r.status_code == 400 and r.json()["error"] and "Traceback" not in r.text
    for raw in (b"[1, 2]", b"not json", b'{"outcome": 5}'):
        r = client.post(f"/api/v1/alerts/{aid}/resolve", content=raw, headers={**h, "Content-Type": "application/json"})
        assert r.status_code == 400 and "error" in r.json()
    assert client.get("/api/v1/alerts?limit=-1", headers=h).status_code == 400
    assert client.get("/api/v1/alerts?status=bogus", headers=h).status_code == 400
    assert client.get("/api/v1/alerts/%25%25", headers=h).status_code == 404  # '%' is no wildcard
    # A person's token in the query string works only on the stream, never on a POST.
    assert client.post(f"/api/v1/alerts/{aid}/ack?token={token}", json={}).status_code == 401
    with workspace.db.session() as s:
        assert s.get(Alert, aid).status == "new"
        assert s.scalar(select(func.count()).select_from(AlertEvent)) == 1


def test_pages_answer_nonsense_without_a_traceback(workspace: Workspace, client: TestClient) -> None:
    add_user(workspace, "ivanov", "ranger", password=PASSWORD)
    sign_in(client, "ivanov")
    for url, status in (("/alerts?state=<b>x</b>", 400), ("/alerts/nope", 404), ("/alerts/" + "a" * 500, 404),
                        ("/media/zzz/thumb", 404), ("/media/../../etc/passwd", 404), ("/map/stations/none", 404),
                        ("/reports/North/0", 400), ("/reports/North/notayear", 400), ("/no/such/page", 404)):
        r = client.get(url, headers={"Accept": "text/html"})
        assert r.status_code == status, (url, r.status_code)
        assert "Traceback" not in r.text and "<b>x</b>" not in r.text
    page = client.get("/signin")
    r = client.post("/signin", data={"name": "a" * 5000, "password": "p", "csrf_token": _csrf(page.text)})
    assert r.status_code == 400 and "Traceback" not in r.text


def test_map_rounds_sensitive_places_for_viewers_and_shows_a_silent_camera_offline(
        workspace: Workspace, client: TestClient) -> None:
    add_camera(workspace, "C1", expected_interval_s=3600)
    _place(workspace, sensitive=True, camera="C1")
    with workspace.db.session() as s:
        cam = s.get(Camera, "C1")
        cam.last_seen = utcnow() - timedelta(hours=5)
        cam.health = {"battery_pct": 80.0, "heartbeat_at": cam.last_seen.isoformat()}
    add_user(workspace, "guest", "viewer", password=PASSWORD)
    sign_in(client, "guest")
    (st,) = client.get("/api/v1/map/stations").json()["stations"]
    assert st["state"] == "offline" and st["rounded"] and (st["latitude"], st["longitude"]) == (43.1, 131.6)
    client.cookies.clear()
    add_user(workspace, "ivanov", "ranger", password=PASSWORD)
    sign_in(client, "ivanov")
    (st,) = client.get("/api/v1/map/stations").json()["stations"]
    assert not st["rounded"] and (st["latitude"], st["longitude"]) == (43.1234, 131.5678)
    with workspace.db.session() as s:  # a heartbeat brings it back
        s.get(Camera, "C1").last_seen = utcnow()
    assert client.get("/api/v1/map/stations").json()["stations"][0]["state"] == "ok"
    panel = client.get("/map/stations/D1")
    assert panel.status_code == 200 and "Kedrovaya ridge" in panel.text


def test_users_command_adds_with_a_password_prompt_lists_and_revokes(env, workspace) -> None:
    from typer.testing import CliRunner

    from pardus.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["users", "add", "olga", "--role", "reviewer", "--password-prompt"],
                      input=f"{PASSWORD}\n{PASSWORD}\n")
    assert r.exit_code == 0, r.output
    assert "reviewer" in r.output and "pdu.olga." in r.output
    r = runner.invoke(app, ["users", "add", "olga", "--password-prompt"], input="short\nshort\n")
    assert r.exit_code == 1 and "at least 10 characters" in r.output
    r = runner.invoke(app, ["users", "add", "olga", "--role", "poacher"])
    assert r.exit_code == 1 and "role must be one of" in r.output
    r = runner.invoke(app, ["users", "list"])
    assert r.exit_code == 0 and "olga" in r.output and "active" in r.output
    r = runner.invoke(app, ["users", "revoke", "olga"])
    assert r.exit_code == 0 and "revoked" in r.output
    assert runner.invoke(app, ["users", "revoke", "nobody"]).exit_code == 1
