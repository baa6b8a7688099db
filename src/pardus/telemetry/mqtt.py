"""Sensor readings over MQTT: the same topics and token scheme as the cameras' gateway.

Topics (``<sensor>`` is the sensor's id; every message carries that sensor's own token)::

    pardus/sensors/<sensor>/readings   JSON {"token": "pds....", "readings": [{"time": "2024-05-01T06:30:00+10:00",
                                             "kind": "pm25", "value": 35.2, "unit": "ug/m3"}, ...]}
                                       (or one reading with its token as the object itself)
    pardus/sensors/<sensor>/ack        the answer: {"ok": true, "stored": 2, "already": 0, "alerts": [...]}
                                       or {"ok": false, "status": 400, "error": "reading #2: ... no time zone"}

A message is handled exactly as an HTTP post (``telemetry.sensors.accept_readings``): token checked,
every reading checked, the new ones stored (a broker's redelivery stores nothing twice, since a
reading is its sensor, kind and time) and put through the sensor rules; alerts it raises are
handed to the delivery worker after the commit. Why a second client beside the cameras' gateway
(``pardus.live.mqtt``): each room owns its topics and its checks, and a burst of sensor readings
never waits behind a camera's multi-megabyte photo in one callback thread.

A broken or hostile message (not JSON, nested too deep, a wrong token, a value that is not a
number, megabytes of readings) is answered on .../ack with what is wrong; anything unexpected is
logged and answered with a 500, and the gateway goes on: one message must never stop the others.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pardus.alerts.notify import DeliveryWorker, channels_from
from pardus.alerts.rules import RulesError, load_rules
from pardus.live.broker import AckingGateway, Broker
from pardus.live.cameras import AuthError
from pardus.store import Workspace
from pardus.telemetry.deliver import enqueue_scheduled
from pardus.telemetry.sensors import ID_RE, SensorError, accept_readings, readings_of

log = logging.getLogger("pardus.mqtt.sensors")
TOPIC_ROOT = "pardus/sensors"
MAX_MESSAGE = 1024 * 1024  # as the HTTP API's body limit


class SensorGateway(AckingGateway):
    """See the module docstring. Alerts a message raised are handed to ``deliveries`` (the server's
    delivery worker) after the commit; without one they stay pending in the store."""

    topic_root = TOPIC_ROOT
    topics = ("readings",)
    label = "MQTT sensor gateway"

    def __init__(self, ws: Workspace, *, broker: Broker | None = None, rules_path: Path | None = None,
                 deliveries: DeliveryWorker | None = None) -> None:
        super().__init__(broker, "pardus-sensors", log)
        self.ws, self.rules_path, self.deliveries = ws, rules_path, deliveries

    def accepts(self, device_id: str) -> bool:
        return ID_RE.match(device_id) is not None

    def reply(self, device_id: str, what: str, payload: bytes) -> dict[str, Any]:
        return self.handle(device_id, payload)

    def handle(self, sensor_id: str, payload: bytes) -> dict[str, Any]:
        """One message: authenticate, check, store, alert; returns the reply published on .../ack."""
        if len(payload) > MAX_MESSAGE:
            return {"ok": False, "status": 413, "error": f"message larger than {MAX_MESSAGE} bytes"}
        try:
            body = json.loads(payload)
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            return {"ok": False, "status": 400, "error": "the message must be a UTF-8 JSON object with 'token' and "
                                                         "'readings' (not nested deeply)"}
        token = body.pop("token", None)
        if not isinstance(token, str) or not token:
            token = None
        try:
            rules = load_rules(self.rules_path or self.ws.settings.data_dir / "alert-rules.yaml")
            channels = channels_from(rules.channels)
            items = readings_of(body)
            with self.ws.db.session() as s:
                posted = accept_readings(s, sensor_id, f"Bearer {token}" if token else None, items, rules, channels)
        except AuthError as exc:
            return {"ok": False, "status": exc.status, "error": exc.message}
        except SensorError as exc:
            return {"ok": False, "status": 400, "error": str(exc)}
        except RulesError as exc:
            return {"ok": False, "status": 503, "error": f"the alert rules cannot be read, nothing stored: {exc}"}
        if self.deliveries is not None:  # after the commit: the deliveries are pending in the store already
            enqueue_scheduled(self.ws, self.deliveries, posted.alerts, channels)
        return {"ok": True, "stored": posted.stored, "already": posted.already, "alerts": posted.alerts}
