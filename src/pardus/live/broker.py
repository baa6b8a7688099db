"""How Pardus reaches an MQTT broker: address, credentials and verified TLS, in one place.

Both the gateway (cameras publishing to Pardus) and the alert channel (Pardus publishing to the
park's bus) connect to brokers that carry camera tokens and alert locations, so both take a
username and password and TLS that verifies the broker's certificate and its name — against the
system's trusted authorities, or a park's own authority file (``ca_file``), never "accept any
certificate". Neither the password nor the username is ever printed: ``describe()`` is what
messages show.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class BrokerError(ValueError):
    """A broker setting that cannot work; the message names the setting and what to write."""


@dataclass(frozen=True)
class Broker:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None  # with tls: the authority that signed the broker's certificate

    def __post_init__(self) -> None:
        if not self.host or len(self.host) > 255:
            raise BrokerError("the MQTT host must be a name or address of at most 255 characters")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise BrokerError(f"the MQTT port must be a number 1-65535, not {self.port!r}")
        if self.password is not None and not self.username:
            raise BrokerError("an MQTT password was given without a username")
        if self.ca_file is not None:
            if not self.tls:
                raise BrokerError("an MQTT CA file only makes sense with TLS: set tls too")
            if not Path(self.ca_file).is_file():
                raise BrokerError(f"the MQTT CA file {self.ca_file} does not exist")

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> Broker:
        """From an alert channel's settings (``host``, ``port``, ``username``, ``password``,
        ``tls``, ``ca_file``), checking each type so a typo in the YAML is a clear error."""
        def text(key: str) -> str | None:
            value = cfg.get(key)
            if value is not None and not isinstance(value, str):
                raise BrokerError(f"the MQTT {key} must be text, not {type(value).__name__}")
            return value

        tls = cfg.get("tls", False)
        if not isinstance(tls, bool):
            raise BrokerError("the MQTT tls setting must be true or false")
        port = cfg.get("port", 8883 if tls else 1883)
        ca = text("ca_file")
        return cls(host=text("host") or "127.0.0.1", port=port, username=text("username"),
                   password=text("password"), tls=tls, ca_file=Path(ca) if ca else None)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that checks the certificate chain and the host name."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def configure(self, client: Any) -> None:
        """Give a paho client the credentials and TLS."""
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set_context(self.ssl_context())

    def publish_options(self) -> dict[str, Any]:
        """Keyword arguments for ``paho.mqtt.publish.single``."""
        out: dict[str, Any] = {"hostname": self.host, "port": self.port}
        if self.username:
            out["auth"] = {"username": self.username, "password": self.password}
        if self.tls:
            out["tls"] = self.ssl_context()
        return out

    def describe(self) -> str:
        """Where, without who: health is read without signing in, so no username goes there."""
        return f"mqtt{'s' if self.tls else ''}://{self.host}:{self.port}"


def connection_problem(exc: BaseException, broker: Broker) -> str:
    """Plain words for a failed connection: what failed and what to check."""
    where = broker.describe()
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"{where}: the broker's certificate is not trusted ({exc.verify_message}); give the authority "
                "that signed it as the CA file, or fix the broker's certificate")
    if isinstance(exc, ssl.SSLError):
        return f"{where}: TLS failed ({exc.reason or exc}); is this the broker's TLS port?"
    if isinstance(exc, ConnectionRefusedError):
        return f"{where}: nothing answers there; is the broker running and is the port right?"
    if isinstance(exc, OSError):
        return f"{where}: cannot connect ({exc.strerror or exc})"
    return f"{where}: {type(exc).__name__}"


class AckingGateway:
    """The MQTT client both gateways share: connect (retried in the background while the broker is
    away, the reason kept for health), subscribe to ``topics`` under ``topic_root``, answer every
    message ``<topic_root>/<device>/<what>`` on ``<topic_root>/<device>/ack``, and survive anything a
    message raises (logged with its topic, answered 500, counted in ``failed``).

    Subclasses give ``topic_root``, ``topics`` (the ``<what>`` parts subscribed), ``label`` (for the
    log) and :meth:`reply`; :meth:`accepts` may refuse a device id before anything is answered.
    """

    topic_root: str = ""
    topics: tuple[str, ...] = ()
    label: str = "MQTT gateway"

    def __init__(self, broker: Broker | None, client_id: str, log: Any) -> None:
        import threading

        import paho.mqtt.client as mqtt

        self.log = log
        self.broker = broker or Broker()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{client_id}-{id(self):x}")
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
            self.log.warning("%s: %s (retrying)", self.label, self.error)
            self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def status(self) -> dict[str, Any]:
        return {"connected": self.connected.is_set(), "error": self.error, "handled": self.handled,
                "failed": self.failed}

    def accepts(self, device_id: str) -> bool:
        """Whether a message for this device id is answered at all."""
        return True

    def reply(self, device_id: str, what: str, payload: bytes) -> dict[str, Any]:
        """The answer to one message, published on .../ack."""
        raise NotImplementedError

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            # e.g. "Not authorized": the username or password is wrong; never subscribe half-connected
            self.error = f"{self.broker.describe()}: the broker refused the connection ({reason})"
            self.log.warning("%s: %s", self.label, self.error)
            return
        self.error = None
        client.subscribe([(f"{self.topic_root}/+/{what}", 1) for what in self.topics])
        self.connected.set()

    def _on_disconnect(self, _client: Any, _userdata: Any, *_args: Any) -> None:
        self.connected.clear()

    def _on_message(self, client: Any, _userdata: Any, msg: Any) -> None:
        import json

        parts = msg.topic.split("/")
        if len(parts) != 4 or not self.accepts(parts[2]):
            return  # not a device's topic; nothing to answer to
        device_id, what = parts[2], parts[3]
        try:
            reply = self.reply(device_id, what, msg.payload)
        except Exception:  # noqa: BLE001 - the loop thread must survive any message
            self.failed += 1
            self.log.exception("MQTT message on %s could not be handled", msg.topic[:200])
            reply = {"ok": False, "status": 500, "error": "the gateway could not handle this message; it was logged"}
        self.handled += 1
        try:
            client.publish(f"{self.topic_root}/{device_id}/ack", json.dumps(reply), qos=1)
        except Exception:  # noqa: BLE001 - a failed ack is logged, the loop goes on
            self.log.exception("could not publish the ack for %s", msg.topic[:200])
