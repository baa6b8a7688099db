"""The rangers' REST API and live stream: user tokens and roles, list, ack, resolve, Server-Sent Events."""

from __future__ import annotations

import json
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.live.helpers import jpeg

from pardus.alerts.rules import parse_rules
from pardus.ingest.one import ingest_file
from pardus.live.cameras import add_camera
from pardus.live.queue import LiveWorker, enqueue
from pardus.people.accounts import UserError, add_user
from pardus.store import Workspace
from pardus.store.models import Alert, Detection, User
from pardus.web.app import LiveConfig, create_app


def _person_alert(ws: Workspace, seq: int = 1) -> None:
    mid = ingest_file(ws, jpeg(seq), camera_id="C1", camera_seq=seq, on_created=enqueue).media_id
    with ws.db.session() as s:
        s.add(Detection(media_id=mid, category="person", score=0.9, x=0, y=0, w=0.1, h=0.3, model_name="t",
                        model_version="1"))
    LiveWorker(ws, parse_rules("rules: [{kind: person}]")).drain()


@pytest.fixture
def client(workspace: Workspace):
    add_camera(workspace, "C1")
    with TestClient(create_app(workspace, LiveConfig(pipeline=False))) as c:
        yield c


def test_user_tokens_roles_and_the_alert_lifecycle_over_rest(workspace: Workspace, client: TestClient) -> None:
    ranger = add_user(workspace, "ivanov", "ranger")
    viewer = add_user(workspace, "guest", "viewer")
    with pytest.raises(UserError, match="role must be"):
        add_user(workspace, "x", "poacher")
    with workspace.db.session() as s:
        assert ranger.rsplit(".", 1)[1] not in (s.scalars(select(User.token_hash)).first() or "")
    _person_alert(workspace)
    assert client.get("/api/v1/alerts").status_code == 401
    # A viewer reads the inbox (issue 19: "the viewer role can read nothing") but may not act on it.
    assert client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {viewer}"}).status_code == 200
    assert client.get("/api/v1/alerts", headers={"Authorization": "Bearer pdu.ivanov.wrong"}).status_code == 401
    h = {"Authorization": f"Bearer {ranger}"}
    alerts = client.get("/api/v1/alerts?status=open", headers=h).json()["alerts"]
    assert len(alerts) == 1 and alerts[0]["kind"] == "person" and alerts[0]["status"] == "new"
    aid = alerts[0]["id"]
    assert client.post(f"/api/v1/alerts/{aid}/ack", headers={"Authorization": f"Bearer {viewer}"},
                       json={}).status_code == 403
    assert client.post(f"/api/v1/alerts/{aid}/ack", headers=h, json={"note": "on my way"}).json()["status"] == \
        "acknowledged"
    r = client.post(f"/api/v1/alerts/{aid}/resolve", headers=h, json={})
    assert r.status_code == 400 and "outcome" in r.json()["error"]
    r = client.post(f"/api/v1/alerts/{aid}/resolve", headers=h, json={"outcome": "two poachers detained"})
    assert r.json()["status"] == "resolved" and r.json()["resolved_by"] == "ivanov"
    assert client.post(f"/api/v1/alerts/{aid}/resolve", headers=h, json={"outcome": "x"}).status_code == 409
    one = client.get(f"/api/v1/alerts/{aid[:8]}", headers=h).json()
    assert [e["action"] for e in one["history"]] == ["created", "acknowledged", "resolved"]
    assert one["history"][1]["by"] == "ivanov" and one["history"][1]["details"] == {"note": "on my way"}
    assert client.get("/api/v1/alerts/nope", headers=h).status_code == 404


def test_server_sent_events_stream_new_alerts_and_resume_after_an_id(workspace: Workspace, client: TestClient) -> None:
    token = add_user(workspace, "petrov", "ranger")
    _person_alert(workspace, 1)
    got: list[dict] = []
    done = threading.Event()

    def listen() -> None:
        with client.stream("GET", f"/api/v1/alerts/stream?after=0&token={token}") as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            for line in r.iter_lines():
                if line.startswith("data: "):
                    got.append(json.loads(line[6:]))
                    if len(got) >= 3:
                        break
        done.set()

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    _person_alert(workspace, 2)  # joins the open alert as a sighting
    with workspace.db.session() as s:
        aid = s.scalars(select(Alert.id)).one()
    client.post(f"/api/v1/alerts/{aid}/ack", headers={"Authorization": f"Bearer {token}"})
    assert done.wait(20), got
    assert [e["action"] for e in got] == ["created", "sighting", "acknowledged"]
    assert got[0]["alert"]["id"] == aid and got[2]["by"] == "petrov"
    assert [e["event_id"] for e in got] == sorted(e["event_id"] for e in got)
    assert client.get("/api/v1/alerts/stream").status_code == 401
