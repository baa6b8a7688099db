"""Signing in and out of the web app, and what repeated failures cost.

The sign-in form is protected against login CSRF too: before anyone is signed in, a random
pre-session cookie stands in for the session, and the form carries the token derived from it.
Wrong passwords and wrong device tokens are counted by ``people.throttle``; these routes only
translate its answer into 429 with Retry-After.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from pardus.live.cameras import AuthError
from pardus.people.accounts import (
    SESSION_MAX,
    Person,
    close_session,
    csrf_matches,
    csrf_token,
    open_session,
)
from pardus.people.throttle import Guards, SignIn, minutes
from pardus.store import Workspace
from pardus.web.deps import SESSION_COOKIE, optional_person, workspace
from pardus.web.problems import HTTPProblem
from pardus.web.render import render

router = APIRouter(tags=["sign-in"], include_in_schema=False)
PRE_COOKIE = "pardus_pre"


def _safe_next(raw: str | None) -> str:
    """Only a path on this site: never send a person to another site after signing in."""
    if not raw or len(raw) > 2000:
        return "/"
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    return raw


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax", path="/",
                        secure=request.url.scheme == "https")


def guards(request: Request) -> Guards:
    """The failure counters of this running app (``create_app`` makes them with the app)."""
    return request.app.state.guards


def _address(request: Request) -> str | None:
    """The client's address (behind a reverse proxy on this machine uvicorn puts the real one here)."""
    return request.client.host if request.client is not None else None


def _retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def _form(request: Request, next_url: str, error: str | None = None, name: str = "", status: int = 200,
          headers: dict[str, str] | None = None) -> Response:
    pre = request.cookies.get(PRE_COOKIE)
    if not pre or len(pre) > 128:
        pre = secrets.token_urlsafe(24)
    response = render(request, "signin.html", {"next": next_url, "error": error, "name": name,
                                               "csrf": csrf_token(pre)}, status=status, headers=headers)
    _cookie(response, request, PRE_COOKIE, pre, 3600)
    return response


@router.get("/signin")
async def signin_page(request: Request, next: str | None = None,
                      who: Person | None = Depends(optional_person)) -> Response:
    if who is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _form(request, _safe_next(next))


@router.post("/signin")
async def signin(request: Request, name: str = Form("", max_length=200),
                 password: str = Form("", max_length=2000),
                 csrf_token_: str = Form("", alias="csrf_token", max_length=200),
                 next: str = Form("/", max_length=2000),
                 ws: Workspace = Depends(workspace), guard: Guards = Depends(guards)) -> Response:
    nxt = _safe_next(next)
    if not csrf_matches(request.cookies.get(PRE_COOKIE), csrf_token_):
        return _form(request, nxt, "This sign-in form is out of date; please try again.", name, status=403)
    if not name.strip() or not password:
        return _form(request, nxt, "Enter your user name and your password.", name, status=400)

    address = _address(request)

    def check() -> tuple[str | None, SignIn]:
        with ws.db.session() as s:
            attempt = guard.sign_in.attempt(s, name.strip(), password, address)
            return (open_session(s, attempt.person) if attempt.person is not None else None), attempt

    secret, attempt = await run_in_threadpool(check)
    if attempt.retry_after > 0:
        return _form(request, nxt, attempt.message, name, status=429, headers=_retry_after(attempt.retry_after))
    if secret is None:
        return _form(request, nxt, "Wrong user name or password. Check both and try again; an admin can set a new "
                                   "password with `pardus users add NAME --password-prompt`.", name, status=401)
    response = RedirectResponse(nxt, status_code=303)
    _cookie(response, request, SESSION_COOKIE, secret, int(SESSION_MAX.total_seconds()))
    response.delete_cookie(PRE_COOKIE, path="/")
    return response


@router.post("/signout")
async def signout(request: Request, csrf_token_: str = Form("", alias="csrf_token", max_length=200),
                  ws: Workspace = Depends(workspace)) -> Response:
    secret = request.cookies.get(SESSION_COOKIE)
    # Sign-out needs the token too: otherwise another site could sign a ranger out mid-incident.
    if secret and csrf_matches(secret, csrf_token_):
        def close() -> None:
            with ws.db.session() as s:
                close_session(s, secret)

        await run_in_threadpool(close)
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
    return RedirectResponse("/", status_code=303)


async def count_token_failures(request: Request) -> AsyncIterator[None]:
    """Dependency of the camera and sensor APIs: a wrong token (401, or a sensor id that does not
    exist, 404) is counted per device id and client address; past the limit the answer is 429 with
    Retry-After instead. Asked only after the token was found wrong, so a valid token always passes."""
    try:
        yield
    except AuthError as exc:
        params = request.path_params
        device = params.get("camera_id") or params.get("sensor_id")
        if exc.status not in (401, 404) or not isinstance(device, str):
            raise
        wait = guards(request).tokens.wrong_token(device, _address(request))
        if wait <= 0:
            raise
        raise HTTPProblem(429, f"too many wrong tokens for this device or from this address; wait {minutes(wait)} and "
                               "send it again with the device's current token (`pardus cameras token ID` or "
                               "`pardus sensors token ID` issues one)",
                          headers=_retry_after(wait)) from exc
