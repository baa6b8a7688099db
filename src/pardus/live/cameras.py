"""Online cameras and their upload tokens.

A token is shown once, when issued, and only a salted HMAC-SHA256 of it is stored. Tokens are 256
random bits, so a fast salted hash is as safe as a slow password hash here (nobody can guess or
brute-force 2**256 values) and keeps each upload's check in microseconds for hundreds of cameras.
A token names its camera (``pdc.<camera>.<secret>``) so that a camera presenting its own valid
token on another camera's address is told 403 (not yours), not 401 (unknown).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from pardus.store import Workspace
from pardus.store.models import Camera, utcnow

TOKEN_PREFIX = "pdc"
HASH_SCHEME = "hmac-sha256"


class CameraError(Exception):
    """A camera command cannot be done; the message says what to do instead."""


class AuthError(Exception):
    """An upload or heartbeat is refused; ``status`` is the HTTP code, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def hash_token(token: str, salt: bytes | None = None) -> str:
    """``hmac-sha256$<salt hex>$<digest hex>``: what is stored instead of the token."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hmac.new(salt, token.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{HASH_SCHEME}${salt.hex()}${digest}"


def token_matches(stored: str | None, token: str) -> bool:
    """Constant-time comparison of a presented token with the stored hash."""
    if not stored:
        return False
    try:
        scheme, salt_hex, _ = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    if scheme != HASH_SCHEME:
        return False
    return hmac.compare_digest(hash_token(token, salt), stored)


def token_camera(token: str) -> str | None:
    """The camera a token was issued for, read from its text (not trusted until verified)."""
    if not token.startswith(TOKEN_PREFIX + "."):
        return None
    body = token[len(TOKEN_PREFIX) + 1 :]
    if "." not in body:
        return None
    return body.rsplit(".", 1)[0] or None


@dataclass
class CameraInfo:
    id: str
    has_token: bool
    revoked: bool
    expected_interval_s: int | None
    last_seen: str | None
    health: dict


# A camera id travels in URL paths (/api/v1/cameras/<id>/media), MQTT topics (pardus/cameras/<id>/...)
# and tokens (pdc.<id>.<secret>): '/', '+', '#', '%', '?', blanks or an id of dots ('.', '..', which
# clients fold away as path steps) would address something else in one of them.
CAMERA_ID_RE = re.compile(r"[^\W_][\w.:@~-]{0,63}")


def check_camera_id(camera_id: str) -> str:
    """``camera_id`` when it is safe in a URL path, an MQTT topic and a token; else CameraError.

    1-64 letters (any alphabet) or digits, then also '-', '_', '.', ':', '@', '~'; it starts with
    a letter or digit, so '.', '..' and '.hidden' are refused too.
    """
    if not isinstance(camera_id, str) or not CAMERA_ID_RE.fullmatch(camera_id):
        shown = repr(camera_id[:70]) if isinstance(camera_id, str) else type(camera_id).__name__
        raise CameraError(
            f"camera id {shown} must be 1-64 letters or digits (also - _ . : @ ~ after the first), "
            "without spaces, '/', '+', '#' or '%'; e.g. LP-C017"
        )
    return camera_id


def add_camera(
    ws: Workspace,
    camera_id: str,
    *,
    expected_interval_s: int | None = None,
    make: str | None = None,
    model: str | None = None,
) -> str:
    """Register an online camera (or update it) and issue its first token; returns the token."""
    check_camera_id(camera_id)
    with ws.db.session() as s:
        cam = s.get(Camera, camera_id)
        if cam is None:
            cam = Camera(id=camera_id, serial=camera_id)
            s.add(cam)
        cam.make = make or cam.make
        cam.model = model or cam.model
        if expected_interval_s is not None:
            cam.expected_interval_s = expected_interval_s
    return issue_token(ws, camera_id)


def issue_token(ws: Workspace, camera_id: str) -> str:
    """A new token for the camera; the previous one stops working at once.

    A camera recorded from a field sheet or a photo's serial may have an id no camera could send
    under (see ``check_camera_id``): it gets no token until it is renamed.
    """
    check_camera_id(camera_id)
    token = f"{TOKEN_PREFIX}.{camera_id}.{secrets.token_urlsafe(32)}"
    with ws.db.session() as s:
        cam = s.get(Camera, camera_id)
        if cam is None:
            raise CameraError(f"no camera {camera_id!r}: add it first with `pardus cameras add {camera_id}`")
        cam.token_hash = hash_token(token)
        cam.token_revoked = None
    return token


def revoke_token(ws: Workspace, camera_id: str) -> None:
    """Stop a camera's token (a stolen or lost camera); it can upload again only with a new token."""
    with ws.db.session() as s:
        cam = s.get(Camera, camera_id)
        if cam is None:
            raise CameraError(f"no camera {camera_id!r}; `pardus cameras list` shows the known ones")
        cam.token_revoked = utcnow()


def list_cameras(ws: Workspace) -> list[CameraInfo]:
    with ws.db.session() as s:
        return [
            CameraInfo(
                c.id,
                bool(c.token_hash),
                c.token_revoked is not None,
                c.expected_interval_s,
                c.last_seen.isoformat() if c.last_seen else None,
                dict(c.health or {}),
            )
            for c in s.query(Camera).order_by(Camera.id)
        ]


_STAND_IN = hash_token("pdc.none." + secrets.token_hex(16))  # checked for unknown ids: same work, same answer


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate(s: Session, camera_id: str, authorization: str | None) -> Camera:
    """The camera, if ``authorization`` carries its valid token; otherwise AuthError (401/403).

    An unknown camera id is answered exactly as a wrong token is (issue 19: a 404 told a stranger
    which camera ids exist), and its token is checked against a stand-in hash so the time taken
    does not tell either."""
    cam = s.get(Camera, camera_id)
    token = bearer(authorization)
    if token is None:
        raise AuthError(401, "missing token: send the header 'Authorization: Bearer <camera token>'")
    if token_matches(cam.token_hash if cam is not None else _STAND_IN, token) and cam is not None:
        if cam.token_revoked is not None:
            raise AuthError(
                403,
                f"the token of camera {camera_id} was revoked on {cam.token_revoked:%Y-%m-%d %H:%M} UTC; "
                f"issue a new one with `pardus cameras token {camera_id}`",
            )
        return cam
    owner = token_camera(token)
    if owner and owner != camera_id:
        other = s.get(Camera, owner)
        if other is not None and other.token_revoked is None and token_matches(other.token_hash, token):
            raise AuthError(403, f"this token belongs to camera {owner}; a camera may only send its own photos")
    raise AuthError(401, f"wrong token for camera {camera_id[:64]} (or an old one that was replaced, or no camera "
                         f"of that id is registered: an admin adds one with `pardus cameras add ID`)")
