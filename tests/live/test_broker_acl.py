"""Issue 19, item 1 (camera tokens readable by any MQTT subscriber): the broker ACL that
docs/security.md gives parks, tried on a real Mosquitto with the real gateway. The ACL is read
from the page itself, so the example a park copies is the one tested."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import REPO, _service_missing
from tests.live.test_broker_tls import _free_port, _wait_port

from pardus.alerts.notify import channels_from
from pardus.live.broker import Broker
from pardus.live.cameras import add_camera
from pardus.store import Workspace, open_workspace
from pardus.store.models import Camera

PASSWORDS = {"pardus": "park-server-pw", "C1": "camera-one-pw", "C2": "camera-two-pw"}


def acl_from_the_docs() -> str:
    """The fenced block after the ``pardus-acl`` marker in docs/security.md."""
    text = (REPO / "docs" / "security.md").read_text()
    m = re.search(r"<!-- pardus-acl[^>]*-->\s*```\n(.*?)```", text, re.DOTALL)
    assert m, "docs/security.md lost its ACL example"
    return m.group(1)


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_passwd") is None:
        _service_missing("Mosquitto (the mosquitto and mosquitto_passwd programs)")
    d = tmp_path_factory.mktemp("mosquitto-acl")
    for i, (user, password) in enumerate(PASSWORDS.items()):
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(d / "pw"), user, password],
                       check=True, capture_output=True)
    (d / "acl").write_text(acl_from_the_docs())
    port = _free_port()
    (d / "m.conf").write_text(f"user root\nlistener {port} 127.0.0.1\nallow_anonymous false\n"
                              f"password_file {d / 'pw'}\nacl_file {d / 'acl'}\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(d / "m.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        if not _wait_port(port):
            _service_missing("a Mosquitto started by the test")
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


class Client:
    """One MQTT user on the broker: what it subscribed to, what the broker granted, what arrived."""

    def __init__(self, port: int, user: str, topics: list[str]) -> None:
        import paho.mqtt.client as mqtt

        self.got: list[tuple[str, bytes]] = []
        self.granted: list[int] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{user}")
        self.client.username_pw_set(user, PASSWORDS[user])

        def on_connect(c: Any, *_: Any) -> None:
            c.subscribe([(t, 1) for t in topics])

        def on_subscribe(_c: Any, _u: Any, _mid: Any, codes: Any, _p: Any = None) -> None:
            self.granted = [int(getattr(code, "value", code)) for code in codes]
            subscribed.set()

        def on_message(_c: Any, _u: Any, m: Any) -> None:
            self.got.append((m.topic, m.payload))

        self.client.on_connect, self.client.on_subscribe, self.client.on_message = on_connect, on_subscribe, on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(5), f"{user} could not subscribe"

    def send(self, topic: str, body: dict[str, Any]) -> None:
        self.client.publish(topic, json.dumps(body), qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _heartbeat_then_ack(camera: Client, camera_id: str, token: str, battery: int) -> dict[str, Any]:
    ack = f"pardus/cameras/{camera_id}/ack"
    before = sum(1 for t, _ in camera.got if t == ack)
    camera.send(f"pardus/cameras/{camera_id}/heartbeat", {"token": token, "battery_pct": battery})
    end = time.monotonic() + 10
    while time.monotonic() < end:
        acks = [body for t, body in camera.got if t == ack]
        if len(acks) > before:
            return json.loads(acks[-1])
        time.sleep(0.02)
    raise AssertionError(f"{camera_id} got no acknowledgement")


def _battery(ws: Workspace, camera_id: str) -> Any:
    with ws.db.session() as s:
        return (s.get(Camera, camera_id).health or {}).get("battery_pct")


def test_item1_a_cameras_credentials_cannot_read_or_write_another_cameras_topics(
        sqlite_settings, port: int, tmp_path: Path) -> None:
    from pardus.live.mqtt import MqttGateway

    ws = open_workspace(sqlite_settings)
    tokens = {cid: add_camera(ws, cid, expected_interval_s=600) for cid in ("C1", "C2")}
    gateway = MqttGateway(ws, broker=Broker(port=port, username="pardus", password=PASSWORDS["pardus"]))
    gateway.start()
    c1 = Client(port, "C1", ["pardus/cameras/C1/ack"])
    # C2's credentials in a thief's hands: everything it might try to read.
    c2 = Client(port, "C2", ["#", "pardus/cameras/C1/heartbeat", "pardus/cameras/C1/media", "pardus/cameras/+/ack",
                             "pardus/alerts/#", "pardus/cameras/C2/ack"])
    try:
        assert gateway.connected.wait(5), gateway.status()
        # Mosquitto 2.0 grants the subscriptions and checks the ACL on every message it would
        # deliver, so what matters is what arrives (below), not the SUBACK.
        assert c1.granted == [1] and len(c2.granted) == 6
        reply = _heartbeat_then_ack(c1, "C1", tokens["C1"], 42)
        assert reply["ok"] and _battery(ws, "C1") == 42  # Pardus still takes the camera's messages
        # C2 sends in C1's name, even with C1's token (stolen elsewhere): the broker drops it.
        c2.send("pardus/cameras/C1/heartbeat", {"token": tokens["C1"], "battery_pct": 1})
        assert _heartbeat_then_ack(c1, "C1", tokens["C1"], 43)["ok"]
        assert _battery(ws, "C1") == 43 and gateway.status()["handled"] == 2
        # An alert published by Pardus's MQTT channel does not reach a camera either.
        (bus,) = channels_from([{"name": "bus", "type": "mqtt", "host": "127.0.0.1", "port": port,
                                 "username": "pardus", "password": PASSWORDS["pardus"]}])
        bus.send({"kind": "person", "id": "A1", "latitude": 43.1234})
        # C2 may use its own topics: its heartbeat is stored and only C2 hears the answer.
        assert _heartbeat_then_ack(c2, "C2", tokens["C2"], 77)["ok"] and _battery(ws, "C2") == 77
        time.sleep(0.3)
        assert [t for t, _ in c2.got] == ["pardus/cameras/C2/ack"], "C2 read something not its own"
        assert all(t == "pardus/cameras/C1/ack" for t, _ in c1.got) and len(c1.got) == 2
        assert not any(tokens["C1"].encode() in body for _, body in c2.got)
    finally:
        c1.close()
        c2.close()
        gateway.stop()
        ws.close()
