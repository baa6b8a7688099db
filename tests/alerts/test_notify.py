"""Delivery over real loopback services: signed webhook with retries and dead-letter, SMTP, apprise,
MQTT (Mosquitto) and an EarthRanger-style event; every attempt is recorded."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from sqlalchemy import select
from tests.conftest import _service_missing
from tests.live.helpers import Receiver, jpeg

from pardus.alerts.notify import DeliveryWorker, channels_from, verify_signature
from pardus.alerts.rules import parse_rules
from pardus.ingest.one import ingest_file
from pardus.live.cameras import add_camera
from pardus.live.queue import LiveWorker, enqueue
from pardus.store import Workspace
from pardus.store.models import Alert, AlertEvent, Deployment, Detection, Location


def _alert_with(ws: Workspace, channels: list[dict], category: str = "person", sensitive: bool = False,
                kind_rule: str = "person", backoff_s: float = 0.05) -> tuple[str, DeliveryWorker]:
    add_camera(ws, "C1")
    with ws.db.session() as s:
        s.add(Location(id="L1", name="Kedrovaya", longitude=131.45, latitude=43.18, sensitive=sensitive))
        s.add(Deployment(id="D1", camera_id="C1", location_id="L1"))
    mid = ingest_file(ws, jpeg(1), camera_id="C1", camera_seq=1, on_created=enqueue).media_id
    with ws.db.session() as s:
        s.add(Detection(media_id=mid, category=category, score=0.8, x=0.1, y=0.1, w=0.2, h=0.4, model_name="t",
                        model_version="1"))
    rules = parse_rules(f"rules: [{{kind: {kind_rule}}}]")
    rules.channels = channels
    deliveries = DeliveryWorker(ws, channels_from(channels), backoff_s=backoff_s)
    worker = LiveWorker(ws, rules, deliveries=deliveries)
    worker.drain()
    with ws.db.session() as s:
        return s.scalars(select(Alert)).one().id, deliveries


def _wait(cond, timeout: float = 10.0) -> None:
    t0 = time.time()
    while not cond():
        if time.time() - t0 > timeout:
            raise AssertionError("timed out")
        time.sleep(0.02)


def _deliveries(ws: Workspace, alert_id: str) -> tuple[dict, list[AlertEvent]]:
    with ws.db.session() as s:
        a = s.get(Alert, alert_id)
        evs = list(s.scalars(select(AlertEvent).where(AlertEvent.alert_id == alert_id,
                                                      AlertEvent.action.in_(["delivery", "dead-letter"]))
                             .order_by(AlertEvent.id)))
        return a.details["deliveries"], evs


def test_webhook_is_signed_retried_with_backoff_and_recorded(sqlite_settings) -> None:
    from pardus.store import open_workspace

    ws = open_workspace(sqlite_settings)
    rx = Receiver(fail_first=2)
    try:
        alert_id, dw = _alert_with(ws, [{"name": "ops", "type": "webhook", "url": rx.url + "/hook",
                                         "secret": "s3cret", "tries": 4}], backoff_s=0.3)
        dw.start()
        _wait(lambda: _deliveries(ws, alert_id)[0]["ops"]["status"] == "delivered")
        dw.stop()
        state, events = _deliveries(ws, alert_id)
        assert state["ops"]["tries"] == 3 and [e.details["ok"] for e in events] == [False, False, True]
        assert "HTTP 500" in events[0].details["error"]
        gaps = [b["at"] - a["at"] for a, b in zip(rx.requests, rx.requests[1:], strict=False)]
        # each gap is the backoff plus the same delivery overhead (0.4 s of it seen at load 10), so the
        # doubling shows as the second gap at least 0.6 s and about 0.3 s longer than the first
        assert gaps[0] >= 0.3 and gaps[1] >= 0.6 and gaps[1] - gaps[0] >= 0.15, f"backoff 0.3 s, then 0.6 s: {gaps}"
        req = rx.requests[-1]
        h = {k.lower(): v for k, v in req["headers"].items()}
        assert verify_signature("s3cret", h["x-pardus-timestamp"], req["body"], h["x-pardus-signature"])
        assert not verify_signature("other", h["x-pardus-timestamp"], req["body"], h["x-pardus-signature"])
        assert not verify_signature("s3cret", h["x-pardus-timestamp"], req["body"] + b" ", h["x-pardus-signature"])
        body = json.loads(req["body"])
        assert body["id"] == alert_id and body["kind"] == "person" and body["evidence"]["count"] == 1
    finally:
        rx.close()
        ws.close()


def test_dead_letter_after_n_tries_and_recovery_after_restart(workspace: Workspace) -> None:
    rx = Receiver(fail_first=100)
    try:
        chans = [{"name": "ops", "type": "webhook", "url": rx.url, "secret": "k", "tries": 3}]
        alert_id, dw = _alert_with(workspace, chans)
        # The server "restarts": a new delivery worker finds the pending delivery in the store.
        dw2 = DeliveryWorker(workspace, channels_from(chans), backoff_s=0.02)
        assert dw2.recover() == 1
        dw2.start()
        _wait(lambda: _deliveries(workspace, alert_id)[0]["ops"]["status"] == "dead-letter")
        dw2.stop()
        state, events = _deliveries(workspace, alert_id)
        assert [e.action for e in events] == ["delivery", "delivery", "delivery", "dead-letter"]
        assert len(rx.requests) == 3 and state["ops"]["tries"] == 3
        assert DeliveryWorker(workspace, channels_from(chans)).recover() == 0, "a dead letter is not retried"
    finally:
        rx.close()


def test_email_over_smtp_on_loopback(sqlite_settings) -> None:
    from aiosmtpd.controller import Controller

    from pardus.store import open_workspace

    got: list = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's naming
            got.append(envelope)
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ctl = Controller(Handler(), hostname="127.0.0.1", port=port)
    ctl.start()
    ws = open_workspace(sqlite_settings)
    try:
        alert_id, dw = _alert_with(ws, [{"name": "duty", "type": "email", "host": "127.0.0.1", "port": port,
                                         "sender": "pardus@park.test", "to": ["duty@park.test"]}], category="vehicle",
                                   kind_rule="vehicle")
        dw.start()
        _wait(lambda: bool(got))
        _wait(lambda: _deliveries(ws, alert_id)[0]["duty"]["status"] == "delivered")
        dw.stop()
        msg = got[0].content.decode()
        assert got[0].rcpt_tos == ["duty@park.test"] and "Vehicle at camera C1" in msg
        assert "43.18000" in msg and "pardus alerts ack" in msg
    finally:
        ctl.stop()
        ws.close()


def test_apprise_url_and_earthranger_event_with_sensitive_locations_withheld_from_chats(sqlite_settings) -> None:
    from pardus.store import open_workspace

    ws = open_workspace(sqlite_settings)
    chat, er = Receiver(), Receiver()
    try:
        chans = [{"name": "chat", "type": "apprise", "urls": [f"json://127.0.0.1:{chat.port}/notify"]},
                 {"name": "er", "type": "earthranger", "url": er.url, "token": "er-token",
                  "exact_locations": True}]  # the park's own ranger system, trusted by saying so
        add_camera(ws, "C1")
        with ws.db.session() as s:
            s.add(Location(id="L1", longitude=131.45, latitude=43.18, sensitive=True))
            s.add(Deployment(id="D1", camera_id="C1", location_id="L1"))
        from pardus.store.models import Observation

        mid = ingest_file(ws, jpeg(2), camera_id="C1", on_created=enqueue).media_id
        with ws.db.session() as s:
            s.add(Observation(deployment_id="D1", media_id=mid, observation_type="animal",
                              scientific_name="Panthera pardus orientalis", classification_method="machine",
                              extra={"reid": {"is_new": True}}))
        rules = parse_rules("rules: [{kind: new-individual}]")
        rules.channels = chans
        dw = DeliveryWorker(ws, channels_from(chans), backoff_s=0.05)
        LiveWorker(ws, rules, deliveries=dw).drain()
        dw.start()
        _wait(lambda: chat.arrived.is_set() and er.arrived.is_set())
        dw.stop()
        chat_body = json.loads(chat.requests[0]["body"])
        assert "Unknown individual at camera C1" in chat_body["title"]
        assert "43.18" not in chat.requests[0]["body"].decode(), "a leopard's exact spot must not reach a chat"
        ev = json.loads(er.requests[0]["body"])
        assert er.requests[0]["path"] == "/api/v1.0/activity/events"
        assert er.requests[0]["headers"]["Authorization"] == "Bearer er-token"
        assert ev["event_type"] == "pardus_new_individual"
        assert ev["location"] == {"latitude": 43.18, "longitude": 131.45}
        assert ev["priority"] == 200 and ev["event_details"]["camera_id"] == "C1"
    finally:
        chat.close()
        er.close()
        ws.close()


def _mosquitto() -> None:
    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=1).close()
    except OSError:
        _service_missing("Mosquitto at 127.0.0.1:1883")


def test_mqtt_publish_to_mosquitto(sqlite_settings) -> None:
    import paho.mqtt.client as mqtt

    from pardus.store import open_workspace

    _mosquitto()
    got: list = []
    ready = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_connect = lambda c, *a: (c.subscribe("pardus-test/alerts/#", qos=1), ready.set())
    sub.on_message = lambda c, u, m: got.append(m)
    sub.connect("127.0.0.1", 1883)
    sub.loop_start()
    ws = open_workspace(sqlite_settings)
    try:
        assert ready.wait(5)
        time.sleep(0.2)
        alert_id, dw = _alert_with(ws, [{"name": "bus", "type": "mqtt", "topic": "pardus-test/alerts"}], "fire",
                                   kind_rule="fire")
        dw.start()
        _wait(lambda: bool(got))
        dw.stop()
        assert got[0].topic == "pardus-test/alerts/fire" and json.loads(got[0].payload)["id"] == alert_id
    finally:
        sub.loop_stop()
        sub.disconnect()
        ws.close()


def test_channel_config_mistakes_are_named() -> None:
    from pardus.alerts.notify import ChannelError

    with pytest.raises(ChannelError, match="needs url"):
        channels_from([{"type": "webhook"}])
    with pytest.raises(ChannelError, match="type: one of"):
        channels_from([{"type": "pigeon"}])


def test_item2_every_channel_withholds_sensitive_places_unless_the_park_says_otherwise() -> None:
    """Issue 19, item 2: webhook, e-mail, MQTT and EarthRanger got exact coordinates by default."""
    from pardus.alerts.notify import Channel

    for kind in ("webhook", "email", "mqtt", "earthranger", "apprise"):
        assert not Channel({"type": kind}).exact_locations, kind
        assert Channel({"type": kind, "exact_locations": True}).exact_locations
        assert not Channel({"type": kind, "exact_locations": "yes"}).exact_locations  # only a real true
