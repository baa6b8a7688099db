"""Who may do what: roles, passwords (argon2), API tokens and web sessions.

Roles, from least to most:

- ``viewer`` sees alerts, cameras and the season, but never the exact place of a sensitive
  species (an endangered leopard's camera is shown rounded);
- ``reviewer`` also labels photos and decides identities (the review desk);
- ``ranger`` works alerts (acknowledge, resolve) and sees exact places;
- ``admin`` also manages people, cameras and rules.

Passwords are hashed with argon2id (argon2-cffi's defaults, the OWASP recommendation), API tokens
and session secrets are random 256-bit values of which only a hash is stored, so a copy of the
database signs nobody in. A revoked person loses password, token and every open session at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pardus.live.cameras import AuthError, bearer, hash_token, token_matches
from pardus.store import Workspace
from pardus.store.models import User, WebSession, utcnow

ROLES = ("viewer", "reviewer", "ranger", "admin")
# What each permission needs; a route asks for a permission, never for a role by name.
SEE = set(ROLES)
ACT_ON_ALERTS = {"ranger", "admin"}
REVIEW = {"reviewer", "admin"}
EXACT_PLACES = {"reviewer", "ranger", "admin"}
ADMIN = {"admin"}
USER_PREFIX = "pdu"
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 hashes anything, but a megabyte "password" is an attack, not a password
SESSION_IDLE = timedelta(hours=12)
SESSION_MAX = timedelta(days=7)

_hasher = PasswordHasher()


class UserError(ValueError):
    """A user command cannot be done; says what to do."""


@dataclass(frozen=True)
class Person:
    """The signed-in person as routes see it: no hashes, just what decides permissions."""

    id: str
    name: str
    role: str

    def may(self, permission: set[str]) -> bool:
        return self.role in permission

    @property
    def exact_places(self) -> bool:
        return self.role in EXACT_PLACES


def _person(u: User) -> Person:
    return Person(u.id, u.name, u.role)


def check_name(name: str) -> str:
    if not name or "." in name or any(c.isspace() for c in name) or len(name) > 128 or not name.isprintable():
        raise UserError(f"user name {name!r} must be 1-128 printable characters without spaces or dots")
    return name


def check_role(role: str) -> str:
    if role == "ecologist":  # the first wave's name for it
        return "reviewer"
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"the password must have at most {MAX_PASSWORD} characters")
    return password


def add_user(ws: Workspace, name: str, role: str = "ranger", email: str | None = None,
             password: str | None = None, *, token: bool = True) -> str | None:
    """Create or update a person (a revoked one is restored); returns a new API token (shown once)
    when ``token``, else None. A password, when given, replaces the old one."""
    check_name(name)
    role = check_role(role)
    if password is not None:
        check_password(password)
    new_token = f"{USER_PREFIX}.{name}.{secrets.token_urlsafe(32)}" if token else None
    with ws.db.session() as s:
        user = s.scalars(select(User).where(User.name == name)).first()
        if user is None:
            user = User(name=name)
            s.add(user)
        user.role, user.email, user.revoked = role, email or user.email, None
        if new_token is not None:
            user.token_hash = hash_token(new_token)
        if password is not None:
            user.password_hash = _hasher.hash(password)
    return new_token


def revoke_user(ws: Workspace, name: str) -> int:
    """End a person's access now: password, API token and open sessions. Returns sessions ended."""
    with ws.db.session() as s:
        user = s.scalars(select(User).where(User.name == name)).first()
        if user is None:
            raise UserError(f"no user {name!r}; `pardus users list` shows them")
        user.revoked = utcnow()
        user.token_hash = None
        user.password_hash = None
        return int(s.execute(delete(WebSession).where(WebSession.user_id == user.id)).rowcount or 0)


@dataclass(frozen=True)
class UserInfo:
    name: str
    role: str
    email: str | None
    has_password: bool
    has_token: bool
    revoked: datetime | None
    created: datetime


def list_users(ws: Workspace) -> list[UserInfo]:
    with ws.db.session() as s:
        return [UserInfo(u.name, u.role, u.email, bool(u.password_hash), bool(u.token_hash), u.revoked, u.created)
                for u in s.scalars(select(User).order_by(User.name))]


def authenticate_token(s: Session, authorization: str | None, permission: set[str] | None = None) -> Person:
    """The person an ``Authorization: Bearer pdu.<name>.<secret>`` header names, checked."""
    token = bearer(authorization)
    if token is None:
        raise AuthError(401, "missing token: sign in, or send 'Authorization: Bearer <your token>' "
                             "(`pardus users add` issues one)")
    name = token[len(USER_PREFIX) + 1:].rsplit(".", 1)[0] if token.startswith(USER_PREFIX + ".") else None
    user = s.scalars(select(User).where(User.name == name)).first() if name else None
    if user is None or user.revoked is not None or not token_matches(user.token_hash, token):
        raise AuthError(401, "unknown, replaced or revoked token; ask an admin for a new one (`pardus users add NAME`)")
    return require(_person(user), permission)


def require(person: Person, permission: set[str] | None) -> Person:
    if permission is not None and not person.may(permission):
        raise AuthError(403, f"{person.name} is a {person.role}; this needs one of: {', '.join(sorted(permission))}")
    return person


# A fixed hash to verify against when the name is unknown, so "no such user" and "wrong password"
# take the same time and a stranger cannot list the park's user names by timing the sign-in.
_DUMMY_HASH = _hasher.hash("not a password of anyone " + secrets.token_hex(8))


def check_sign_in(s: Session, name: str, password: str) -> Person | None:
    """The person when name and password match an active account, else None (one answer for both)."""
    if len(password) > MAX_PASSWORD or len(name) > 128:
        return None
    user = s.scalars(select(User).where(User.name == name)).first()
    stored = user.password_hash if user is not None and user.revoked is None else None
    try:
        ok = _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None:
        return None
    if _hasher.check_needs_rehash(stored or ""):
        user.password_hash = _hasher.hash(password)
    return _person(user)


def _session_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def open_session(s: Session, person: Person, now: datetime | None = None) -> str:
    """A new browser session for ``person``; returns the secret for the cookie (shown only now)."""
    now = now or utcnow()
    secret = secrets.token_urlsafe(32)
    s.add(WebSession(id=_session_key(secret), user_id=person.id, created=now, last_used=now,
                     expires=min(now + SESSION_IDLE, now + SESSION_MAX)))
    return secret


def session_person(s: Session, secret: str | None, now: datetime | None = None) -> Person | None:
    """The person a session cookie belongs to, or None (missing, unknown, expired, revoked).
    Each use slides the expiry by ``SESSION_IDLE``, never past ``SESSION_MAX`` after sign-in."""
    if not secret or len(secret) > 256:
        return None
    now = now or utcnow()
    row = s.get(WebSession, _session_key(secret))
    if row is None:
        return None
    user = s.get(User, row.user_id)
    if row.expires <= now or user is None or user.revoked is not None:
        s.delete(row)
        return None
    if now - row.last_used > timedelta(minutes=1):  # one write a minute, not one per request
        row.last_used = now
        row.expires = min(now + SESSION_IDLE, row.created + SESSION_MAX)
    return _person(user)


def close_session(s: Session, secret: str | None) -> None:
    if secret and len(secret) <= 256:
        s.execute(delete(WebSession).where(WebSession.id == _session_key(secret)))


def csrf_token(secret: str) -> str:
    """The session's anti-forgery token: derived from the session's secret, so nothing more is stored,
    and another site (which cannot read the cookie) cannot compute it."""
    return hmac.new(secret.encode("utf-8"), b"pardus-csrf", hashlib.sha256).hexdigest()


def csrf_matches(secret: str | None, token: str | None) -> bool:
    return bool(secret and token) and hmac.compare_digest(csrf_token(secret or ""), token or "")
