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
