"""The live queue on the real detector, camera health (offline, tampered) and the MQTT gateway."""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import func, select
from tests.conftest import _service_missing

from pardus.alerts.rules import parse_rules
from pardus.ingest.one import ingest_file
from pardus.live.cameras import add_camera
from pardus.live.queue import QUEUE_STAGE, LiveWorker, enqueue
from pardus.models.registry import COCO_SSD, YOLOX_TINY
from pardus.simulate import render_frame
from pardus.store import Workspace, open_workspace
from pardus.store.models import Alert, Camera, Detection, Media, SensorReading, StageState, utcnow

NIGHT = datetime(2024, 7, 14, 23, 5)
# A rendered night frame with a poacher that the default detector finds (person, score 0.56).
PERSON_SEED = 5


def _kinds(ws: Workspace) -> list[str]:
    with ws.db.session() as s:
        return sorted(s.scalars(select(Alert.kind)))


@pytest.mark.slow
@pytest.mark.skipif(not (YOLOX_TINY.available() and COCO_SSD.available()), reason="detector weights not installed")
def test_night_person_is_triaged_first_then_fully_processed_once(sqlite_settings) -> None:
    from pardus.live.triage import TriageStage
    from pardus.pipeline.stages import default_stages

    ws = open_workspace(sqlite_settings)
    add_camera(ws, "C1")
    person = ingest_file(ws, render_frame("person", night=True, seed=PERSON_SEED, when=NIGHT), camera_id="C1",
                         camera_seq=1, on_created=enqueue).media_id
    blank = ingest_file(ws, render_frame("blank", night=True, seed=PERSON_SEED, when=NIGHT, frame_index=2),
                        camera_id="C1", camera_seq=2, on_created=enqueue).media_id
    rules = parse_rules("rules: [{name: people-at-night, kind: person, when: night}, {kind: vehicle}]")
    worker = LiveWorker(ws, rules, stages=default_stages(), triage=TriageStage())
    t0 = time.perf_counter()
    assert worker.step_new() == 2  # both new uploads are triaged before any full detection
    triage_s = time.perf_counter() - t0
    assert _kinds(ws) == ["person"], "the person alert exists before the full pipeline ran"
    assert worker.drain() == 2
    with ws.db.session() as s:
        states = dict(s.execute(select(StageState.media_id, StageState.status)
                                .where(StageState.stage == QUEUE_STAGE)).all())
        assert states == {person: "done", blank: "done"}
        det_states = s.scalar(select(func.count()).select_from(StageState).where(StageState.stage == "detect"))
        assert det_states == 2
        cats = sorted(s.scalars(select(Detection.category).where(Detection.media_id == person)))
        assert cats.count("person") >= 2, cats  # one box from triage, one from the full detection
        alert = s.scalars(select(Alert)).one()
        assert alert.media_id == person and alert.details["evidence"]["night"] is True
        media = s.get(Media, person)
        assert media.extra["ir_night"] is True
    print(f"triage of 2 uploads (models loading included): {triage_s:.2f} s")
    ws.close()


def _thumbless_upload(ws: Workspace, jpeg: bytes, seq: int) -> str:
    return ingest_file(ws, jpeg, camera_id="C1", camera_seq=seq, on_created=enqueue).media_id


def test_turned_or_covered_camera_raises_tampered_once(sqlite_settings) -> None:
    ws = open_workspace(sqlite_settings)
    add_camera(ws, "C1")
    worker = LiveWorker(ws, parse_rules("window_minutes: 30\nrules: [{kind: camera-tampered}]"))
    day = datetime(2024, 7, 14, 12, 0)
    for i, content in enumerate(["blank", "animal", "person", "blank"]):
        _thumbless_upload(ws, render_frame(content, night=False, seed=3, when=day + timedelta(minutes=i),
                                           frame_index=i), i)
    worker.drain()
    assert _kinds(ws) == [], "animals and people in front of the camera are not tampering"
    for i in range(2):  # turned to another view: one alert, the second frame joins it
        _thumbless_upload(ws, render_frame("blank", night=False, seed=11, when=day + timedelta(hours=1, minutes=i),
                                           frame_index=i), 10 + i)
    worker.drain()
    with ws.db.session() as s:
        alert = s.scalars(select(Alert)).one()
        assert alert.kind == "camera-tampered" and "turned" in alert.details["evidence"]["reason"]
        assert alert.details["sightings"] == 1, "after the alert the new view is the reference"
    buf = io.BytesIO()
    Image.new("RGB", (1280, 720), (12, 12, 12)).save(buf, "JPEG")
    with ws.db.session() as s:
        s.get(Alert, alert.id).status = "resolved"
    _thumbless_upload(ws, buf.getvalue(), 20)
    worker.drain()
    with ws.db.session() as s:
        reasons = [a.details["evidence"]["reason"] for a in s.scalars(select(Alert).order_by(Alert.created))]
    assert len(reasons) == 2 and "covered" in reasons[1]
    ws.close()


def test_silent_camera_raises_offline_once_per_silence(workspace: Workspace) -> None:
    add_camera(workspace, "C1", expected_interval_s=60)
    add_camera(workspace, "C2", expected_interval_s=60)
    add_camera(workspace, "C3")  # no interval: never offline
    with workspace.db.session() as s:
        s.get(Camera, "C1").last_seen = utcnow() - timedelta(seconds=200)
        s.get(Camera, "C2").last_seen = utcnow() - timedelta(seconds=30)
    worker = LiveWorker(workspace, parse_rules("rules: [{kind: camera-offline}]"))
    assert len(worker.sweep_offline()) == 1
    assert worker.sweep_offline() == [], "still the same silence: no second alert"
    with workspace.db.session() as s:
        alert = s.scalars(select(Alert)).one()
        assert alert.camera_id == "C1" and alert.details["evidence"]["silent_s"] >= 200
        s.get(Camera, "C1").last_seen = utcnow() - timedelta(seconds=100)  # it spoke, then fell silent again
    assert worker.sweep_offline() == [], "a new silence while the alert is open joins it"
    with workspace.db.session() as s:
        alert = s.scalars(select(Alert)).one()
        assert alert.details["sightings"] == 2
        alert.status = "resolved"
        s.get(Camera, "C1").last_seen = utcnow() - timedelta(seconds=95)
    assert len(worker.sweep_offline()) == 1, "after it was resolved, the next silence is a new alert"


@contextmanager
def _mqtt_camera(settings, prefix: str) -> Iterator[tuple[Workspace, str, str, Any, Callable[[str, Any], dict]]]:
    """A running gateway on the real broker, a camera on a topic no other run shares, and ``send``:
    publish a message (bytes, or a dict sent as JSON) and return the gateway's ack."""
    import paho.mqtt.client as mqtt

    from pardus.live.mqtt import MqttGateway

    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=1).close()
    except OSError:
        _service_missing("Mosquitto at 127.0.0.1:1883")
    ws = open_workspace(settings)
    cam = f"{prefix}{time.time_ns() % 10**9}"
    token = add_camera(ws, cam, expected_interval_s=600)
    gw = MqttGateway(ws)
    gw.start()
    acks: list[dict] = []
    got = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, m: (acks.append(json.loads(m.payload)), got.set())
    client.connect("127.0.0.1", 1883)
    client.subscribe(f"pardus/cameras/{cam}/ack", qos=1)
    client.loop_start()

    def send(what: str, message: Any) -> dict:
        payload = message if isinstance(message, bytes) else json.dumps(message).encode()
        got.clear()
        n = len(acks)
        client.publish(f"pardus/cameras/{cam}/{what}", payload, qos=1)
        assert got.wait(10), f"no ack for {payload[:40]!r}: the gateway died"
        return acks[n]

    try:
        assert gw.connected.wait(5)
        yield ws, cam, token, gw, send
    finally:
        client.loop_stop()
        client.disconnect()
        gw.stop()
        ws.close()


def test_mqtt_gateway_takes_heartbeats_and_photos_with_the_cameras_token(sqlite_settings) -> None:
    from tests.live.helpers import jpeg

    with _mqtt_camera(sqlite_settings, "MQ") as (ws, cam, token, _gw, send):
        assert send("heartbeat", {"token": token, "battery_pct": 55, "signal_dbm": -101})["ok"]
        photo = base64.b64encode(jpeg(4)).decode()
        first = send("media", {"token": token, "seq": 3, "filename": "IMG_0003.JPG", "data": photo})
        again = send("media", {"token": token, "seq": 3, "filename": "IMG_0003.JPG", "data": photo})
        assert first["status"] == 201 and again["status"] == 200 and again["media_id"] == first["media_id"]
        assert send("media", {"token": "pdc.x.y", "seq": 4, "data": photo})["status"] == 401
        assert send("media", {"token": token, "seq": 5, "data": "not base64!"})["status"] == 400
        with ws.db.session() as s:
            assert s.get(Camera, cam).health["battery_pct"] == 55
            assert s.scalar(select(func.count()).select_from(SensorReading)) == 2
            assert s.scalar(select(func.count()).select_from(Media)) == 1
            assert s.get(Media, first["media_id"]).extra["source"] == "mqtt"


def test_item1_mqtt_gateway_survives_hostile_messages_and_health_says_so(sqlite_settings) -> None:
    """Issue 19, item 1: a deeply nested heartbeat or {"seq": "abc"} used to kill the paho loop; now
    each is answered on .../ack and the next good message is still handled."""
    from tests.live.helpers import jpeg

    with _mqtt_camera(sqlite_settings, "MQH") as (_ws, _cam, token, gw, send):
        photo = base64.b64encode(jpeg(4)).decode()
        nested = b'{"token": "' + token.encode() + b'", "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
        for what, payload, words in (
                ("heartbeat", nested, "nested"),
                ("heartbeat", b"\xff\xfe not utf-8", "UTF-8"),
                ("media", {"token": token, "seq": "abc", "data": photo}, "seq"),
                ("media", {"token": token, "seq": True, "data": photo}, "seq"),
                ("media", {"token": token, "seq": 1, "filename": 7, "data": photo}, "filename")):
            reply = send(what, payload)
            assert reply["status"] == 400 and words in reply["error"], reply
        assert send("heartbeat", {"token": token, "battery_pct": 60})["ok"]
        assert send("media", {"token": token, "seq": 9, "data": photo})["status"] == 201
        assert gw.status() == {"connected": True, "error": None, "handled": 7, "failed": 0}


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.one_of(st.binary(max_size=300), st.dictionaries(
    st.sampled_from(["token", "seq", "filename", "data", "battery_pct", "x"]),
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40),
              st.lists(st.integers(), max_size=3)), max_size=5).map(lambda d: json.dumps(d).encode())),
       what=st.sampled_from(["heartbeat", "media"]))
def test_mqtt_messages_of_any_shape_get_a_reply_never_an_exception(sqlite_settings, payload: bytes, what: str) -> None:
    from pardus.live.mqtt import MqttGateway

    ws = _hostile_ws(sqlite_settings)
    reply = MqttGateway(ws).handle("C1", what, payload)
    assert isinstance(reply, dict) and ("ok" in reply) and (reply["ok"] or reply["status"] in (400, 401, 403, 404, 413))


_WS: dict[str, Any] = {}


def _hostile_ws(s) -> Any:
    """One store for all generated examples (a camera C1 with a token nobody sends)."""
    key = str(s.data_dir)
    if key not in _WS:
        ws = open_workspace(s)
        add_camera(ws, "C1")
        _WS[key] = ws
    return _WS[key]
