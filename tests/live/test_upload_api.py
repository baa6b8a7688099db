"""The camera upload API: tokens, size and type limits, idempotency, heartbeats (both databases)."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select
from tests.live.helpers import jpeg

from pardus.ingest.synthetic import camera_jpeg
from pardus.live.cameras import add_camera, issue_token, revoke_token
from pardus.live.queue import QUEUE_STAGE
from pardus.store import Workspace
from pardus.store.models import Camera, Deployment, Media, SensorReading, StageState
from pardus.web.app import LiveConfig, create_app


@pytest.fixture
def client(workspace: Workspace):
    app = create_app(workspace, LiveConfig(pipeline=False, max_upload_bytes=200_000))
    with TestClient(app) as c:
        yield c


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _media_count(ws: Workspace) -> int:
    with ws.db.session() as s:
        return s.scalar(select(func.count()).select_from(Media)) or 0


def _post(client: TestClient, cam: str, data: bytes, token: str | None, seq: int | None = 1,
          name: str = "IMG_0001.JPG"):
    headers = _auth(token) if token else {}
    form = {"seq": str(seq)} if seq is not None else {}
    return client.post(f"/api/v1/cameras/{cam}/media", files={"file": (name, data, "image/jpeg")}, data=form,
                       headers=headers)


def test_tokens_are_stored_only_as_salted_hashes(workspace: Workspace) -> None:
    t1 = add_camera(workspace, "C1")
    t2 = add_camera(workspace, "C2")
    with workspace.db.session() as s:
        stored = {c.id: c.token_hash for c in s.scalars(select(Camera))}
    secret = t1.rsplit(".", 1)[1]
    assert t1.startswith("pdc.C1.") and secret not in stored["C1"] and t1 not in stored["C1"]
    assert stored["C1"].startswith("hmac-sha256$") and stored["C1"] != stored["C2"]
    # Nothing in the whole database holds the token text.
    with workspace.db.engine.connect() as conn:
        from sqlalchemy import text

        rows = conn.execute(text("SELECT id, token_hash, extra, health FROM camera")).all()
    assert all(secret not in str(r) and t2.rsplit(".", 1)[1] not in str(r) for r in rows)


def test_upload_needs_the_cameras_own_valid_token(workspace: Workspace, client: TestClient) -> None:
    t1 = add_camera(workspace, "C1")
    t2 = add_camera(workspace, "C2")
    photo = jpeg(1)
    r = _post(client, "C1", photo, None)
    assert r.status_code == 401 and "Bearer" in r.json()["error"] and r.headers["www-authenticate"] == "Bearer"
    assert _post(client, "C1", photo, "pdc.C1.guessed").status_code == 401
    r = _post(client, "C1", photo, t2)
    assert r.status_code == 403 and "belongs to camera C2" in r.json()["error"]
    r = _post(client, "NOPE", photo, t1)  # another camera's token: it says whose, nothing about NOPE
    assert r.status_code == 403 and "belongs to camera C1" in r.json()["error"]
    # Issue 19 item 6: an unknown id is answered as a wrong token is, so ids cannot be listed by probing.
    unknown, wrong = _post(client, "NOPE", photo, "pdc.NOPE.guessed"), _post(client, "C1", photo, "pdc.C1.guessed")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["error"].replace("NOPE", "C1") == wrong.json()["error"]
    assert _post(client, "NOPE", photo, None).json() == _post(client, "C1", photo, None).json()
    assert _media_count(workspace) == 0, "no refused upload may store anything"
    assert _post(client, "C1", photo, t1).status_code == 201
    revoke_token(workspace, "C1")
    r = _post(client, "C1", jpeg(2), t1)
    assert r.status_code == 403 and "revoked" in r.json()["error"]
    new = issue_token(workspace, "C1")
    assert _post(client, "C1", jpeg(2), t1).status_code == 401, "the replaced token must stay dead"
    assert _post(client, "C1", jpeg(2), new, seq=2).status_code == 201
    assert _media_count(workspace) == 2


def test_resend_after_a_lost_reply_creates_nothing_twice(workspace: Workspace, client: TestClient) -> None:
    token = add_camera(workspace, "C1")
    photo = jpeg(3)
    first = _post(client, "C1", photo, token, seq=7)
    assert first.status_code == 201, first.text
    again = _post(client, "C1", photo, token, seq=7)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["media_id"] == first.json()["media_id"]
    # Same bytes under another sequence number, or no number at all: still the one stored photo.
    assert _post(client, "C1", photo, token, seq=8).json()["media_id"] == first.json()["media_id"]
    # A camera that restarted its counter: a new picture with a used number is kept, flagged, not dropped.
    other = _post(client, "C1", jpeg(4), token, seq=7)
    assert other.status_code == 201 and "already used" in other.json()["note"]
    with workspace.db.session() as s:
        rows = list(s.scalars(select(Media).order_by(Media.imported)))
        queued = s.scalar(select(func.count()).select_from(StageState).where(StageState.stage == QUEUE_STAGE))
        dep = s.get(Deployment, rows[0].deployment_id)
    assert len(rows) == 2 and queued == 2, "every stored upload is queued exactly once"
    assert rows[0].camera_seq == 7 and rows[1].camera_seq is None and rows[1].extra["camera_seq_reused"] == 7
    assert dep is not None and dep.camera_id == "C1" and dep.end is None
    assert rows[0].timestamp_source == "exif" and rows[0].camera_time.hour == 23
    assert workspace.blobs.exists(rows[0].sha256) and workspace.blobs.verify(rows[0].sha256)


def test_size_limit_holds_while_streaming_and_types_are_checked(workspace: Workspace, client: TestClient) -> None:
    token = add_camera(workspace, "C1")
    big = camera_jpeg(None, size=(1600, 1200), seed=5, quality=95)
    assert len(big) > 200_000
    r = _post(client, "C1", big, token)
    assert r.status_code == 413 and "limit" in r.json()["error"]

    def chunks():  # no Content-Length: the server must count what streams in and stop
        for _ in range(100):
            yield b"\xff" * 10_000

    r = client.post("/api/v1/cameras/C1/media", content=chunks(),
                    headers={**_auth(token), "Content-Type": "image/jpeg"})
    assert r.status_code == 413
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buf, "PNG")
    r = _post(client, "C1", buf.getvalue(), token, name="fake.jpg")
    assert r.status_code == 415 and "PNG" in r.json()["error"]
    r = _post(client, "C1", b"<html>hello</html>", token)
    assert r.status_code == 415 and "HTML" in r.json()["error"]
    r = _post(client, "C1", jpeg(6)[:5000], token)  # a truncated JPEG is a photo: kept, flagged damaged
    assert r.status_code == 201
    assert _media_count(workspace) == 1
    raw = client.post("/api/v1/cameras/C1/media", content=jpeg(9),
                      headers={**_auth(token), "Content-Type": "image/jpeg", "X-Camera-Seq": "99"})
    assert raw.status_code == 201 and raw.json()["seq"] == 99
    assert _post(client, "C1", jpeg(10), token, seq=-1).status_code == 400


def test_heartbeat_records_health_and_readings(workspace: Workspace, client: TestClient) -> None:
    token = add_camera(workspace, "C1", expected_interval_s=600)
    body = {"battery_pct": 76, "signal_dbm": -97, "temperature_c": -18.5, "free_storage_mb": 3120, "fw": "2.1"}
    r = client.post("/api/v1/cameras/C1/heartbeat", json=body, headers=_auth(token))
    assert r.status_code == 200, r.text
    assert client.post("/api/v1/cameras/C1/heartbeat", json=body).status_code == 401
    r = client.post("/api/v1/cameras/C1/heartbeat", json={"junk": "x" * 100_000}, headers=_auth(token))
    assert r.status_code == 413, "heartbeats are small; a large body is refused while it streams"
    r = client.post("/api/v1/cameras/C1/heartbeat", json={"battery_pct": "full"}, headers=_auth(token))
    assert r.status_code == 400 and "battery_pct" in r.json()["error"]
    with workspace.db.session() as s:
        cam = s.get(Camera, "C1")
        kinds = sorted(s.scalars(select(SensorReading.kind).where(SensorReading.source_id == "C1")))
    assert cam is not None and cam.last_seen is not None
    assert cam.health["battery_pct"] == 76 and cam.health["temperature_c"] == -18.5
    assert cam.health["other"] == {"fw": "2.1"}
    assert kinds == ["battery", "free_storage", "heartbeat", "signal", "temperature"]


def _mp4(frames: int = 12) -> bytes:
    import av
    import numpy as np

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=12)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(frames):
            img = np.full((120, 160, 3), (i * 20) % 255, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def test_a_video_upload_is_stored_with_its_length(workspace: Workspace, client: TestClient) -> None:
    token = add_camera(workspace, "C1")
    r = client.post("/api/v1/cameras/C1/media", headers=_auth(token), data={"seq": "5"},
                    files={"file": ("CLIP0005.MP4", _mp4(), "video/mp4")})
    assert r.status_code == 201, r.text
    with workspace.db.session() as s:
        m = s.get(Media, r.json()["media_id"])
    assert m.file_mediatype == "video/mp4" and m.width == 160 and 0.5 < (m.duration_s or 0) < 2
    assert m.thumbnail_key and m.timestamp_source == "received"


def test_the_server_fsyncs_every_commit_on_sqlite(sqlite_settings) -> None:
    from sqlalchemy import text

    from pardus.store import open_workspace

    ws = open_workspace(sqlite_settings)
    create_app(ws, LiveConfig(pipeline=False))
    with ws.db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    ws.close()


def test_hostile_upload_and_heartbeat_bodies_get_a_400_not_a_500(workspace: Workspace, client: TestClient) -> None:
    """Issue 19, item 5 (server side): a 5,000-character file name, a non-UTF-8 or deeply nested
    heartbeat are answered with what is wrong; nothing is stored."""
    token = add_camera(workspace, "C1")
    r = _post(client, "C1", jpeg(), token, name="A" * 5000 + ".JPG")
    assert r.status_code == 400 and "malformed" in r.json()["error"], r.text
    before = _media_count(workspace)
    for body, words in ((b"\xff\xfe\x00garbage", "UTF-8 JSON"), (b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
                        (b'"just a string"', "JSON object")):
        r = client.post("/api/v1/cameras/C1/heartbeat", content=body, headers=_auth(token))
        assert r.status_code == 400 and words in r.json()["error"], r.text
    r = client.post("/api/v1/cameras/C1/heartbeat", content=b"[" * 100_000, headers=_auth(token))
    assert r.status_code == 413 and "64 KB" in r.json()["error"], r.text
    # Issue 19 item 3: an image bomb's header gets a clear refusal, not an HTTP 500.
    from tests.ingest.test_ingest_bad_input import _declare_size

    r = _post(client, "C1", _declare_size(jpeg(), 20000, 20000), token, seq=77)
    assert r.status_code == 415 and "megapixels" in r.json()["error"], r.text
    boundary = "x" * 80
    raw = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{'B' * 70_000}\"\r\n"
           "Content-Type: image/jpeg\r\n\r\n").encode() + jpeg() + f"\r\n--{boundary}--\r\n".encode()
    r = client.post("/api/v1/cameras/C1/media", content=raw, headers={
        **_auth(token), "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code in (400, 413) and "error" in r.json(), r.text
    assert _media_count(workspace) == before
    with workspace.db.session() as s:
        assert s.scalar(select(func.count()).select_from(SensorReading)) == 0


def test_item6_health_tells_a_stranger_only_whether_the_server_runs(workspace: Workspace, client: TestClient) -> None:
    from pardus.people.accounts import add_user

    anon = client.get("/api/v1/health").json()
    assert anon["ok"] in (True, False) and anon["queue"] is None and anon["processed"] is None
    token = add_user(workspace, "monitor", "viewer", token=True)
    full = client.get("/api/v1/health", headers=_auth(token or "")).json()
    assert isinstance(full["queue"], dict) and full["processed"] == 0


def test_item6_a_viewer_gets_the_original_without_its_gps(workspace: Workspace, client: TestClient,
                                                          tmp_path) -> None:
    """Found while hardening: /media/<id>/file served the stored original, EXIF GPS included, to any
    signed-in person. A viewer now gets it without the GPS block; a ranger (who may see exact places)
    the original byte for byte; the stored original never changes."""
    import io

    import exifread
    from tests.interop.test_camtrap_dp_native import _jpeg_with_gps

    from pardus.people.accounts import add_user

    data = _jpeg_with_gps()
    cam = add_camera(workspace, "C1")
    media_id = _post(client, "C1", data, cam).json()["media_id"]
    for role, keeps in (("viewer", False), ("ranger", True)):
        token = add_user(workspace, f"a-{role}", role, token=True)
        got = client.get(f"/media/{media_id}/file", headers=_auth(token or ""))
        assert got.status_code == 200, got.text
        tags = exifread.process_file(io.BytesIO(got.content), details=False)
        assert any(k.startswith("GPS") for k in tags) is keeps
        assert (got.content == data) is keeps
    with workspace.db.session() as s:
        assert workspace.blobs.get_bytes(s.get(Media, media_id).sha256) == data
