"""A real `pardus serve` on loopback: a camera uploads a night frame with a person, the detector finds
it, a webhook receiver gets the signed alert; and the server survives SIGKILL during uploads."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from tests.live.helpers import Receiver, jpeg, unique
from tests.live.test_queue_health import NIGHT, PERSON_SEED

from pardus.alerts.notify import verify_signature
from pardus.config import Settings
from pardus.live.cameras import add_camera
from pardus.live.queue import QUEUE_STAGE
from pardus.models.registry import COCO_SSD, YOLOX_TINY
from pardus.simulate import render_frame
from pardus.store import open_workspace
from pardus.store.models import Alert, AlertEvent, Detection, Media, StageState
from pardus.web.process import ServerProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (YOLOX_TINY.available() and COCO_SSD.available()), reason="detector weights not installed"),
]


def _setup(tmp_path: Path, hook_url: str, cameras: int = 1) -> tuple[Path, Path, list[str]]:
    data = tmp_path / "data"
    ws = open_workspace(Settings(data_dir=data))
    tokens = [add_camera(ws, f"C{i}") for i in range(1, cameras + 1)]
    ws.close()
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "window_minutes: 30\nrules:\n  - {name: people-at-night, kind: person, when: night}\n"
        f"channels:\n  - {{name: ops, type: webhook, url: '{hook_url}', secret: e2e-secret, kinds: [person]}}\n")
    return data, rules, tokens


def _upload(url: str, cam: str, token: str, data: bytes, seq: int) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/cameras/{cam}/media", headers={"Authorization": f"Bearer {token}"},
                      files={"file": (f"IMG_{seq:04d}.JPG", data, "image/jpeg")}, data={"seq": str(seq)}, timeout=30)


def test_night_person_upload_reaches_the_webhook_signed_within_seconds(tmp_path: Path) -> None:
    rx = Receiver()
    data, rules, (token,) = _setup(tmp_path, rx.url + "/alerts")
    server = ServerProcess(data, rules=rules).start()
    try:
        frame = render_frame("person", night=True, seed=PERSON_SEED, when=NIGHT)
        r = _upload(server.url, "C1", token, frame, 1)
        replied = time.time()
        assert r.status_code == 201, r.text
        assert rx.arrived.wait(30), "no alert reached the webhook"
        delay = rx.requests[0]["at"] - replied
        print(f"\nupload reply -> signed webhook delivered: {delay * 1000:.0f} ms")
        req = rx.requests[0]
        h = {k.lower(): v for k, v in req["headers"].items()}
        assert verify_signature("e2e-secret", h["x-pardus-timestamp"], req["body"], h["x-pardus-signature"])
        alert = json.loads(req["body"])
        assert alert["kind"] == "person" and alert["media_id"] == r.json()["media_id"]
        assert alert["evidence"]["night"] is True and alert["evidence"]["best_score"] >= 0.4
        assert delay < 5.0
    finally:
        server.stop()
        rx.close()


def test_sigkill_during_uploads_loses_nothing_and_processes_nothing_twice(tmp_path: Path) -> None:
    rx = Receiver()
    data, rules, tokens = _setup(tmp_path, rx.url, cameras=3)
    server = ServerProcess(data, rules=rules).start()
    base = jpeg(1)
    files = [(f"C{1 + i % 3}", tokens[i % 3], unique(base, f"photo-{i}"), i) for i in range(12)]
    person = render_frame("person", night=True, seed=PERSON_SEED, when=NIGHT)
    files[5] = ("C3", tokens[2], person, 5)
    acked: dict[int, str] = {}
    lock = threading.Lock()

    def send(items: list[tuple[str, str, bytes, int]]) -> None:
        for cam, token, body, seq in items:
            try:
                r = _upload(server.url, cam, token, body, seq)
            except httpx.HTTPError:
                continue  # the server died under us: this upload got no 2xx, the camera will resend
            if r.status_code in (200, 201):
                with lock:
                    acked[seq] = r.json()["media_id"]

    try:
        threads = [threading.Thread(target=send, args=(files[k::3],)) for k in range(3)]
        for t in threads:
            t.start()
        while len(acked) < 5:
            time.sleep(0.05)
        server.kill()
        for t in threads:
            t.join()
        before = dict(acked)
        assert 5 <= len(before) < len(files)
        server = ServerProcess(data, rules=rules, port=server.port).start()
        # The cameras resend what got no reply, and (lost replies) some of what did.
        send([f for f in files if f[3] not in before] + files[:6])
        assert len(acked) == len(files)
        assert all(acked[k] == v for k, v in before.items()), "a resend must find the same stored photo"
        server.wait_idle(timeout_s=240)
    finally:
        server.stop()
        rx.close()
    ws = open_workspace(Settings(data_dir=data))
    try:
        with ws.db.session() as s:
            assert s.scalar(select(func.count()).select_from(Media)) == len(files)
            stored = set(s.scalars(select(Media.id)))
            assert set(acked.values()) == stored
            queue = dict(s.execute(select(StageState.media_id, StageState.status)
                                   .where(StageState.stage == QUEUE_STAGE)).all())
            assert len(queue) == len(files) and set(queue.values()) == {"done"}
            for stage in ("triage", "detect", "daynight"):
                rows = s.execute(select(StageState.media_id, func.count()).where(StageState.stage == stage)
                                 .group_by(StageState.media_id)).all()
                assert len(rows) == len(files) and all(n == 1 for _, n in rows), stage
            per_media = s.execute(select(Detection.media_id, Detection.extra["stage"].as_string(), func.count())
                                  .where(Detection.category == "person")
                                  .group_by(Detection.media_id, Detection.extra["stage"].as_string())).all()
            assert all(n == 1 for *_, n in per_media), f"a photo's boxes were written twice: {per_media}"
            alerts = list(s.scalars(select(Alert)))
            assert [a.kind for a in alerts] == ["person"] and alerts[0].media_id == acked[5]
            created = s.scalar(select(func.count()).select_from(AlertEvent).where(AlertEvent.action == "created"))
            assert created == 1
    finally:
        ws.close()
    assert len({json.loads(r["body"])["id"] for r in rx.requests}) == 1
