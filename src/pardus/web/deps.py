"""What every route may ask for: the workspace, the signed-in person, a checked anti-forgery token.

A person is known by the session cookie (browsers) or by ``Authorization: Bearer <API token>``
(scripts). A token in the query string is accepted only on the alert stream, where a browser's
EventSource cannot send headers. A state-changing request made with the cookie must carry the
session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``, which htmx sends);
a bearer token is not ambient, so it needs none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from pardus.live.broker import Broker
from pardus.live.cameras import AuthError
from pardus.people.accounts import SEE, Person, authenticate_token, csrf_matches, require, session_person
from pardus.store import Workspace
from pardus.web.problems import HTTPProblem, SignInNeeded
from pardus.web.upload import UploadBudget

SESSION_COOKIE = "pardus_session"
STREAM_PATH = "/api/v1/alerts/stream"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class LiveConfig:
    """What `pardus serve` was started with."""

    pipeline: bool = True
    rules_path: Path | None = None
    max_upload_bytes: int = 64 << 20
    upload_memory_bytes: int = 1 << 30  # all uploads at once (web.upload.UploadBudget); past it 503 + Retry-After
    mqtt: bool = False
    broker: Broker = field(default_factory=Broker)  # the MQTT broker the gateway listens on
    backoff_s: float = 1.0
    stages: list[Any] | None = None  # None: default_stages()
    map_tiles: str | None = None  # a tile URL template ({z}/{x}/{y}); None: plain background, no request leaves
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class AppState:
    """One running app: its workspace, settings and the background workers it started."""

    ws: Workspace
    config: LiveConfig
    workers: dict[str, Any] = field(default_factory=dict)
    upload_budget: UploadBudget = field(init=False)

    def __post_init__(self) -> None:
        self.upload_budget = UploadBudget(self.config.upload_memory_bytes)


def app_state(request: Request) -> AppState:
    return request.app.state.pardus


def workspace(request: Request) -> Workspace:
    return app_state(request).ws


def _identify(request: Request, ws: Workspace) -> Person | None:
    """The person behind the request (cookie first, then bearer token), or None when there is none."""
    cookie = request.cookies.get(SESSION_COOKIE)
    with ws.db.session() as s:
        if cookie:
            person = session_person(s, cookie)
            if person is not None:
                request.state.session_secret = cookie
                return person
        authorization = request.headers.get("authorization")
        if authorization is None and request.url.path == STREAM_PATH and request.query_params.get("token"):
            authorization = f"Bearer {request.query_params['token']}"
        if authorization is None:
            return None
        return authenticate_token(s, authorization)


async def _check_csrf(request: Request) -> None:
    if request.method not in UNSAFE or getattr(request.state, "session_secret", None) is None:
        return
    token = request.headers.get("x-csrf-token")
    if token is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # Starlette caches it: the route reads the same form again
        raw = form.get("csrf_token")
        token = raw if isinstance(raw, str) else None
    if not csrf_matches(request.state.session_secret, token):
        raise HTTPProblem(403, "this form is out of date or did not come from Pardus (missing or wrong CSRF "
                               "token); reload the page and try again")


def person(permission: set[str] = SEE) -> Callable[..., Any]:
    """Dependency for the API: the person, with ``permission``; 401 / 403 otherwise."""

    async def dep(request: Request, ws: Workspace = Depends(workspace)) -> Person:
        who = await run_in_threadpool(_identify, request, ws)
        if who is None:
            raise AuthError(401, "sign in, or send 'Authorization: Bearer <your token>' "
                                 "(`pardus users add` issues one)")
        await _check_csrf(request)
        return require(who, permission)

    return dep


def page_person(permission: set[str] = SEE) -> Callable[..., Any]:
    """Dependency for pages: like :func:`person`, but someone not signed in is sent to sign in."""

    async def dep(request: Request, ws: Workspace = Depends(workspace)) -> Person:
        who = await run_in_threadpool(_identify, request, ws)
        if who is None:
            nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInNeeded(nxt if request.method == "GET" else "/")
        await _check_csrf(request)
        return require(who, permission)

    return dep


def optional_person(request: Request, ws: Workspace = Depends(workspace)) -> Person | None:
    try:
        return _identify(request, ws)
    except AuthError:
        return None
