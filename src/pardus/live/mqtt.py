"""The MQTT gateway: cellular gateways that speak MQTT (Mosquitto) instead of HTTP.

Topics (``<camera>`` is the camera id; every message carries that camera's own token)::

    pardus/cameras/<camera>/heartbeat   JSON {"token": "pdc....", "battery_pct": 81, "signal_dbm": -97, ...}
    pardus/cameras/<camera>/media       JSON {"token": "pdc....", "seq": 1042, "filename": "IMG_1042.JPG",
                                              "data": "<base64 of the JPEG>"}

Uploads take the same ingest as HTTP (``ingest_file``, durable, idempotent by hash and sequence
number). The result of each message is published to ``pardus/cameras/<camera>/ack`` (``stored``,
``duplicate`` or the error), because MQTT has no reply of its own; subscriptions use QoS 1, so
the broker redelivers a message the gateway did not acknowledge, and idempotency absorbs it.

A hostile or broken message (deeply nested JSON, a sequence number that is not a number, bytes
that are not UTF-8) is answered on .../ack with what is wrong; anything unexpected is logged with
its topic and answered with a 500, and the gateway goes on: one message must never stop the
park's MQTT cameras. ``status()`` says whether it is connected and how many messages failed, for
the server's health endpoint.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from pardus.ingest.one import IngestError, ingest_file
from pardus.live.broker import Broker, connection_problem
from pardus.live.cameras import AuthError, authenticate
from pardus.live.health import HeartbeatError, record_heartbeat, touch
from pardus.live.queue import enqueue
from pardus.store import Workspace
from pardus.store.models import Camera

log = logging.getLogger("pardus.mqtt")
TOPIC_ROOT = "pardus/cameras"


class MqttGateway:
    """See the module docstring. ``broker`` carries the address, credentials and TLS (live.broker)."""

    def __init__(self, ws: Workspace, *, broker: Broker | None = None, max_bytes: int = 64 << 20,
                 on_stored: Callable[[], None] | None = None) -> None:
        import paho.mqtt.client as mqtt

        self.ws, self.max_bytes, self.on_stored = ws, max_bytes, on_stored
        self.broker = broker or Broker()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pardus-gateway-{id(self):x}")
        self.broker.configure(self.client)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.connected = threading.Event()
        self.error: str | None = None  # why the broker is not connected, in words, for health
        self.handled = 0
        self.failed = 0  # messages that raised something unexpected (logged), not refused ones

    def start(self) -> None:
        """Connect and serve; a broker that is down or refuses us is retried in the background, and
        the reason stays in ``status()`` (the server must start even when the broker is away)."""
        try:
            self.client.connect(self.broker.host, self.broker.port, keepalive=30)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            self.error = connection_problem(exc, self.broker)
            log.warning("MQTT gateway: %s (retrying)", self.error)
            self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            # e.g. "Not authorized": the username or password is wrong; never subscribe half-connected
            self.error = f"{self.broker.describe()}: the broker refused the connection ({reason})"
            log.warning("MQTT gateway: %s", self.error)
            return
        self.error = None
        client.subscribe([(f"{TOPIC_ROOT}/+/heartbeat", 1), (f"{TOPIC_ROOT}/+/media", 1)])
        self.connected.set()

    def _on_disconnect(self, _client: Any, _userdata: Any, *_args: Any) -> None:
        self.connected.clear()

    def status(self) -> dict[str, Any]:
        return {"connected": self.connected.is_set(), "error": self.error, "handled": self.handled,
                "failed": self.failed}

    def _on_message(self, client: Any, _userdata: Any, msg: Any) -> None:
        parts = msg.topic.split("/")
        if len(parts) != 4:
            return
        camera_id, what = parts[2], parts[3]
        try:
            reply = self.handle(camera_id, what, msg.payload)
        except Exception:  # noqa: BLE001 - the loop thread must survive any message
            self.failed += 1
            log.exception("MQTT message on %s could not be handled", msg.topic[:200])
            reply = {"ok": False, "status": 500, "error": "the gateway could not handle this message; it was logged"}
        self.handled += 1
        try:
            client.publish(f"{TOPIC_ROOT}/{camera_id}/ack", json.dumps(reply), qos=1)
        except Exception:  # noqa: BLE001 - a failed ack is logged, the loop goes on
            log.exception("could not publish the ack for %s", msg.topic[:200])

    def handle(self, camera_id: str, what: str, payload: bytes) -> dict[str, Any]:
        """One message: authenticate, then store; returns the reply published on .../ack."""
        if len(payload) > self.max_bytes * 4 // 3 + 4096:
            return {"ok": False, "status": 413, "error": "message larger than the upload limit"}
        try:
            body = json.loads(payload)
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            return {"ok": False, "status": 400, "error": "the message must be a UTF-8 JSON object with 'token' "
                                                         "(not nested deeply)"}
        token = str(body.pop("token", ""))
        try:
            with self.ws.db.session() as s:
                cam = authenticate(s, camera_id, f"Bearer {token}" if token else None)
                if what == "heartbeat":
                    return {"ok": True, "health": record_heartbeat(s, cam, body)}
            return self._media(camera_id, body)
        except AuthError as exc:
            return {"ok": False, "status": exc.status, "error": exc.message}
        except (IngestError, HeartbeatError) as exc:
            return {"ok": False, "status": getattr(exc, "status", 400), "error": str(exc)}

    def _media(self, camera_id: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            data = base64.b64decode(str(body.get("data", "")), validate=True)
        except (binascii.Error, ValueError):
            return {"ok": False, "status": 400, "error": "'data' must be the file in base64"}
        if len(data) > self.max_bytes:
            return {"ok": False, "status": 413, "error": "the file is larger than the upload limit"}
        seq = body.get("seq")
        if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= 2**31 - 1):
            return {"ok": False, "status": 400, "error": "'seq' must be the camera's whole sequence number "
                                                         "(0 .. 2147483647)"}
        filename = body.get("filename")
        if filename is not None and (not isinstance(filename, str) or len(filename) > 255):
            return {"ok": False, "status": 400, "error": "'filename' must be text of at most 255 characters"}
        res = ingest_file(self.ws, data, camera_id=camera_id, filename=filename, camera_seq=seq, source="mqtt",
                          on_created=enqueue)
        with self.ws.db.session() as s:
            cam = s.get(Camera, camera_id)
            if cam is not None:
                touch(cam)
        if res.created and self.on_stored:
            self.on_stored()
        return {"ok": True, "status": 201 if res.created else 200, "media_id": res.media_id,
                "duplicate": not res.created, "seq": seq}
