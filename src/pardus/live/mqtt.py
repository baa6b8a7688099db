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
from collections.abc import Callable
from typing import Any

from pardus.ingest.one import IngestError, ingest_file
from pardus.live.broker import AckingGateway, Broker
from pardus.live.cameras import AuthError, authenticate
from pardus.live.health import HeartbeatError, record_heartbeat, touch
from pardus.live.queue import enqueue
from pardus.store import Workspace
from pardus.store.models import Camera

log = logging.getLogger("pardus.mqtt")
TOPIC_ROOT = "pardus/cameras"


class MqttGateway(AckingGateway):
    """See the module docstring. ``broker`` carries the address, credentials and TLS (live.broker)."""

    topic_root = TOPIC_ROOT
    topics = ("heartbeat", "media")
    label = "MQTT gateway"

    def __init__(self, ws: Workspace, *, broker: Broker | None = None, max_bytes: int = 64 << 20,
                 on_stored: Callable[[], None] | None = None) -> None:
        super().__init__(broker, "pardus-gateway", log)
        self.ws, self.max_bytes, self.on_stored = ws, max_bytes, on_stored

    def reply(self, device_id: str, what: str, payload: bytes) -> dict[str, Any]:
        return self.handle(device_id, what, payload)

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
