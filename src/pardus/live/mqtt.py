"""The MQTT gateway: cellular gateways that speak MQTT (Mosquitto) instead of HTTP.

Topics (``<camera>`` is the camera id; every message carries that camera's own token)::

    pardus/cameras/<camera>/heartbeat   JSON {"token": "pdc....", "battery_pct": 81, "signal_dbm": -97, ...}
    pardus/cameras/<camera>/media       JSON {"token": "pdc....", "seq": 1042, "filename": "IMG_1042.JPG",
                                              "data": "<base64 of the JPEG>"}

Uploads take the same ingest as HTTP (``ingest_file``, durable, idempotent by hash and sequence
number). The result of each message is published to ``pardus/cameras/<camera>/ack`` (``stored``,
``duplicate`` or the error), because MQTT has no reply of its own; subscriptions use QoS 1, so
the broker redelivers a message the gateway did not acknowledge, and idempotency absorbs it.
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
from pardus.live.cameras import AuthError, authenticate
from pardus.live.health import HeartbeatError, record_heartbeat, touch
from pardus.live.queue import enqueue
from pardus.store import Workspace
from pardus.store.models import Camera

log = logging.getLogger("pardus.mqtt")
TOPIC_ROOT = "pardus/cameras"


class MqttGateway:
    def __init__(self, ws: Workspace, *, host: str = "127.0.0.1", port: int = 1883, max_bytes: int = 64 << 20,
                 on_stored: Callable[[], None] | None = None) -> None:
        import paho.mqtt.client as mqtt

        self.ws, self.host, self.port, self.max_bytes, self.on_stored = ws, host, port, max_bytes, on_stored
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pardus-gateway-{id(self):x}")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.connected = threading.Event()

    def start(self) -> None:
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any = None) -> None:
        client.subscribe([(f"{TOPIC_ROOT}/+/heartbeat", 1), (f"{TOPIC_ROOT}/+/media", 1)])
        self.connected.set()

    def _on_message(self, client: Any, _userdata: Any, msg: Any) -> None:
        parts = msg.topic.split("/")
        if len(parts) != 4:
            return
        camera_id, what = parts[2], parts[3]
        reply = self.handle(camera_id, what, msg.payload)
        client.publish(f"{TOPIC_ROOT}/{camera_id}/ack", json.dumps(reply), qos=1)

    def handle(self, camera_id: str, what: str, payload: bytes) -> dict[str, Any]:
        """One message: authenticate, then store; returns the reply published on .../ack."""
        if len(payload) > self.max_bytes * 4 // 3 + 4096:
            return {"ok": False, "status": 413, "error": "message larger than the upload limit"}
        try:
            body = json.loads(payload)
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            return {"ok": False, "status": 400, "error": "the message must be a JSON object with 'token'"}
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
        res = ingest_file(self.ws, data, camera_id=camera_id, filename=body.get("filename"),
                          camera_seq=int(seq) if seq is not None else None, source="mqtt", on_created=enqueue)
        with self.ws.db.session() as s:
            cam = s.get(Camera, camera_id)
            if cam is not None:
                touch(cam)
        if res.created and self.on_stored:
            self.on_stored()
        return {"ok": True, "status": 201 if res.created else 200, "media_id": res.media_id,
                "duplicate": not res.created, "seq": seq}
