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
import threading
from pathlib import Path
from typing import Any

from pardus.alerts.notify import DeliveryWorker, channels_from
from pardus.alerts.rules import RulesError, load_rules
from pardus.live.broker import Broker, connection_problem
from pardus.live.cameras import AuthError
from pardus.store import Workspace
from pardus.telemetry.deliver import enqueue_scheduled
from pardus.telemetry.sensors import ID_RE, SensorError, accept_readings, readings_of

log = logging.getLogger("pardus.mqtt.sensors")
TOPIC_ROOT = "pardus/sensors"
MAX_MESSAGE = 1024 * 1024  # as the HTTP API's body limit


class SensorGateway:
    """See the module docstring. Alerts a message raised are handed to ``deliveries`` (the server's
    delivery worker) after the commit; without one they stay pending in the store."""

    def __init__(self, ws: Workspace, *, broker: Broker | None = None, rules_path: Path | None = None,
                 deliveries: DeliveryWorker | None = None) -> None:
        import paho.mqtt.client as mqtt

        self.ws, self.rules_path, self.deliveries = ws, rules_path, deliveries
        self.broker = broker or Broker()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pardus-sensors-{id(self):x}")
        self.broker.configure(self.client)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.connected = threading.Event()
        self.error: str | None = None
        self.handled = 0
        self.failed = 0  # messages that raised something unexpected (logged), not refused ones

    def start(self) -> None:
        """Connect and serve; a broker that is away is retried in the background (``status()`` says why)."""
        try:
            self.client.connect(self.broker.host, self.broker.port, keepalive=30)
        except (OSError, ValueError) as exc:
            self.error = connection_problem(exc, self.broker)
            log.warning("MQTT sensor gateway: %s (retrying)", self.error)
            self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def status(self) -> dict[str, Any]:
        return {"connected": self.connected.is_set(), "error": self.error, "handled": self.handled,
                "failed": self.failed}

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            self.error = f"{self.broker.describe()}: the broker refused the connection ({reason})"
            log.warning("MQTT sensor gateway: %s", self.error)
            return
        self.error = None
        client.subscribe([(f"{TOPIC_ROOT}/+/readings", 1)])
        self.connected.set()

    def _on_disconnect(self, _client: Any, _userdata: Any, *_args: Any) -> None:
        self.connected.clear()

    def _on_message(self, client: Any, _userdata: Any, msg: Any) -> None:
        parts = msg.topic.split("/")
        if len(parts) != 4 or not ID_RE.match(parts[2]):
            return  # not a sensor's topic; nothing to answer to
        sensor_id = parts[2]
        try:
            reply = self.handle(sensor_id, msg.payload)
        except Exception:  # noqa: BLE001 - the loop thread must survive any message
            self.failed += 1
            log.exception("MQTT message on %s could not be handled", msg.topic[:200])
            reply = {"ok": False, "status": 500, "error": "the gateway could not handle this message; it was logged"}
        self.handled += 1
        try:
            client.publish(f"{TOPIC_ROOT}/{sensor_id}/ack", json.dumps(reply), qos=1)
        except Exception:  # noqa: BLE001 - a failed ack is logged, the loop goes on
            log.exception("could not publish the ack for %s", msg.topic[:200])

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
