"""People's API tokens: the same scheme as camera tokens (shown once, stored as a salted HMAC).

A token names its user (``pdu.<name>.<secret>``) so a check touches one row, not all of them.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from pardus.live.cameras import AuthError, bearer, hash_token, token_matches
from pardus.store import Workspace
from pardus.store.models import User

ROLES = ("viewer", "ranger", "ecologist", "admin")
ACT_ON_ALERTS = {"ranger", "ecologist", "admin"}
USER_PREFIX = "pdu"


class UserError(ValueError):
    """A user command cannot be done; says what to do."""


def add_user(ws: Workspace, name: str, role: str = "ranger", email: str | None = None) -> str:
    """Create or update a person and issue a token; returns the token (shown once)."""
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not name or "." in name or " " in name or len(name) > 128:
        raise UserError(f"user name {name!r} must be 1-128 characters without spaces or dots")
    token = f"{USER_PREFIX}.{name}.{secrets.token_urlsafe(32)}"
    with ws.db.session() as s:
        user = s.scalars(select(User).where(User.name == name)).first()
        if user is None:
            user = User(name=name)
            s.add(user)
        user.role, user.email = role, email or user.email
        user.token_hash = hash_token(token)
    return token


def authenticate_user(s: Session, authorization: str | None, roles: set[str] | None = None) -> User:
    token = bearer(authorization)
    if token is None:
        raise AuthError(401, "missing token: send 'Authorization: Bearer <your token>' (`pardus users add` issues one)")
    name = token[len(USER_PREFIX) + 1:].rsplit(".", 1)[0] if token.startswith(USER_PREFIX + ".") else None
    user = s.scalars(select(User).where(User.name == name)).first() if name else None
    if user is None or not token_matches(user.token_hash, token):
        raise AuthError(401, "unknown or replaced token; ask an admin for a new one (`pardus users add NAME`)")
    if roles is not None and user.role not in roles:
        raise AuthError(403, f"{user.name} is a {user.role}; this needs one of: {', '.join(sorted(roles))}")
    return user
