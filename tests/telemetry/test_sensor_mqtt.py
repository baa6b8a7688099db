"""Sensor readings over MQTT, against a real Mosquitto the test starts on a free loopback port:
readings stored with the sensor's own token, a redelivery stored once, a PM2.5 rise raising the
fire alert, every kind of bad message answered on .../ack while the gateway goes on; and
`pardus serve`'s app starts the sensor gateway beside the cameras' one."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.conftest import _service_missing

from pardus.live.broker import Broker
from pardus.store.models import Alert, SensorReading
from pardus.telemetry.sensors import add_sensor, issue_token


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    if shutil.which("mosquitto") is None:
        _service_missing("Mosquitto (the mosquitto program)")
    d = tmp_path_factory.mktemp("mosquitto-sensors")
    port = _free_port()
    (d / "m.conf").write_text(f"user root\nlistener {port} 127.0.0.1\nallow_anonymous true\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(d / "m.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 5
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            _service_missing("a Mosquitto started by the test")
        yield Broker(port=port)
    finally:
        proc.terminate()
        proc.wait(5)


class Sensor:
    """A sensor's side of the broker: publishes readings, waits for each acknowledgement."""

    def __init__(self, broker: Broker, sensor_id: str) -> None:
        import paho.mqtt.client as mqtt

        self.sensor_id = sensor_id
        self.acks: list[dict[str, Any]] = []
        self.arrived = threading.Condition()
        ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        broker.configure(self.client)
        self.client.on_connect = lambda c, *_: (c.subscribe(f"pardus/sensors/{sensor_id}/ack", qos=1), ready.set())
        self.client.on_message = self._ack
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert ready.wait(5)
        time.sleep(0.2)  # the subscription is in place before the first publish

    def _ack(self, _c: Any, _u: Any, m: Any) -> None:
        with self.arrived:
            self.acks.append(json.loads(m.payload))
            self.arrived.notify_all()

    def send(self, payload: bytes | dict[str, Any]) -> dict[str, Any]:
        n = len(self.acks)
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.client.publish(f"pardus/sensors/{self.sensor_id}/readings", body, qos=1)
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.acks) > n, timeout=10), "no acknowledgement"
            return self.acks[n]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_readings_over_mqtt_and_bad_messages(broker: Broker, workspace_sqlite, tmp_path: Path) -> None:
    from tests.telemetry.helpers import khasansky_park

    from pardus.telemetry.mqtt import SensorGateway

    ws = workspace_sqlite
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {name: pm25-rise, kind: sensor, readings: [pm25], rise: 25, over_minutes: 120, "
                     "within_m: 3000}\n")
    with ws.db.session() as s:
        khasansky_park(s)
        add_sensor(s, "PM25-1", "pm25", latitude=42.896, longitude=131.339)
        add_sensor(s, "OTHER", "smoke")
        s.flush()
        token = issue_token(s, "PM25-1")
        other = issue_token(s, "OTHER")
    gw = SensorGateway(ws, broker=broker, rules_path=rules)
    gw.start()
    assert gw.connected.wait(5), gw.status()
    pm = Sensor(broker, "PM25-1")
    nobody = Sensor(broker, "NOPE")
    try:
        t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=40)
        readings = [{"time": (t0 + timedelta(minutes=10 * i)).isoformat(), "kind": "pm25", "value": v,
                     "unit": "ug/m3"} for i, v in enumerate([8, 9, 11])]
        assert pm.send({"token": token, "readings": readings}) == {"ok": True, "stored": 3, "already": 0,
                                                                  "alerts": []}
        # A broker's redelivery (or a gateway's retry) stores nothing twice.
        assert pm.send({"token": token, "readings": readings})["already"] == 3

        bad = {
            b"not json": "UTF-8 JSON object",
            b"\xff\xfe\x00": "UTF-8 JSON object",
            b"[1, 2]": "UTF-8 JSON object",
            b"[" * 100_000 + b"]" * 100_000: "UTF-8 JSON object",
            json.dumps({"readings": readings}).encode(): "missing token",
            json.dumps({"token": other, "readings": readings}).encode(): "wrong token",
            json.dumps({"token": token, "readings": []}).encode(): "list of 1 to",
            json.dumps({"token": token, "readings": "x"}).encode(): "list of 1 to",
            json.dumps({"token": token, "readings": [{"time": "2024-05-01 06:30", "kind": "pm25",
                                                      "value": 3}]}).encode(): "no time zone",
            json.dumps({"token": token, "readings": [readings[0], {"time": readings[0]["time"], "kind": "pm25",
                                                                   "value": "high"}]}).encode(): "#2",
            json.dumps({"token": token, "readings": [7]}).encode(): "must be an object",
            json.dumps({"token": token, "time": readings[0]["time"], "kind": "pm25",
                        "value": 1e400}).encode(): "finite",
            b"{" + b" " * (1024 * 1024 + 1) + b"}": "larger than",
        }
        for payload, says in bad.items():
            ack = pm.send(payload)
            assert not ack["ok"] and says in ack["error"], (payload[:60], ack)
        ack = nobody.send({"token": token, "readings": readings})
        assert ack["status"] == 401 and "wrong token" in ack["error"]  # an unknown id looks like a wrong token
        assert gw.status()["failed"] == 0 and gw.connected.is_set()

        # Still serving: a PM2.5 rise beside camera CAM0 raises the fire alert there.
        rise = {"token": token, "time": (t0 + timedelta(minutes=30)).isoformat(), "kind": "pm25", "value": 60.5,
                "unit": "ug/m3"}
        ack = pm.send(rise)
        assert ack["ok"] and ack["stored"] == 1 and len(ack["alerts"]) == 1
        with ws.db.session() as s:
            alert = s.get(Alert, ack["alerts"][0])
            assert (alert.kind, alert.camera_id) == ("fire", "CAM0")
            assert alert.details["evidence"]["rise"] == pytest.approx(52.5)
            assert [r.value for r in s.scalars(select(SensorReading).where(SensorReading.source_id == "PM25-1")
                                               .order_by(SensorReading.timestamp))] == [8, 9, 11, 60.5]
    finally:
        for c in (pm, nobody):
            c.close()
        gw.stop()


def test_the_app_starts_the_sensor_gateway_with_mqtt(broker: Broker, workspace_sqlite) -> None:
    from fastapi.testclient import TestClient

    from pardus.web.app import LiveConfig, create_app

    with workspace_sqlite.db.session() as s:
        add_sensor(s, "T-1", "temperature")
        s.flush()
        token = issue_token(s, "T-1")
    app = create_app(workspace_sqlite, LiveConfig(pipeline=False, mqtt=True, broker=broker))
    with TestClient(app):
        gw = app.state.pardus.workers["sensor_mqtt"]
        assert gw.connected.wait(5), gw.status()
        t = Sensor(broker, "T-1")
        try:
            ack = t.send({"token": token, "time": "2024-05-01T06:30:00+10:00", "kind": "temperature", "value": 14.5})
            assert ack == {"ok": True, "stored": 1, "already": 0, "alerts": []}
        finally:
            t.close()
    assert not gw.connected.is_set()  # stopped with the app
