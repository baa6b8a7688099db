"""Issue 19 item 6: one memory cap over every upload at once. Each file has its own limit, but 200
cameras sending together after a repeater outage would still hold 200 files in memory; past the
shared budget a camera is told to retry (503, Retry-After), nothing is lost or half-stored, and the
budget is given back whatever the request's end (stored, duplicate, refused, cut off)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.live.helpers import jpeg, unique

from pardus.live.cameras import add_camera
from pardus.store import Workspace
from pardus.store.models import Media
from pardus.web.app import LiveConfig, create_app
from pardus.web.upload import UploadBudget

LIMIT = 400_000


@pytest.fixture
def app(sqlite_settings):
    from pardus.store import open_workspace

    ws = open_workspace(sqlite_settings)
    yield create_app(ws, LiveConfig(pipeline=False, max_upload_bytes=LIMIT, upload_memory_bytes=3 * LIMIT)), ws
    ws.close()


def _count(ws: Workspace) -> int:
    with ws.db.session() as s:
        return s.scalar(select(func.count()).select_from(Media)) or 0


def _post(client: TestClient, token: str, data: bytes, seq: int):
    return client.post("/api/v1/cameras/C1/media", files={"file": (f"IMG_{seq}.JPG", data, "image/jpeg")},
                       data={"seq": str(seq)}, headers={"Authorization": f"Bearer {token}"})


def test_item6_past_the_shared_memory_budget_a_camera_is_told_to_retry(app) -> None:
    application, ws = app
    token = add_camera(ws, "C1")
    budget: UploadBudget = application.state.pardus.upload_budget
    with TestClient(application) as client:
        assert budget.take(3 * LIMIT - 1000), "other cameras' uploads fill the budget"
        r = _post(client, token, jpeg(1), 1)
        assert r.status_code == 503 and r.headers["retry-after"] == "5", r.text
        assert "send it again" in r.json()["error"]
        assert _count(ws) == 0 and budget.used == 3 * LIMIT - 1000, "nothing stored, nothing of it kept held"
        budget.give(3 * LIMIT - 1000)
        assert _post(client, token, jpeg(1), 1).status_code == 201
        assert _post(client, token, jpeg(1), 1).status_code == 200  # the retry of a stored photo: a duplicate
        assert _post(client, token, b"\xff\xd8" + b"0" * (LIMIT + 100_000), 2).status_code == 413
        assert budget.used == 0, "given back after stored, duplicate and cut-off uploads alike"
        assert _count(ws) == 1


def test_item6_many_cameras_at_once_each_upload_stored_once_or_told_to_retry(app) -> None:
    application, ws = app
    token = add_camera(ws, "C1")
    photos = [unique(jpeg(i, size=(1024, 768)), f"photo {i}") for i in range(16)]
    with TestClient(application) as client, ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: _post(client, token, photos[i], i + 1).status_code, range(len(photos))))
        assert set(codes) <= {201, 503}, codes
        assert _count(ws) == codes.count(201)
        retried = [i for i, c in enumerate(codes) if c == 503]
        for i in retried:  # what a camera does after a 503: send the same photo again
            assert _post(client, token, photos[i], i + 1).status_code == 201
    assert _count(ws) == len(photos)
    assert application.state.pardus.upload_budget.used == 0
