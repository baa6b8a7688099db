"""Delivering alerts to people: webhook, e-mail, apprise (Telegram and the rest), MQTT, EarthRanger.

Channels are listed in the rules file under ``channels:``::

    channels:
      - {name: ops, type: webhook, url: "http://127.0.0.1:9000/hook", secret: "change-me", kinds: [person, vehicle]}
      - {name: duty-mail, type: email, host: 127.0.0.1, port: 25, sender: pardus@park.ru, to: [duty@park.ru]}
      - {name: telegram, type: apprise, urls: ["tgram://bottoken/chatid"]}
      - {name: bus, type: mqtt, host: 127.0.0.1, port: 1883, topic: pardus/alerts}
      - {name: bus-tls, type: mqtt, host: mqtt.park.ru, tls: true, ca_file: /etc/pardus/park-ca.pem,
         username: pardus, password: "...", topic: pardus/alerts}
      - {name: er, type: earthranger, url: "https://park.pamdas.org", token: "..."}

A delivery is durable: when an alert is created its deliveries are written as ``pending`` in the
same transaction (``Alert.details['deliveries']``), so a restart resumes them. Every attempt is an
``AlertEvent`` (``delivery``, with the error when it failed); failures are retried with
exponential backoff and after ``tries`` attempts (default 5) the delivery is dead-lettered
(``dead-letter`` event, shown by ``pardus alerts list``) for a person to look at. Delivery is at
least once: a crash between a receiver's reply and its record can repeat one message, so the
webhook carries the alert id for receivers to de-duplicate.

Transport: e-mail with ``starttls: true`` (port 587) or ``tls: true`` (SMTPS, port 465) and MQTT
with ``tls: true`` verify the server's certificate and name, against the system's authorities or a
park's own ``ca_file``; there is no switch to accept any certificate (a ranger's alert with a
leopard's place must not go to whoever sits between). MQTT takes ``username``/``password``.

Webhook bodies are signed: ``X-Pardus-Signature: sha256=<hex>`` is HMAC-SHA256 with the channel's
secret over ``<X-Pardus-Timestamp>.<body>`` (the timestamp inside the signature stops replays).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pardus.alerts.lifecycle import alert_payload
from pardus.live.broker import Broker, BrokerError, connection_problem
from pardus.store import Workspace
from pardus.store.models import Alert, AlertEvent, utcnow

CHANNEL_TYPES = ("webhook", "email", "apprise", "mqtt", "earthranger")
TIMEOUT_S = 5.0


class ChannelError(ValueError):
    """A channel in the rules file is incomplete; the message says which field is missing."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes, header: str, max_age_s: float = 300) -> bool:
    """For receivers: the body is from Pardus, unchanged, and recent."""
    try:
        fresh = abs(time.time() - float(timestamp)) <= max_age_s
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), header)


def _title(p: dict[str, Any]) -> str:
    what = {"person": "Person", "vehicle": "Vehicle", "fire": "FIRE", "smoke": "Smoke",
            "species": "Species of interest",
            "new-individual": "Unknown individual", "camera-offline": "Camera offline",
            "camera-tampered": "Camera tampered"}.get(p["kind"], p["kind"])
    return f"{what} at camera {p['camera_id']}"


def _text(p: dict[str, Any]) -> str:
    lines = [_title(p), f"time (UTC): {p['created']}", f"severity: {p['severity']}   rule: {p['rule']}"]
    loc = p.get("location") or {}
    if loc.get("latitude") is not None:
        where = loc.get("name") or loc["location_id"]
        lines.append(f"location: {loc['latitude']:.5f}, {loc['longitude']:.5f} ({where})")
    ev = p.get("evidence") or {}
    if "best_score" in ev:
        lines.append(f"detections: {ev['count']}, best score {ev['best_score']:.2f}")
    if "species" in ev:
        lines.append("species: " + ", ".join(ev["species"]))
    lines.append(f"alert id: {p['id']}  (acknowledge: pardus alerts ack {p['id'][:8]})")
    return "\n".join(lines)


def earthranger_event(p: dict[str, Any]) -> dict[str, Any]:
    """The alert as an EarthRanger event (POST /api/v1.0/activity/events): type, priority, location, details."""
    priority = {"critical": 300, "high": 300, "medium": 200, "low": 100}.get(p.get("severity") or "", 200)
    loc = p.get("location") or {}
    return {
        "event_type": f"pardus_{p['kind'].replace('-', '_')}",
        "title": _title(p),
        "time": p["created"],
        "priority": priority,
        "state": "new",
        "location": ({"latitude": loc["latitude"], "longitude": loc["longitude"]}
                     if loc.get("latitude") is not None else None),
        "event_details": {"pardus_alert_id": p["id"], "camera_id": p["camera_id"], "media_id": p["media_id"],
                          "rule": p["rule"], "sightings": p["sightings"], "evidence": p["evidence"]},
    }


@dataclass
class Channel:
    """One destination; ``send`` raises on failure (the message is recorded with the attempt)."""

    config: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.config.get("name") or self.config["type"])

    @property
    def tries(self) -> int:
        return int(self.config.get("tries", 5))

    @property
    def exact_locations(self) -> bool:
        # Withheld by default from every channel (issue 19): a webhook or mailbox can forward what it
        # gets. A park sends exact places of sensitive animals only where it says so, channel by channel.
        value = self.config.get("exact_locations", False)
        return value is True

    def wants(self, kind: str) -> bool:
        kinds = self.config.get("kinds")
        return not kinds or kind in kinds

    def need(self, *fields: str) -> None:
        missing = [f for f in fields if not self.config.get(f)]
        if missing:
            raise ChannelError(f"channel {self.name!r} ({self.config['type']}) needs {', '.join(missing)}")

    def send(self, payload: dict[str, Any]) -> str:
        kind = self.config["type"]
        return {"webhook": self._webhook, "email": self._email, "apprise": self._apprise, "mqtt": self._mqtt,
                "earthranger": self._earthranger}[kind](payload)

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> str:
        import httpx

        r = httpx.post(url, content=body, headers={"Content-Type": "application/json", **headers}, timeout=TIMEOUT_S)
        if r.status_code >= 300:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
        return f"HTTP {r.status_code}"

    def _webhook(self, payload: dict[str, Any]) -> str:
        body = json.dumps(payload, sort_keys=True).encode()
        ts = f"{time.time():.3f}"
        headers = {"X-Pardus-Timestamp": ts, "X-Pardus-Alert": payload["id"]}
        if self.config.get("secret"):
            headers["X-Pardus-Signature"] = sign(str(self.config["secret"]), ts, body)
        return self._post(str(self.config["url"]), body, headers)

    def _earthranger(self, payload: dict[str, Any]) -> str:
        body = json.dumps(earthranger_event(payload)).encode()
        url = str(self.config["url"]).rstrip("/") + "/api/v1.0/activity/events"
        return self._post(url, body, {"Authorization": f"Bearer {self.config.get('token', '')}"})

    def _email(self, payload: dict[str, Any]) -> str:

        msg = EmailMessage()
        msg["Subject"] = f"[Pardus] {_title(payload)}"
        msg["From"] = str(self.config["sender"])
        to = self.config["to"]
        msg["To"] = ", ".join(to) if isinstance(to, list) else str(to)
        msg.set_content(_text(payload))
        try:
            return self._send_mail(msg)
        except ssl.SSLCertVerificationError as exc:
            raise RuntimeError(f"the mail server's certificate is not trusted ({exc.verify_message}); give the "
                               "authority that signed it as ca_file, or fix the server's certificate") from None

    def _send_mail(self, msg: EmailMessage) -> str:
        import smtplib

        host = str(self.config.get("host", "127.0.0.1"))
        if self.config.get("tls") is True:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, int(self.config.get("port", 465)), timeout=TIMEOUT_S,
                                                  context=self._tls_context())
        else:
            smtp = smtplib.SMTP(host, int(self.config.get("port", 25)), timeout=TIMEOUT_S)
        with smtp:
            if self.config.get("starttls") is True:
                smtp.starttls(context=self._tls_context())  # smtplib alone would not verify it
            if self.config.get("user"):
                smtp.login(str(self.config["user"]), str(self.config.get("password", "")))
            smtp.send_message(msg)
        return f"mailed {msg['To']}"

    def _apprise(self, payload: dict[str, Any]) -> str:
        import apprise

        ap = apprise.Apprise()
        for url in self.config["urls"]:
            if not ap.add(url):
                raise ChannelError(f"apprise does not understand the URL {url.split(':', 1)[0]}://...")
        if not ap.notify(title=_title(payload), body=_text(payload)):
            raise RuntimeError("apprise reported a failed notification")
        return f"sent to {len(self.config['urls'])} apprise URL(s)"

    def _tls_context(self) -> ssl.SSLContext:
        """Checks the chain and the host name, against ``ca_file`` when the channel names one."""
        ca = self.config.get("ca_file")
        return ssl.create_default_context(cafile=str(ca) if ca else None)

    def broker(self) -> Broker:
        return Broker.from_mapping(self.config)

    def _mqtt(self, payload: dict[str, Any]) -> str:
        from paho.mqtt import publish

        broker = self.broker()
        topic = f"{self.config.get('topic', 'pardus/alerts')}/{payload['kind']}"
        try:
            publish.single(topic, json.dumps(payload), qos=1, keepalive=10, **broker.publish_options())
        except OSError as exc:  # a refused connection or an untrusted certificate, in words
            raise RuntimeError(connection_problem(exc, broker)) from None
        return f"published {topic}"


REQUIRED = {"webhook": ("url",), "email": ("sender", "to"), "apprise": ("urls",), "mqtt": (), "earthranger": ("url",)}


def channels_from(configs: list[dict[str, Any]]) -> list[Channel]:
    out = []
    for cfg in configs:
        if not isinstance(cfg, dict) or cfg.get("type") not in CHANNEL_TYPES:
            raise ChannelError(f"a channel needs type: one of {', '.join(CHANNEL_TYPES)} (got {cfg!r})")
        ch = Channel(dict(cfg))
        ch.need(*REQUIRED[cfg["type"]])
        _check_transport(ch)
        out.append(ch)
    return out


def _check_transport(ch: Channel) -> None:
    """TLS settings that cannot work are refused when the rules load, not at the first alert."""
    cfg = ch.config
    for key in ("tls", "starttls"):
        if key in cfg and not isinstance(cfg[key], bool):
            raise ChannelError(f"channel {ch.name!r}: {key} must be true or false")
    ca = cfg.get("ca_file")
    if ca is not None and (not isinstance(ca, str) or not Path(ca).is_file()):
        raise ChannelError(f"channel {ch.name!r}: the CA file {str(ca)[:200]!r} does not exist")
    if cfg["type"] == "email" and cfg.get("tls") and cfg.get("starttls"):
        raise ChannelError(f"channel {ch.name!r}: choose tls (SMTPS, port 465) or starttls (port 587), not both")
    if cfg["type"] == "mqtt":
        try:
            ch.broker()
        except BrokerError as exc:
            raise ChannelError(f"channel {ch.name!r}: {exc}") from None


def schedule(alert: Alert, channels: list[Channel]) -> None:
    """Mark the alert's deliveries pending (call inside the transaction that creates the alert)."""
    deliveries = {ch.name: {"status": "pending", "tries": 0} for ch in channels if ch.wants(alert.kind)}
    alert.details = {**(alert.details or {}), "deliveries": deliveries}


@dataclass
class _Due:
    alert_id: str
    channel: Channel
    at: float


@dataclass
class DeliveryWorker:
    """Sends pending deliveries in the background; ``backoff_s`` doubles after each failed try."""

    ws: Workspace
    channels: list[Channel]
    backoff_s: float = 1.0
    on_delivered: Callable[[str, str, float], None] | None = None  # (alert id, channel, unix time)
    _due: list[_Due] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="deliver")
        self._thread: threading.Thread | None = None

    def recover(self) -> int:
        """Queue every delivery still pending in the store (after a restart)."""
        by_name = {c.name: c for c in self.channels}
        n = 0
        with self.ws.db.session() as s:
            for alert in s.scalars(select(Alert).where(Alert.status != "resolved")):
                for name, d in ((alert.details or {}).get("deliveries") or {}).items():
                    if d.get("status") == "pending" and name in by_name:
                        self.enqueue(alert.id, [by_name[name]])
                        n += 1
        return n

    def enqueue(self, alert_id: str, channels: list[Channel] | None = None) -> None:
        with self._lock:
            for ch in channels if channels is not None else self.channels:
                self._due.append(_Due(alert_id, ch, time.monotonic()))
        self._wake.set()

    def alive(self) -> dict[str, bool]:
        return {"alert-delivery": self._thread is not None and self._thread.is_alive()}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="alert-delivery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            with self._lock:
                ready = [d for d in self._due if d.at <= now]
                self._due = [d for d in self._due if d.at > now]
                nxt = min((d.at for d in self._due), default=now + 1.0)
            for d in ready:
                self._pool.submit(self.attempt, d)
            self._wake.wait(timeout=max(0.01, min(1.0, nxt - now)))
            self._wake.clear()

    def attempt(self, due: _Due) -> bool:
        """One try of one delivery, recorded; schedules the retry or dead-letters it."""
        ch = due.channel
        with self.ws.db.session() as s:
            alert = s.get(Alert, due.alert_id)
            if alert is None:
                return False
            state = ((alert.details or {}).get("deliveries") or {}).get(ch.name, {"status": "pending", "tries": 0})
            if state.get("status") != "pending":
                return True  # delivered or dead-lettered before a restart
            payload = alert_payload(s, alert, exact_location=ch.exact_locations)
        t0 = time.perf_counter()
        try:
            result, error = ch.send(payload), None
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, retried, then dead-lettered
            result, error = None, f"{type(exc).__name__}: {exc}"
        sent_at = time.time()
        ms = round((time.perf_counter() - t0) * 1000, 1)
        tries = int(state.get("tries", 0)) + 1
        with self.ws.db.session() as s:
            alert = s.get(Alert, due.alert_id)
            assert alert is not None
            status = "delivered" if error is None else ("dead-letter" if tries >= ch.tries else "pending")
            deliveries = dict((alert.details or {}).get("deliveries") or {})
            deliveries[ch.name] = {"status": status, "tries": tries, "last_error": error,
                                   "at": utcnow().isoformat()}
            alert.details = {**(alert.details or {}), "deliveries": deliveries}
            s.add(AlertEvent(alert_id=alert.id, action="delivery",
                             details={"channel": ch.name, "type": ch.config["type"], "try": tries,
                                      "ok": error is None, "result": result, "error": error, "ms": ms}))
            if status == "dead-letter":
                s.add(AlertEvent(alert_id=alert.id, action="dead-letter",
                                 details={"channel": ch.name, "tries": tries, "error": error}))
        if status == "pending":
            with self._lock:
                self._due.append(_Due(due.alert_id, ch, time.monotonic() + self.backoff_s * 2 ** (tries - 1)))
            self._wake.set()
        elif status == "delivered" and self.on_delivered:
            self.on_delivered(due.alert_id, ch.name, sent_at)
        return error is None
