"""Issue 19, item 6: MQTT with credentials and verified TLS (gateway and alert channel), and SMTP
whose certificate is verified. A real Mosquitto is started for each test module with a password
file and a TLS listener whose certificate is signed by an authority made here (openssl), so the
tests see exactly what a park's broker would answer; a real aiosmtpd server does STARTTLS."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import _service_missing

from pardus.alerts.notify import ChannelError, channels_from
from pardus.live.broker import Broker, BrokerError
from pardus.live.cameras import add_camera
from pardus.store import open_workspace
from pardus.store.models import Camera

USER, PASSWORD = "pardus", "s3cret-park"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass
class Pki:
    ca: Path  # the authority a park would hand out
    cert: Path  # the broker's / mail server's certificate, signed by ``ca``, for 127.0.0.1
    key: Path
    other_ca: Path  # an authority that signed nothing here


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (apt-get install openssl)")
    d = tmp_path_factory.mktemp("pki")
    for name in ("ca", "other"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=Park {name} CA",
                 "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.pem"))
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", str(d / "server.key"),
             "-out", str(d / "server.csr"))
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
             "-CAcreateserial", "-days", "2", "-extfile", str(d / "san.ext"), "-out", str(d / "server.pem"))
    return Pki(ca=d / "ca.pem", cert=d / "server.pem", key=d / "server.key", other_ca=d / "other.pem")


@dataclass
class Mosquitto:
    plain: int  # password required
    tls: int  # password required, TLS


@pytest.fixture(scope="module")
def mosquitto(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_passwd") is None:
        _service_missing("Mosquitto (the mosquitto and mosquitto_passwd programs)")
    d = tmp_path_factory.mktemp("mosquitto")
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(d / "pw"), USER, PASSWORD], check=True, capture_output=True)
    ports = Mosquitto(plain=_free_port(), tls=_free_port())
    (d / "m.conf").write_text(
        "per_listener_settings true\nuser root\n"
        f"listener {ports.plain} 127.0.0.1\nallow_anonymous false\npassword_file {d / 'pw'}\n"
        f"listener {ports.tls} 127.0.0.1\nallow_anonymous false\npassword_file {d / 'pw'}\n"
        f"certfile {pki.cert}\nkeyfile {pki.key}\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(d / "m.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        if not (_wait_port(ports.plain) and _wait_port(ports.tls)):
            _service_missing("a Mosquitto started by the test")
        yield ports
    finally:
        proc.terminate()
        proc.wait(5)


def _subscribe(broker: Broker, topic: str) -> tuple[Any, list[dict[str, Any]], threading.Event]:
    import paho.mqtt.client as mqtt

    got: list[dict[str, Any]] = []
    event = threading.Event()
    ready = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    broker.configure(client)
    client.on_connect = lambda c, *_: (c.subscribe(topic, qos=1), ready.set())
    client.on_message = lambda c, u, m: (got.append(json.loads(m.payload)), event.set())
    client.connect(broker.host, broker.port)
    client.loop_start()
    assert ready.wait(5)
    time.sleep(0.2)
    return client, got, event


def test_item6_gateway_takes_a_heartbeat_over_verified_tls_with_credentials(
        sqlite_settings, mosquitto: Mosquitto, pki: Pki) -> None:
    from pardus.live.mqtt import MqttGateway

    ws = open_workspace(sqlite_settings)
    token = add_camera(ws, "TLS1", expected_interval_s=600)
    broker = Broker(port=mosquitto.tls, username=USER, password=PASSWORD, tls=True, ca_file=pki.ca)
    gw = MqttGateway(ws, broker=broker)
    gw.start()
    client, acks, got = _subscribe(broker, "pardus/cameras/TLS1/ack")
    try:
        assert gw.connected.wait(5), gw.status()
        client.publish("pardus/cameras/TLS1/heartbeat", json.dumps({"token": token, "battery_pct": 42}), qos=1)
        assert got.wait(10) and acks[0]["ok"], acks
        with ws.db.session() as s:
            assert s.get(Camera, "TLS1").health["battery_pct"] == 42
        assert gw.status()["error"] is None
    finally:
        client.loop_stop()
        client.disconnect()
        gw.stop()
        ws.close()


@pytest.mark.parametrize("case", ["wrong password", "untrusted certificate", "no password"])
def test_item6_gateway_refused_says_why_and_the_server_goes_on(
        sqlite_settings, mosquitto: Mosquitto, pki: Pki, case: str) -> None:
    from pardus.live.mqtt import MqttGateway

    broker = {
        "wrong password": Broker(port=mosquitto.plain, username=USER, password="guess"),
        "untrusted certificate": Broker(port=mosquitto.tls, username=USER, password=PASSWORD, tls=True,
                                        ca_file=pki.other_ca),
        "no password": Broker(port=mosquitto.plain),
    }[case]
    ws = open_workspace(sqlite_settings)
    gw = MqttGateway(ws, broker=broker)
    try:
        gw.start()  # never raises: the web app must start even when the broker turns it away
        end = time.monotonic() + 5
        while gw.status()["error"] is None and time.monotonic() < end:
            time.sleep(0.05)
        status = gw.status()
        assert not status["connected"]
        expected = "not trusted" if case == "untrusted certificate" else "refused the connection"
        assert expected in (status["error"] or ""), status
        assert PASSWORD not in json.dumps(status) and USER not in json.dumps(status)
    finally:
        gw.stop()
        ws.close()


def test_item6_alert_channel_publishes_over_verified_tls_and_refuses_an_untrusted_broker(
        mosquitto: Mosquitto, pki: Pki) -> None:
    base = {"type": "mqtt", "host": "127.0.0.1", "port": mosquitto.tls, "tls": True, "username": USER,
            "password": PASSWORD, "topic": "park/alerts"}
    (good,) = channels_from([{**base, "name": "bus", "ca_file": str(pki.ca)}])
    client, got, event = _subscribe(good.broker(), "park/alerts/#")
    try:
        assert good.send({"kind": "person", "id": "A1"}) == "published park/alerts/person"
        assert event.wait(5) and got[0]["id"] == "A1"
    finally:
        client.loop_stop()
        client.disconnect()
    (untrusted,) = channels_from([{**base, "name": "bus2", "ca_file": str(pki.other_ca)}])
    with pytest.raises(RuntimeError, match="not trusted"):
        untrusted.send({"kind": "person", "id": "A2"})


@pytest.mark.parametrize(("cfg", "message"), [
    ({"tls": "yes"}, "tls must be true or false"),
    ({"tls": True, "ca_file": "/nonexistent/ca.pem"}, "does not exist"),
    ({"password": "x"}, "without a username"),
    ({"port": 70000}, "1-65535"),
    ({"ca_file": "__CA__"}, "only makes sense with TLS"),
])
def test_item6_broker_settings_that_cannot_work_are_refused_when_rules_load(
        cfg: dict[str, Any], message: str, pki: Pki) -> None:
    cfg = {k: (str(pki.ca) if v == "__CA__" else v) for k, v in cfg.items()}
    with pytest.raises(ChannelError, match=message):
        channels_from([{"name": "bus", "type": "mqtt", **cfg}])
    with pytest.raises(BrokerError):
        Broker.from_mapping(cfg)


def test_item6_smtp_starttls_verifies_the_mail_servers_certificate(pki: Pki) -> None:
    import ssl

    from aiosmtpd.controller import Controller

    got: list[Any] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's naming
            got.append(envelope)
            return "250 OK"

    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(pki.cert, pki.key)
    port = _free_port()
    ctl = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=server_tls, require_starttls=True)
    ctl.start()
    mail = {"type": "email", "host": "127.0.0.1", "port": port, "sender": "pardus@park.test",
            "to": ["duty@park.test"], "starttls": True}
    payload = {"kind": "person", "id": "A1", "camera_id": "C1", "created": "2026-12-02T03:00:00Z",
               "severity": "high", "rule": "people"}
    try:
        (untrusted,) = channels_from([{**mail, "name": "duty", "ca_file": str(pki.other_ca)}])
        with pytest.raises(RuntimeError, match="certificate is not trusted"):
            untrusted.send(payload)
        (system_cas,) = channels_from([{**mail, "name": "duty"}])  # a private authority is not the system's
        with pytest.raises(RuntimeError, match="certificate is not trusted"):
            system_cas.send(payload)
        assert not got, "nothing was sent to a server whose certificate failed"
        (trusted,) = channels_from([{**mail, "name": "duty", "ca_file": str(pki.ca)}])
        assert trusted.send(payload) == "mailed duty@park.test"
        assert len(got) == 1 and got[0].rcpt_tos == ["duty@park.test"]
        with pytest.raises(ChannelError, match="not both"):
            channels_from([{**mail, "name": "x", "tls": True}])
    finally:
        ctl.stop()
